// Masks secrets before anything is logged: passwords in libpq conninfo strings (key=value and
// URIs) and in AMQP URLs. Every log line that shows a connection string goes through these.
#pragma once
#include <string>
#include <string_view>

namespace outbox {

// "host=x password=secret" -> "host=x password=***"; "postgresql://u:secret@h/db" -> "postgresql://u:***@h/db";
// also masks ?password=... in URI query strings.
std::string mask_conninfo(std::string_view conninfo);

// "amqp://user:secret@host:5672/vh" -> "amqp://user:***@host:5672/vh".
std::string mask_url(std::string_view url);

// Replaces every occurrence of each non-empty secret in `text` by "***".
std::string mask_secrets(std::string text, std::initializer_list<std::string_view> secrets);

}  // namespace outbox
