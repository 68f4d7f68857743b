// Relay configuration: CLI flags over OUTBOX_RELAY_* environment variables over a TOML file
// (--config), over built-in defaults (DESIGN 5.5). Every setting is declared once in config.cpp's
// table, which also feeds --help and relay/README.md.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "delivery/router.h"
#include "sinks/nats/settings.h"
#include "sinks/rabbitmq/settings.h"

namespace outbox {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown for --help / --version: print `text` to stdout and exit with `code`.
struct ConfigExit {
  int code;
  std::string text;
};

struct Config {
  std::string pg;     // libpq conninfo or URI ("" = libpq defaults / PG* environment)
  std::string amqp;   // amqp[s]://user:pass@host:port/vhost[,amqp[s]://...] as given (comma-joined)
  std::vector<std::string> amqp_urls;  // the same, one URL per address, each validated
  std::string amqp_cacert, amqp_cert, amqp_key;  // TLS files for amqps://
  std::string slot;
  bool create_slot = false;
  bool check = false;  // --check: pre-flight only
  std::string plugin;  // outbox_decoder | wal2json
  std::string shard;   // "i/n" (outbox_decoder only), "" = all events
  std::string exchange;
  std::string ordering;  // commit | aggregate
  std::string on_dead_letter;  // continue | park
  int max_in_flight = 0;
  int max_in_flight_bytes = 0;
  std::string http;  // host:port, "" = off
  std::string log_format;  // text | json
  std::string log_level;
  std::string app_id;
  std::string cloudevents_source;  // "" = no CloudEvents attributes
  int status_interval_ms = 0;
  int checkpoint_interval_ms = 0;
  int pg_timeout_ms = 30000;
  int max_attempts = 0;
  int retry_base_ms = 0, retry_max_ms = 0;
  int reconnect_min_ms = 0, reconnect_max_ms = 0;
  int drain_timeout_ms = 0;
  int heartbeat_s = 0;
  int amqp_connect_timeout_ms = 0;
  int amqp_confirm_timeout_ms = 0;  // 0 = never  // per address: TCP connect, TLS, AMQP handshake and each start-up RPC
  std::string config_file;
  Topology topology;

  // More sinks (empty URL lists: not configured) and the rules that send events to them.
  std::string nats, redis;  // as given
  std::vector<std::string> nats_urls, redis_urls;
  std::string nats_subject_prefix, nats_cacert, nats_cert, nats_key;
  int nats_ack_timeout_ms = 30000;
  std::vector<NatsStream> nats_streams;
  std::string redis_stream, redis_cacert, redis_cert, redis_key;
  int redis_maxlen = 0, redis_dedup_window_ms = 120000, redis_ack_timeout_ms = 30000;
  std::string default_sink = "rabbitmq";
  std::vector<Route> routes;
  // The sinks in use (the default and every one a route names), in the order rabbitmq, nats,
  // redis; and those configured but used by nothing (a warning at start).
  std::vector<std::string> sinks, unused_sinks;
  // Settings given that nothing in use reads (a warning at start, naming each).
  std::vector<std::string> ignored;

  // name -> "flag" | "env OUTBOX_RELAY_X" | "file" | "default": where each value came from.
  std::map<std::string, std::string> sources;
};

using GetEnv = std::function<const char*(const char*)>;

// Parses argv, the environment and the TOML file. Throws ConfigError (message names the setting
// and the fix) or ConfigExit (--help, --version).
Config load_config(int argc, const char* const* argv, const GetEnv& getenv);

// The environment variable name of a setting: "max-in-flight" -> "OUTBOX_RELAY_MAX_IN_FLIGHT".
std::string env_name(const std::string& setting);

// "a, b,c" -> {"a", "b", "c"} (spaces around each URL dropped; empty entries kept as "" so that
// the caller can name them).
std::vector<std::string> split_url_list(const std::string& text);

// A one-line summary of the effective configuration with secrets masked.
std::string describe(const Config& c);

extern const char* const kRelayVersion;

}  // namespace outbox
