// spdlog set-up: text lines or JSON lines (one object per line) on stderr.
#pragma once
#include <string>

namespace outbox {

// format: "text" or "json"; level: trace|debug|info|warn|error. Returns false on an unknown level.
bool setup_logging(const std::string& format, const std::string& level);

}  // namespace outbox
