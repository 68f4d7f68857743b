// LSN helpers: PostgreSQL log sequence numbers as 64-bit integers, "X/Y" text form.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outbox {

using Lsn = std::uint64_t;

// Parses "16/B374D848" (hex halves). Returns nullopt on malformed input.
std::optional<Lsn> parse_lsn(std::string_view text);

// Formats as PostgreSQL does: upper-case hex halves without leading zeros.
std::string format_lsn(Lsn lsn);

}  // namespace outbox
