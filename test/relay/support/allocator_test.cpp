#include "support/allocator.h"

#include <cstdlib>

#include <gtest/gtest.h>

namespace outbox {
namespace {

TEST(Allocator, IsJemallocByName) { EXPECT_EQ(allocator_name().rfind("jemalloc 5.", 0), 0u) << allocator_name(); }

// malloc itself (what libpq, rabbitmq-c and nats.c call) is jemalloc's, not glibc's: the
// allocation shows in jemalloc's count for this thread.
TEST(Allocator, MallocIsTheOneNamed) {
  unsigned long long before = thread_allocated_bytes();
  void* volatile p = std::malloc(1 << 20);
  unsigned long long after = thread_allocated_bytes();
  std::free(p);
  EXPECT_GE(after - before, 1ull << 20);
}

}  // namespace
}  // namespace outbox
