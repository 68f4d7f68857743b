// Relay configuration: CLI flags over OUTBOX_RELAY_* environment variables over a TOML file
// (--config), over built-in defaults (DESIGN 5.5). Every setting is one row of a table
// (support/settings.h): the core's rows are in config.cpp, each broker's in
// sinks/<broker>/settings.cpp; the flags, --help, the environment, the file's keys and the checks
// all come from the rows. relay/README.md describes them for users: keep it in step.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "delivery/router.h"
#include "support/settings.h"

namespace outbox {

// Thrown for --help / --version: print `text` to stdout and exit with `code`.
struct ConfigExit {
  int code;
  std::string text;
};

// What the relay core reads, typed. `settings` holds every value (the sinks' too) and where it
// came from; the sinks are made from it.
struct Config {
  std::string pg;     // libpq conninfo or URI ("" = libpq defaults / PG* environment)
  std::string slot;
  bool create_slot = false;
  bool check = false;  // --check: pre-flight only
  std::string plugin;  // outbox_decoder | wal2json
  std::string shard;   // "i/n" (outbox_decoder only), "" = all events
  // RabbitMQ's setting, which the delivery also reads: events whose exchange is null go there.
  std::string exchange;
  std::string ordering;  // commit | aggregate
  std::string on_dead_letter;  // continue | park
  int max_in_flight = 0;
  int max_in_flight_bytes = 0;
  std::string http;  // host:port, "" = off
  std::string log_format;  // text | json
  std::string log_level;
  int status_interval_ms = 0;
  int checkpoint_interval_ms = 0;
  int pg_timeout_ms = 30000;
  int max_attempts = 0;
  int retry_base_ms = 0, retry_max_ms = 0;
  int reconnect_min_ms = 0, reconnect_max_ms = 0;
  int drain_timeout_ms = 0;
  std::string config_file;

  // The rules that send events to sinks other than the default one.
  std::string default_sink = "rabbitmq";
  std::vector<Route> routes;
  // The sinks in use (the default and every one a route names), in the order of sink_kinds();
  // and those configured but used by nothing (a warning at start).
  std::vector<std::string> sinks, unused_sinks;
  // Settings given that nothing in use reads (a warning at start, naming each).
  std::vector<std::string> ignored;

  SettingValues settings;
};

using GetEnv = std::function<const char*(const char*)>;

// Parses argv, the environment and the TOML file. Throws ConfigError (message names the setting
// and the fix) or ConfigExit (--help, --version).
Config load_config(int argc, const char* const* argv, const GetEnv& getenv);

// Every setting: the core's rows, then each sink kind's, in the order of sink_kinds().
std::vector<Setting> settings_table();

// The environment variable name of a setting: "max-in-flight" -> "OUTBOX_RELAY_MAX_IN_FLIGHT".
std::string env_name(const std::string& setting);

// For --check: one line per [[routes]] rule (its conditions -> sink and destination), then the
// default sink's.
std::vector<std::string> route_lines(const Config& c);

// A one-line summary of the effective configuration with secrets masked.
std::string describe(const Config& c);

}  // namespace outbox
