#include "json_span.h"

#include <cstddef>

namespace outbox {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void skip_ws(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_ws(s[i])) ++i;
}

// s[i] == '"'; leaves i just after the closing quote.
bool skip_string(std::string_view s, std::size_t& i) {
  ++i;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\') {
      i += 2;
      continue;
    }
    ++i;
    if (c == '"') return true;
  }
  return false;
}

bool skip_value(std::string_view s, std::size_t& i) {
  skip_ws(s, i);
  if (i >= s.size()) return false;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < s.size()) {
      char d = s[i];
      if (d == '"') {
        if (!skip_string(s, i)) return false;
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      else if (d == '}' || d == ']') {
        --depth;
        if (depth == 0) {
          ++i;
          return true;
        }
      }
      ++i;
    }
    return false;
  }
  // number, true, false, null
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return true;
}

}  // namespace

std::optional<std::string_view> json_member_raw(std::string_view s, std::string_view key) {
  std::size_t i = 0;
  skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  ++i;
  while (true) {
    skip_ws(s, i);
    if (i >= s.size() || s[i] == '}') return std::nullopt;
    if (s[i] != '"') return std::nullopt;
    std::size_t kstart = i + 1;
    if (!skip_string(s, i)) return std::nullopt;
    std::string_view k = s.substr(kstart, i - 1 - kstart);
    skip_ws(s, i);
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    skip_ws(s, i);
    std::size_t vstart = i;
    if (!skip_value(s, i)) return std::nullopt;
    if (k == key) return s.substr(vstart, i - vstart);
    skip_ws(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
}

}  // namespace outbox
