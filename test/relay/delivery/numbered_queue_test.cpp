#include "delivery/numbered_queue.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

using outbox::NumberedQueue;

namespace {

std::vector<std::uint64_t> numbers(const NumberedQueue<std::string>& q, std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> n;
  q.each(from, to, [&](std::uint64_t k, const std::string&) {
    n.push_back(k);
    return true;
  });
  return n;
}

}  // namespace

TEST(NumberedQueue, TakingOutOfOrderLeavesHolesUntilTheFrontPassesThem) {
  NumberedQueue<std::string> q;
  for (std::uint64_t n = 10; n < 15; ++n) q.put(n, "e" + std::to_string(n));
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.take(12), "e12");
  EXPECT_EQ(q.take(13), "e13");
  EXPECT_EQ(q.find(12), nullptr);
  EXPECT_EQ(q.first(), 10u) << "a hole in the middle stays";
  EXPECT_EQ(q.take(10), "e10");
  EXPECT_EQ(q.first(), 11u);
  EXPECT_EQ(q.take(11), "e11");
  EXPECT_EQ(q.first(), 14u) << "the holes at the front are dropped with it";
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(numbers(q, 0, 100), std::vector<std::uint64_t>{14});
}

TEST(NumberedQueue, SkippedNumbersAreHolesAndNumbersMustGrow) {
  NumberedQueue<std::string> q;
  q.put(5, "a");
  q.put(8, "b");
  EXPECT_EQ(q.find(6), nullptr);
  EXPECT_EQ(q.end(), 9u);
  EXPECT_THROW(q.put(7, "c"), std::logic_error);
  EXPECT_EQ(numbers(q, 6, 9), std::vector<std::uint64_t>{8});
  EXPECT_EQ(numbers(q, 5, 8), std::vector<std::uint64_t>{5}) << "[from, to)";
  EXPECT_EQ(q.take(5), "a");
  EXPECT_EQ(q.first(), 8u);
  EXPECT_EQ(q.take(8), "b");
  EXPECT_TRUE(q.empty());
  q.put(3, "after empty, any number");  // a new channel counts tags from 1 again
  EXPECT_EQ(q.first(), 3u);
}

TEST(NumberedQueue, EachStopsWhenAsked) {
  NumberedQueue<std::string> q;
  for (std::uint64_t n = 1; n <= 5; ++n) q.put(n, "x");
  int calls = 0;
  q.each(1, 6, [&](std::uint64_t n, std::string&) {
    ++calls;
    return n < 3;
  });
  EXPECT_EQ(calls, 3);
}
