#include <gtest/gtest.h>

#include "delivery/backoff.h"

using namespace outbox;
using std::chrono::milliseconds;

TEST(Backoff, DoublesUpToCap) {
  BackoffPolicy p{milliseconds(100), milliseconds(1000), 0.0};
  EXPECT_EQ(backoff_nominal(p, 0), milliseconds(100));
  EXPECT_EQ(backoff_nominal(p, 1), milliseconds(100));
  EXPECT_EQ(backoff_nominal(p, 2), milliseconds(200));
  EXPECT_EQ(backoff_nominal(p, 3), milliseconds(400));
  EXPECT_EQ(backoff_nominal(p, 4), milliseconds(800));
  EXPECT_EQ(backoff_nominal(p, 5), milliseconds(1000));
  EXPECT_EQ(backoff_nominal(p, 1000000), milliseconds(1000));  // no overflow
}

TEST(Backoff, JitterStaysInRange) {
  BackoffPolicy p{milliseconds(100), milliseconds(5000), 0.5};
  std::mt19937_64 rng(42);
  bool varied = false;
  for (int attempt = 1; attempt < 12; ++attempt) {
    auto nominal = backoff_nominal(p, attempt);
    milliseconds first = backoff_delay(p, attempt, rng);
    for (int i = 0; i < 200; ++i) {
      auto d = backoff_delay(p, attempt, rng);
      EXPECT_LE(d, nominal);
      EXPECT_GE(d.count(), nominal.count() / 2 - 1);
      if (d != first) varied = true;
    }
  }
  EXPECT_TRUE(varied);
}

TEST(Backoff, ZeroBaseAndNoJitter) {
  BackoffPolicy p{milliseconds(0), milliseconds(0), 1.0};
  std::mt19937_64 rng(1);
  EXPECT_EQ(backoff_delay(p, 5, rng), milliseconds(0));
  BackoffPolicy q{milliseconds(50), milliseconds(10), 0.0};
  EXPECT_EQ(backoff_delay(q, 1, rng), milliseconds(10));
}
