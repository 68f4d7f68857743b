#include "delivery/shard.h"

#include <gtest/gtest.h>

using namespace outbox;

// FNV-1a 64 test vectors (the decoder's shard.cpp hashes the same way).
TEST(Shard, Fnv1a64MatchesTheReferenceVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(Shard, ParsesIOverN) {
  auto s = Shard::parse("2/4");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->index, 2u);
  EXPECT_EQ(s->count, 4u);
  for (const char* bad : {"", "4/4", "1/0", "/4", "1/", "x/4", "1/4x", "-1/4"}) EXPECT_FALSE(Shard::parse(bad)) << bad;
}

TEST(Shard, EveryAggregateHasExactlyOneOwner) {
  for (int a = 0; a < 200; ++a) {
    std::string id = "order-" + std::to_string(a);
    int owners = 0;
    for (std::uint32_t i = 0; i < 3; ++i) owners += Shard{i, 3}.owns(id) ? 1 : 0;
    EXPECT_EQ(owners, 1) << id;
  }
  const Shard first{0, 3}, second{1, 3}, of4{0, 4};
  EXPECT_TRUE(first.owns(std::nullopt)) << "no aggregate: shard 0";
  EXPECT_FALSE(second.owns(std::nullopt));
  EXPECT_EQ(of4.owns(std::string("a")), 0xaf63dc4c8601ec8cULL % 4 == 0);
}
