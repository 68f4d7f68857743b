// Masks secrets before anything is logged: every secret-bearing libpq keyword (password,
// sslpassword and whatever else PQconndefaults() marks with dispchar "*") in conninfo strings
// (key=value and URIs), passwords and tokens in broker URLs. Every log line, error and --check
// line that shows a connection string goes through these.
//
// The masks assume the text may be malformed: a password with an unencoded '/', '?', '#', '@' or
// a space is still masked whole, because a mistake in a secret is exactly what an error message
// is about to echo.
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
// also masks ?password=..., ?sslpassword=... (every secret key) in URI query strings. An unquoted
// secret value runs to the next libpq keyword ("password=pa ss dbname=d" -> "password=*** dbname=d").
std::string mask_conninfo(std::string_view conninfo);

// "amqp://user:secret@host:5672/vh" -> "amqp://user:***@host:5672/vh" (and secret query keys).
// The user info runs to the last '@' of the URL. A lone user info is a user name for amqp(s) and
// postgres(ql), else a secret: a NATS token ("nats://tok@h" -> "nats://***@h"), or for redis(s)
// a password given without its ':' (the relay refuses a user without a password). Without an '@', a port that is not a number is masked ("amqp://u:pa" -> "amqp://u:***":
// the first half of a URL split at a comma inside its password). Text without "://" is taken as
// a URL without its scheme.
std::string mask_url(std::string_view url);

// Free text that may quote settings (a command-line parser's error, a library's message): every
// word containing "://" is masked as a URL, every secret libpq keyword's "key=value" as in a conninfo.
std::string mask_text(std::string_view text);

// The values of the secret keys in a conninfo or URI (as libpq parses it; empty when it does not
// parse), for mask_secrets on texts that might quote them.
std::vector<std::string> conninfo_secret_values(const std::string& conninfo);

// Replaces every occurrence of each non-empty secret in `text` by "***".
std::string mask_secrets(std::string text, std::initializer_list<std::string_view> secrets);
std::string mask_secrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace outbox
