#include "delivery/shard.h"

#include <cstdlib>

namespace outbox {

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::optional<Shard> Shard::parse(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) return std::nullopt;
  char* end = nullptr;
  unsigned long i = std::strtoul(text.c_str(), &end, 10);
  if (end != text.c_str() + slash) return std::nullopt;
  unsigned long n = std::strtoul(text.c_str() + slash + 1, &end, 10);
  if (*end != '\0' || n == 0 || i >= n || n > 0xffffffffUL) return std::nullopt;
  return Shard{static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(n)};
}

bool Shard::owns(const std::optional<std::string>& aggregate_id) const {
  if (count <= 1) return true;
  std::uint32_t s = aggregate_id ? static_cast<std::uint32_t>(fnv1a64(*aggregate_id) % count) : 0;
  return s == index;
}

}  // namespace outbox
