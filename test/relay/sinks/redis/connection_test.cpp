// The RESP the sink writes itself (append_redis_command) against hiredis' own formatter.
#include "sinks/redis/connection.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using outbox::append_redis_command;
using outbox::redis_format;

TEST(RedisCommand, AppendedBytesAreHiredisOwnForAnyArguments) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> args(rng() % 30);
    for (auto& a : args) {
      a.resize(rng() % 300);  // empty ones too
      for (auto& c : a) c = static_cast<char>(rng() % 256);  // NUL, CR, LF, any byte
    }
    std::string head1 = "EVALSHA", head2(40, 'f');
    std::vector<std::string> whole{head1, head2};
    whole.insert(whole.end(), args.begin(), args.end());
    std::string out = "already queued";
    append_redis_command(out, {head1, head2}, args);
    ASSERT_EQ(out, "already queued" + redis_format(whole)) << "round " << round;
  }
  std::string plain;
  append_redis_command(plain, {}, {"XADD", "s", "*", "f", "v"});
  EXPECT_EQ(plain, redis_format({"XADD", "s", "*", "f", "v"}));
}
