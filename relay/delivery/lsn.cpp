#include "delivery/lsn.h"

namespace outbox {

namespace {
bool parse_hex32(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 8) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v * 16 + static_cast<std::uint64_t>(d);
  }
  out = v;
  return true;
}
}  // namespace

std::optional<Lsn> parse_lsn(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::uint64_t hi = 0, lo = 0;
  if (!parse_hex32(text.substr(0, slash), hi) || !parse_hex32(text.substr(slash + 1), lo)) return std::nullopt;
  return (hi << 32) | lo;
}

std::string format_lsn(Lsn lsn) {
  // PostgreSQL's %X/%X. Once per event (the x-outbox-lsn header): written here, not through
  // printf's format parser, which was 0.7 % of a drain.
  static const char hex[] = "0123456789ABCDEF";
  char buf[18];
  char* p = buf + sizeof buf;
  auto put = [&p](std::uint32_t v) {
    do {
      *--p = hex[v & 15];
      v >>= 4;
    } while (v != 0);
  };
  put(static_cast<std::uint32_t>(lsn & 0xffffffffu));
  *--p = '/';
  put(static_cast<std::uint32_t>(lsn >> 32));
  return std::string(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

}  // namespace outbox
