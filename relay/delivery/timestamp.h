// Timestamps as PostgreSQL writes them ("2026-11-23 05:01:53.002315+00", ISO-8601 "T", "Z",
// "+05:30") to microseconds since the Unix epoch.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outbox {

std::optional<std::int64_t> parse_timestamp_us(std::string_view text);

// The wall clock, in microseconds since the Unix epoch.
std::int64_t wall_us();

// RFC 3339 in UTC with microseconds: "2026-11-23T05:01:53.002315Z".
std::string format_rfc3339_us(std::int64_t us);

}  // namespace outbox
