#include <gtest/gtest.h>

#include "delivery/lsn.h"
#include "delivery/timestamp.h"

using namespace outbox;

TEST(Lsn, ParsesAndFormats) {
  EXPECT_EQ(parse_lsn("0/0"), Lsn{0});
  EXPECT_EQ(parse_lsn("16/B374D848"), (Lsn{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(parse_lsn("ffffffff/ffffffff"), ~Lsn{0});
  EXPECT_EQ(format_lsn((Lsn{0x16} << 32) | 0xB374D848u), "16/B374D848");
  EXPECT_EQ(format_lsn(0), "0/0");
  EXPECT_EQ(format_lsn(~Lsn{0}), "FFFFFFFF/FFFFFFFF");
  EXPECT_EQ(format_lsn(Lsn{1} << 32), "1/0");
  EXPECT_EQ(format_lsn(0x10), "0/10");
  for (const char* bad : {"", "/", "1/", "/1", "12345", "1/123456789", "g/1", "1/ 2"}) EXPECT_FALSE(parse_lsn(bad)) << bad;
}

TEST(Timestamp, PostgresAndIsoForms) {
  EXPECT_EQ(parse_timestamp_us("1970-01-01 00:00:00+00"), 0);
  EXPECT_EQ(parse_timestamp_us("1970-01-01T00:00:01Z"), 1000000);
  EXPECT_EQ(parse_timestamp_us("2026-11-23 05:01:53.002315+00"), 1795410113002315LL);
  EXPECT_EQ(parse_timestamp_us("2026-11-23T06:01:53.002315+01:00"), 1795410113002315LL);
  EXPECT_EQ(parse_timestamp_us("2026-11-23 00:31:53.002315-04:30"), 1795410113002315LL);
  EXPECT_EQ(parse_timestamp_us("2026-11-23 05:01:53.5+00"), 1795410113500000LL);
  EXPECT_EQ(parse_timestamp_us("2000-02-29 00:00:00"), 951782400000000LL);
  for (const char* bad : {"", "2026-11-23", "2026-13-01 00:00:00", "2026-11-23 05:01:53.", "2026-11-23 05:01:53x"})
    EXPECT_FALSE(parse_timestamp_us(bad)) << bad;
}

TEST(Timestamp, Rfc3339) {
  EXPECT_EQ(format_rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339_us(1795410113002315LL), "2026-11-23T05:01:53.002315Z");
  EXPECT_EQ(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339_us(*parse_timestamp_us("2026-11-23 06:01:53.5+01")), "2026-11-23T05:01:53.500000Z");
}
