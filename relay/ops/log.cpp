#include "ops/log.h"

#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "delivery/event_json.h"

namespace outbox {

namespace {

std::string_view payload_of(const spdlog::details::log_msg& msg) {
  return std::string_view(msg.payload.data(), msg.payload.size());
}

// One JSON object per line, written by nlohmann-json (invalid UTF-8 becomes U+FFFD).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = msg.time;
    auto secs = time_point_cast<seconds>(t);
    auto us = duration_cast<microseconds>(t - secs).count();
    std::time_t tt = system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long>(us));
    auto lv = spdlog::level::to_string_view(msg.level);
    nlohmann::ordered_json line = nlohmann::ordered_json::object();
    line["ts"] = ts;
    line["level"] = std::string(lv.data(), lv.size());
    line["logger"] = "outbox-relay";
    line["msg"] = std::string(payload_of(msg));
    std::string s = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    s += '\n';
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// %* in the text pattern: the message on one line (log_text), so that a newline in an event field
// cannot forge a log line and a multi-line libpq error still reads as written.
class SafeMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string s = log_text(payload_of(msg));
    dest.append(s.data(), s.data() + s.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SafeMessageFlag>(); }
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(const std::string& format) {
  if (format == "json") return std::make_unique<JsonFormatter>();
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<SafeMessageFlag>('*').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %*");
  return f;
}

bool setup_logging(const std::string& format, const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("outbox-relay", sink);
  logger->set_formatter(make_log_formatter(format));
  auto lv = spdlog::level::from_str(level);
  bool ok = !(lv == spdlog::level::off && level != "off");
  logger->set_level(ok ? lv : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return ok;
}

}  // namespace outbox
