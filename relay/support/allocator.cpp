#include "support/allocator.h"

#include <cstdint>

#include <jemalloc/jemalloc.h>

namespace outbox {

std::string allocator_name() {
  const char* v = nullptr;
  std::size_t len = sizeof v;
  if (mallctl("version", &v, &len, nullptr, 0) != 0 || v == nullptr) return "jemalloc (version unknown)";
  return std::string("jemalloc ") + v;
}

unsigned long long thread_allocated_bytes() {
  std::uint64_t n = 0;
  std::size_t len = sizeof n;
  if (mallctl("thread.allocated", &n, &len, nullptr, 0) != 0) return 0;
  return n;
}

}  // namespace outbox
