// The decoder's shard=i/n rule (decoder/shard.cpp), for what the relay reads without the decoder:
// the events a slot recovery republishes from outbox.events go only to the relay of their shard.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outbox {

struct Shard {
  std::uint32_t index = 0, count = 1;
  // "I/N" as --shard takes it; nullopt for "" (no sharding) or anything malformed.
  static std::optional<Shard> parse(const std::string& text);
  // An event belongs to shard fnv1a64(aggregate_id as UTF-8 bytes) mod N; without one, to 0.
  bool owns(const std::optional<std::string>& aggregate_id) const;
};

std::uint64_t fnv1a64(std::string_view s);

}  // namespace outbox
