#include <gtest/gtest.h>


#include <string>

#include "source/line_encoding.h"
#include "source/wal2json_parser.h"

using namespace outbox;

namespace {

std::string convert(LineEncoding& e, const std::string& line) {
  std::string_view out;
  std::string why;
  EXPECT_TRUE(e.to_utf8(line, out, why)) << why;
  return std::string(out);
}

}  // namespace

TEST(LineEncoding, Utf8AndSqlAsciiLinesPassUntouched) {
  for (const char* enc : {"UTF8", "SQL_ASCII"}) {
    LineEncoding e;
    ASSERT_EQ(e.use(enc), "");
    EXPECT_FALSE(e.converts());
    std::string line = "{\"s\":\"caf\xc3\xa9 \xff\"}";
    std::string_view out;
    std::string why;
    ASSERT_TRUE(e.to_utf8(line, out, why));
    EXPECT_EQ(out.data(), line.data()) << enc << ": not copied";
  }
}

TEST(LineEncoding, ConvertsTheDatabasesCharactersToUtf8) {
  LineEncoding latin1, win1252, eucjp, latin9, koi8r;
  ASSERT_EQ(latin1.use("LATIN1"), "");
  ASSERT_EQ(win1252.use("WIN1252"), "");
  ASSERT_EQ(eucjp.use("EUC_JP"), "");
  ASSERT_EQ(latin9.use("LATIN9"), "");
  ASSERT_EQ(koi8r.use("KOI8R"), "");
  EXPECT_EQ(convert(latin1, "{\"s\":\"caf\xe9\"}"), "{\"s\":\"caf\xc3\xa9\"}");
  EXPECT_EQ(convert(win1252, "\x80 caf\xe9"), "\xe2\x82\xac caf\xc3\xa9");
  EXPECT_EQ(convert(eucjp, "\xc6\xfc\xcb\xdc"), "\xe6\x97\xa5\xe6\x9c\xac");  // 日本
  EXPECT_EQ(convert(latin9, "\xa4"), "\xe2\x82\xac");                         // € in ISO-8859-15
  EXPECT_EQ(convert(koi8r, "\xf0\xd2\xc9\xd7\xc5\xd4"), "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");  // Привет
}

// Where glibc's iconv and PostgreSQL part ways (line_encoding.h): the relay follows PostgreSQL.
TEST(LineEncoding, MapsAsPostgreSqlWhereGlibcDiffers) {
  LineEncoding eucjp, win1258, jis2004;
  ASSERT_EQ(eucjp.use("EUC_JP"), "");
  ASSERT_EQ(win1258.use("WIN1258"), "");
  ASSERT_EQ(jis2004.use("EUC_JIS_2004"), "");
  EXPECT_EQ(convert(eucjp, "\xa1\xc1"), "\xef\xbd\x9e");  // U+FF5E, glibc's EUC-JP: U+301C
  EXPECT_EQ(convert(eucjp, "\xad\xa1"), "\xe2\x91\xa0");  // U+2460 (NEC row 13), not in glibc's EUC-JP
  EXPECT_EQ(convert(win1258, "a\xec"), "a\xcc\x81");        // a + U+0301, glibc composes U+00E1
  EXPECT_EQ(convert(jis2004, "x\xa1\xb1\xa1\xefy"), "x\xe2\x80\xbe\xc2\xa5y");  // U+203E U+00A5
}

TEST(LineEncoding, AsciiLinesAreNotCopied) {
  LineEncoding e;
  ASSERT_EQ(e.use("EUC_JP"), "");
  std::string line = R"({"action":"B","xid":728})";
  std::string_view out;
  std::string why;
  ASSERT_TRUE(e.to_utf8(line, out, why));
  EXPECT_EQ(out.data(), line.data());
}

