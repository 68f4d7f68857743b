// The relay's JSON text, all written by one JSON writer (nlohmann-json): the dead letter's event,
// JSON strings, and message text made safe for one line of a text log. Nothing here aborts on
// invalid UTF-8 (it becomes U+FFFD).
#pragma once
#include <string>
#include <string_view>

#include "delivery/event.h"

namespace outbox {

// The event as one JSON object (the dead letter's `event` column, a jsonb), payload/headers
// embedded. The payload is embedded as it is, byte for byte (numbers keep every digit), when it is
// JSON that jsonb accepts; otherwise as a JSON string holding its text. An empty payload is null.
// Text that jsonb cannot hold (NUL characters) becomes U+FFFD. traceparent, tracestate, priority
// and schema_version appear only when set.
std::string event_to_json(const Event& ev);

// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

// `s` for one line of a text log, readable: line breaks (with the blanks around them) become
// "; ", tabs a space, breaks at either end go. What is then printable UTF-8 text stays as it is;
// otherwise it becomes the inside of a JSON string literal (other control characters as \u001b...,
// invalid UTF-8 as U+FFFD, and everything non-ASCII as \u escapes when it holds C1 controls, DEL or
// U+2028/U+2029), so that no value can begin a log line of its own or steer a terminal.
std::string log_text(std::string_view s);

}  // namespace outbox
