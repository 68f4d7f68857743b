// Masks secrets before anything is logged: every secret-bearing libpq keyword (password,
// sslpassword and whatever else PQconndefaults() marks with dispchar "*") in conninfo strings
// (key=value and URIs) and passwords in AMQP URLs. Every log line that shows a connection string
// goes through these.
#pragma once
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace outbox {

// The libpq keywords whose values are secrets: password and sslpassword, plus every keyword
// PQconndefaults() reports with dispchar "*" (so a newer libpq's secrets are covered too).
const std::set<std::string>& secret_conninfo_keys();

// "host=x password=secret" -> "host=x password=***"; "postgresql://u:secret@h/db" -> "postgresql://u:***@h/db";
// also masks ?password=..., ?sslpassword=... (every secret key) in URI query strings.
std::string mask_conninfo(std::string_view conninfo);

// "amqp://user:secret@host:5672/vh" -> "amqp://user:***@host:5672/vh" (and secret query keys).
std::string mask_url(std::string_view url);

// The values of the secret keys in a conninfo or URI (as libpq parses it; empty when it does not
// parse), for mask_secrets on texts that might quote them.
std::vector<std::string> conninfo_secret_values(const std::string& conninfo);

// Replaces every occurrence of each non-empty secret in `text` by "***".
std::string mask_secrets(std::string text, std::initializer_list<std::string_view> secrets);
std::string mask_secrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace outbox
