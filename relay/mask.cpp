#include "mask.h"

#include <cctype>
#include <cstring>

#include <libpq-fe.h>

namespace outbox {

const std::set<std::string>& secret_conninfo_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> k{"password", "sslpassword"};
    if (PQconninfoOption* opts = PQconndefaults()) {
      for (PQconninfoOption* o = opts; o->keyword; ++o)
        if (o->dispchar && std::strchr(o->dispchar, '*')) k.insert(o->keyword);
      PQconninfoFree(opts);
    }
    return k;
  }();
  return keys;
}

std::vector<std::string> conninfo_secret_values(const std::string& conninfo) {
  std::vector<std::string> out;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return out;
  const auto& keys = secret_conninfo_keys();
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val && *o->val && keys.count(o->keyword)) out.emplace_back(o->val);
  PQconninfoFree(opts);
  return out;
}

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
  // query parameters whose key is a secret (password, sslpassword, ...)
  std::string rest(url.substr(auth_end));
  const auto& keys = secret_conninfo_keys();
  std::size_t q = rest.find('?');
  if (q == std::string::npos) return out + rest;
  std::size_t pos = q + 1;
  while (pos <= rest.size()) {
    std::size_t end = rest.find_first_of("&#", pos);
    if (end == std::string::npos) end = rest.size();
    std::size_t eq = rest.find('=', pos);
    if (eq != std::string::npos && eq < end && keys.count(rest.substr(pos, eq - pos))) {
      rest.replace(eq + 1, end - eq - 1, "***");
      end = eq + 4;
    }
    if (end >= rest.size() || rest[end] == '#') break;
    pos = end + 1;
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
    if (secret_conninfo_keys().count(std::string(key))) out += "***";
    else out += ci.substr(vstart, p - vstart);
  }
  return out;
}

std::string mask_secrets(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) text = mask_secrets(std::move(text), {std::string_view(s)});
  return text;
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
