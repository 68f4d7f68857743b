// spdlog set-up: text lines or JSON lines (one object per line) on stderr. In both formats a
// message is one line whatever it holds: the text format joins a message's lines with "; " and
// escapes other control characters and invalid UTF-8 (log_text); the JSON format keeps the
// message exactly, as a JSON string.
#pragma once
#include <memory>
#include <string>

namespace spdlog {
class formatter;
}

namespace outbox {

// format: "text" or "json"; level: trace|debug|info|warn|error. Returns false on an unknown level.
bool setup_logging(const std::string& format, const std::string& level);

// The formatter setup_logging installs ("text" or "json"), for tests and other sinks.
std::unique_ptr<spdlog::formatter> make_log_formatter(const std::string& format);

}  // namespace outbox