TEST(LineEncoding, ReusesItsBuffer) {
  LineEncoding e;
  ASSERT_EQ(e.use("LATIN1"), "");
  std::string big(1 << 20, '\xe9');
  std::string_view first, second;
  std::string why;
  ASSERT_TRUE(e.to_utf8(big, first, why));
  EXPECT_EQ(first.size(), big.size() * 2);
  const char* buffer = first.data();
  ASSERT_TRUE(e.to_utf8("caf\xe9", second, why));
  EXPECT_EQ(second, "caf\xc3\xa9");
  EXPECT_EQ(second.data(), buffer) << "a smaller line reuses the buffer";
}

TEST(LineEncoding, BytesThatAreNoCharacterAreAReasonNotAThrow) {
  LineEncoding e;
  ASSERT_EQ(e.use("EUC_JP"), "");
  std::string_view out;
  std::string why;
  EXPECT_FALSE(e.to_utf8("{\"content\":\"\xff\xfe\"}", out, why));
  EXPECT_NE(why.find("0xff"), std::string::npos) << why;
  EXPECT_NE(why.find("EUC_JP"), std::string::npos) << why;
  why.clear();
  EXPECT_FALSE(e.to_utf8("x\xc6", out, why));  // cut inside a two-byte character
  EXPECT_NE(why.find("ends inside"), std::string::npos) << why;
  // The descriptor is usable again at once.
  EXPECT_EQ(convert(e, "\xc6\xfc"), "\xe6\x97\xa5");

  LineEncoding w;
  ASSERT_EQ(w.use("WIN1252"), "");
  why.clear();
  EXPECT_FALSE(w.to_utf8("a\x81", out, why)) << "0x81 is undefined in WIN1252";
  EXPECT_NE(why.find("0x81"), std::string::npos) << why;
}

TEST(LineEncoding, EveryServerEncodingOpensOrIsRefusedWithTheFix) {
  for (const char* enc :
       {"LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6", "LATIN7", "LATIN8", "LATIN9", "LATIN10",
        "ISO_8859_5", "ISO_8859_6", "ISO_8859_7", "ISO_8859_8", "WIN1250", "WIN1251", "WIN1252", "WIN1253",
        "WIN1254", "WIN1255", "WIN1256", "WIN1257", "WIN1258", "WIN866", "WIN874", "KOI8R", "KOI8U", "EUC_JP",
        "EUC_CN", "EUC_KR", "EUC_TW", "EUC_JIS_2004"}) {
    LineEncoding e;
    EXPECT_EQ(e.use(enc), "") << enc;
    EXPECT_TRUE(e.converts()) << enc;
  }
  LineEncoding mule;
  std::string why = mule.use("MULE_INTERNAL");
  EXPECT_NE(why.find("MULE_INTERNAL"), std::string::npos) << why;
  EXPECT_NE(why.find("fix:"), std::string::npos) << why;
}

// The extension signs the UTF-8 form of the body and writes the body in the database's
// encoding: the converted line verifies and carries the same characters.
TEST(LineEncoding, ALatin1MessageVerifiesOnceConverted) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  const std::string body_utf8 = "{\"id\":\"0190\",\"event_type\":\"t\",\"payload\":{\"text\":\"caf\xc3\xa9\"}}";
  const std::string body_latin1 = "{\"id\":\"0190\",\"event_type\":\"t\",\"payload\":{\"text\":\"caf\xe9\"}}";
  std::string content = "{\"mac\":\"" + hmac_sha256_hex(key, body_utf8) + "\"," + body_latin1.substr(1);
  std::string escaped;
  for (char c : content) escaped += c == '"' ? std::string("\\\"") : std::string(1, c);
  std::string line = R"({"action":"M","xid":728,"transactional":true,"prefix":"outbox","content":")" + escaped + "\"}";

  Wal2jsonParser p;
  p.set_message_key(key);
  ParsedLine out;
  p.parse(line, 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected) << "the raw LATIN1 line is not UTF-8";

  LineEncoding e;
  ASSERT_EQ(e.use("LATIN1"), "");
  std::string_view utf8;
  std::string why;
  ASSERT_TRUE(e.to_utf8(line, utf8, why)) << why;
  p.parse(utf8, 1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.payload, "{\"text\":\"caf\xc3\xa9\"}");
}
