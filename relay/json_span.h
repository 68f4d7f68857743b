// Finds the raw text of a top-level member of a JSON object without re-serializing it, so a
// payload reaches the broker byte for byte (numbers keep their exact digits). The input must be
// valid JSON (the caller validates it with simdjson first).
#pragma once
#include <optional>
#include <string_view>

namespace outbox {

std::optional<std::string_view> json_member_raw(std::string_view object_text, std::string_view key);

}  // namespace outbox
