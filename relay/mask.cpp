#include "mask.h"

#include <cctype>

namespace outbox {

std::string mask_url(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  std::size_t auth_start = scheme + 3;
  std::size_t auth_end = url.find_first_of("/?#", auth_start);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  std::string_view authority = url.substr(auth_start, auth_end - auth_start);
  auto at = authority.rfind('@');
  std::string out(url.substr(0, auth_start));
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    auto colon = userinfo.find(':');
    if (colon != std::string_view::npos) {
      out += userinfo.substr(0, colon);
      out += ":***";
    } else {
      out += userinfo;
    }
    out += authority.substr(at);
  } else {
    out += authority;
  }
  // query parameters named password
  std::string rest(url.substr(auth_end));
  std::size_t pos = 0;
  while ((pos = rest.find("password=", pos)) != std::string::npos) {
    if (pos > 0 && rest[pos - 1] != '?' && rest[pos - 1] != '&') {
      pos += 9;
      continue;
    }
    std::size_t vstart = pos + 9;
    std::size_t vend = rest.find('&', vstart);
    if (vend == std::string::npos) vend = rest.size();
    rest.replace(vstart, vend - vstart, "***");
    pos = vstart + 3;
  }
  out += rest;
  return out;
}

std::string mask_conninfo(std::string_view ci) {
  std::size_t i = 0;
  while (i < ci.size() && std::isspace(static_cast<unsigned char>(ci[i]))) ++i;
  std::string_view t = ci.substr(i);
  if (t.rfind("postgresql://", 0) == 0 || t.rfind("postgres://", 0) == 0) return mask_url(ci);
  // key = value pairs; values may be single-quoted with backslash escapes.
  std::string out;
  std::size_t p = 0;
  while (p < ci.size()) {
    // copy whitespace
    while (p < ci.size() && std::isspace(static_cast<unsigned char>(ci[p]))) out += ci[p++];
    std::size_t kstart = p;
    while (p < ci.size() && ci[p] != '=' && !std::isspace(static_cast<unsigned char>(ci[p]))) ++p;
    std::string_view key = ci.substr(kstart, p - kstart);
    out += key;
    while (p < ci.size() && std::isspace(static_cast<unsigned char>(ci[p]))) out += ci[p++];
    if (p >= ci.size() || ci[p] != '=') continue;
    out += ci[p++];
    while (p < ci.size() && std::isspace(static_cast<unsigned char>(ci[p]))) out += ci[p++];
    std::size_t vstart = p;
    if (p < ci.size() && ci[p] == '\'') {
      ++p;
      while (p < ci.size() && ci[p] != '\'') {
        if (ci[p] == '\\') ++p;
        ++p;
      }
      if (p < ci.size()) ++p;
    } else {
      while (p < ci.size() && !std::isspace(static_cast<unsigned char>(ci[p]))) ++p;
    }
    if (key == "password") out += "***";
    else out += ci.substr(vstart, p - vstart);
  }
  return out;
}

std::string mask_secrets(std::string text, std::initializer_list<std::string_view> secrets) {
  for (auto s : secrets) {
    if (s.empty()) continue;
    std::size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), "***");
      pos += 3;
    }
  }
  return text;
}

}  // namespace outbox
