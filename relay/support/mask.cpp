#include "support/mask.h"

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

namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Every keyword libpq knows: an unquoted secret value runs up to the next one.
const std::set<std::string>& conninfo_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> k;
    if (PQconninfoOption* opts = PQconndefaults()) {
      for (PQconninfoOption* o = opts; o->keyword; ++o) k.insert(o->keyword);
      PQconninfoFree(opts);
    }
    return k;
  }();
  return keys;
}

// Whether a lone user info (no ':') is a user name, not a token.
bool lone_userinfo_is_user(std::string_view scheme) {
  for (const char* s : {"amqp", "amqps", "postgres", "postgresql"})
    if (scheme == s) return true;
  return false;
}

// host[:port][,host[:port]...] with no '@': a port that is not a number is masked (it can be the
// start of a password the URL was split in, "amqp://u:pa" from "amqp://u:pa,ss@h").
std::string mask_ports(std::string_view hosts) {
  std::string out;
  std::size_t p = 0;
  while (true) {
    std::size_t comma = hosts.find(',', p);
    std::string_view h = hosts.substr(p, comma == std::string_view::npos ? std::string_view::npos : comma - p);
    std::size_t from = 0;
    if (!h.empty() && h[0] == '[') {
      std::size_t close = h.find(']');
      from = close == std::string_view::npos ? h.size() : close + 1;
    }
    std::size_t colon = h.find(':', from);
    if (colon != std::string_view::npos &&
        h.find_first_not_of("0123456789", colon + 1) != std::string_view::npos) {
      out += h.substr(0, colon);
      out += ":***";
    } else {
      out += h;
    }
    if (comma == std::string_view::npos) break;
    out += ',';
    p = comma + 1;
  }
  return out;
}

// key=value pairs (values may be single-quoted with backslash escapes). With `to_next_key`, an
// unquoted secret value also takes the words after it up to the next libpq keyword: libpq would
// read "password=pa ss" as password "pa" and a keyword "ss", and quote "ss" in its error.
std::string mask_key_values(std::string_view ci, bool to_next_key) {
  const auto& secrets = secret_conninfo_keys();
  // Whether a libpq keyword followed by '=' starts at q.
  auto keyword_at = [&](std::size_t q) {
    std::size_t e = q;
    while (e < ci.size() && ci[e] != '=' && !is_space(ci[e])) ++e;
    std::size_t eq = e;
    while (eq < ci.size() && is_space(ci[eq])) ++eq;
    return eq < ci.size() && ci[eq] == '=' && conninfo_keys().count(std::string(ci.substr(q, e - q)));
  };
  std::string out;
  std::size_t p = 0;
  while (p < ci.size()) {
    while (p < ci.size() && is_space(ci[p])) out += ci[p++];
    std::size_t kstart = p;
    while (p < ci.size() && ci[p] != '=' && !is_space(ci[p])) ++p;
    std::string_view key = ci.substr(kstart, p - kstart);
    out += key;
    std::size_t after_key = p;
    while (p < ci.size() && is_space(ci[p])) ++p;
    if (p >= ci.size() || ci[p] != '=') {
      out += ci.substr(after_key, p - after_key);
      continue;
    }
    out += ci.substr(after_key, p - after_key);
    out += ci[p++];
    while (p < ci.size() && is_space(ci[p])) out += ci[p++];
    std::size_t vstart = p;
    bool quoted = p < ci.size() && ci[p] == '\'';
    if (quoted) {
      ++p;
      while (p < ci.size() && ci[p] != '\'') {
        if (ci[p] == '\\') ++p;
        ++p;
      }
      if (p < ci.size()) ++p;
    } else {
      while (p < ci.size() && !is_space(ci[p])) ++p;
    }
    // Keys are matched case-insensitively: a misspelt "PASSWORD=" is still a secret.
    std::string lower;
    for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!secrets.count(lower)) {
      out += ci.substr(vstart, p - vstart);
      continue;
    }
    out += "***";
    if (!to_next_key || quoted) continue;
    while (true) {
      std::size_t q = p;
      while (q < ci.size() && is_space(ci[q])) ++q;
      if (q >= ci.size() || keyword_at(q)) break;
      while (q < ci.size() && !is_space(ci[q])) ++q;
      p = q;
    }
  }
  return out;
}

}  // namespace

std::string mask_url(std::string_view url) {
  auto sep = url.find("://");
  std::size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  std::string_view scheme = sep == std::string_view::npos ? std::string_view() : url.substr(0, sep);
  std::string out(url.substr(0, start));
  std::string_view rest = url.substr(start);
  // The user info runs to the last '@': a password with an unencoded '/', '?', '#' or '@', which
  // no parser reads as the user meant, is still masked whole. (An '@' in a path or query masks
  // more than needed: harmless.)
  auto at = rest.rfind('@');
  std::string_view after = rest;
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    auto colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    // A "user" with '/', '?' or '#' is a host, path or query running to an '@' further on: it
    // may hold ?password=..., so all of it goes.
    if (user.find_first_of("/?#") != std::string_view::npos) {
      out += "***";
    } else if (colon != std::string_view::npos) {
      out += user;
      out += ":***";
    } else if (sep != std::string_view::npos && lone_userinfo_is_user(scheme)) {
      out += userinfo;
    } else if (!userinfo.empty()) {
      out += "***";
    }
    out += '@';
    after = rest.substr(at + 1);
  }
  std::size_t auth_end = after.find_first_of("/?#");
  if (auth_end == std::string_view::npos) auth_end = after.size();
  std::string_view authority = after.substr(0, auth_end);
  if (at == std::string_view::npos) out += mask_ports(authority);
  else out += authority;
  // query parameters whose key is a secret (password, sslpassword, ...)
  std::string tail(after.substr(auth_end));
  const auto& keys = secret_conninfo_keys();
  std::size_t q = tail.find('?');
  if (q == std::string::npos) return out + tail;
  std::size_t pos = q + 1;
  while (pos <= tail.size()) {
    std::size_t end = tail.find_first_of("&#", pos);
    if (end == std::string::npos) end = tail.size();
    std::size_t eq = tail.find('=', pos);
    if (eq != std::string::npos && eq < end && keys.count(tail.substr(pos, eq - pos))) {
      tail.replace(eq + 1, end - eq - 1, "***");
      end = eq + 4;
    }
    if (end >= tail.size() || tail[end] == '#') break;
    pos = end + 1;
  }
  out += tail;
  return out;
}

std::string mask_conninfo(std::string_view ci) {
  std::size_t i = 0;
  while (i < ci.size() && is_space(ci[i])) ++i;
  std::string_view t = ci.substr(i);
  if (t.rfind("postgresql://", 0) == 0 || t.rfind("postgres://", 0) == 0) return mask_url(ci);
  return mask_key_values(ci, true);
}

std::string mask_text(std::string_view text) {
  std::string out;
  std::size_t p = 0;
  while (p < text.size()) {
    if (is_space(text[p])) {
      out += text[p++];
      continue;
    }
    std::size_t e = p;
    while (e < text.size() && !is_space(text[e])) ++e;
    std::string_view word = text.substr(p, e - p);
    out += word.find("://") != std::string_view::npos ? mask_url(word) : std::string(word);
    p = e;
  }
  return mask_key_values(out, false);
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
