#include "ops/config.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>
#include <libpq-fe.h>
#include <toml++/toml.h>

#include "ops/flag_hint.h"
#include "sinks/sink_factory.h"
#include "sinks/sink_kind.h"
#include "source/pg_replication.h"
#include "support/build_info.h"
#include "support/mask.h"
#include "support/toml_table.h"

namespace outbox {

namespace {

// libpq's complaint about a conninfo, or nothing when it parses.
std::optional<std::string> conninfo_error(const std::string& ci) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(ci.c_str(), &err);
  std::string why = err ? err : "out of memory";
  if (err) PQfreemem(err);
  if (opts) {
    PQconninfoFree(opts);
    return std::nullopt;
  }
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return why;
}

// Unknown keywords (key=value and URI query forms) and malformed strings are found now, not at
// every reconnect.
void check_conninfo(const Setting& row, const std::string& v, const std::string& source) {
  auto why = conninfo_error(v);
  if (!why) return;
  // libpq's message quotes the text it stumbled on, which can be part of a password: only the
  // masked conninfo's own error is shown. When the masked one parses, the mistake is inside a secret.
  std::string masked = mask_conninfo(v);
  std::string head = "setting " + row.name + " (from " + source + "): \"" + masked + "\": ";
  auto masked_why = masked == v ? why : conninfo_error(masked);
  if (!masked_why)
    throw ConfigError(head + "libpq cannot read the value of a secret keyword (password, sslpassword, ...) -- fix: "
                             "in key=value form quote it (password='...', with \\' for ' and \\\\ for \\); in a "
                             "URI percent-encode its special characters (/ as %2F, ? as %3F, # as %23, @ as %40, "
                             "a space as %20)");
  throw ConfigError(head + *masked_why +
                    " -- fix: use libpq's keywords (host, port, dbname, user, password, sslmode, ...; see "
                    "https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-PARAMKEYWORDS)");
}

// PostgreSQL's rule for slot names (ReplicationSlotValidateName), at start rather than as a
// server error at every attempt.
void check_slot_name(const Setting& row, const std::string& v, const std::string& source) {
  if (v.empty()) throw ConfigError("setting " + row.name + " is empty; give --slot NAME");
  bool valid = v.size() <= 63;
  for (char c : v) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!valid)
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v +
                      "\" is not a replication slot name PostgreSQL accepts -- fix: use only lower-case letters, "
                      "digits and underscores, at most 63 bytes (for example outbox)");
}

void check_supported(const Setting& row, const std::string& v, const std::string& source) {
  if (std::find(row.choices.begin(), row.choices.end(), v) == row.choices.end())
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v + "\" is not supported; use " +
                      or_list(row.choices));
}

// "i/n", or "" for all events.
void check_shard(const Setting& row, const std::string& v, const std::string& source) {
  if (v.empty()) return;
  unsigned long i = 0, n = 0;
  char rest = 0;
  if (std::sscanf(v.c_str(), "%lu/%lu%c", &i, &n, &rest) != 2 || n == 0 || i >= n || n > 65536)
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v +
                      "\" is not i/n with 0 <= i < n <= 65536 (for example 0/4)");
}

// host:port with a port 0-65535, or "" / "off": a port out of range was logged as given and
// another one listened on.
void check_http_address(const Setting& row, const std::string& v, const std::string& source) {
  if (v.empty() || v == "off") return;
  auto colon = v.rfind(':');
  bool ok = colon != std::string::npos && colon != 0 && colon + 1 != v.size() && colon + 6 >= v.size();
  long port = 0;
  for (std::size_t i = colon + 1; ok && i < v.size(); ++i) {
    ok = std::isdigit(static_cast<unsigned char>(v[i])) != 0;
    port = port * 10 + (v[i] - '0');
  }
  if (!ok || port > 65535)
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v +
                      "\" is not address:port with a port from 0 to 65535 (0 picks a free one) -- fix: for example "
                      "127.0.0.1:9187, or \"off\"");
}

// Every message of every broker carries it (and dataschema starts with it): a value no consumer
// could read as a URI-reference is found at start, not in every message.
void check_cloudevents_source(const Setting& row, const std::string& v, const std::string& source) {
  constexpr std::size_t kMax = 1024;
  std::string head = "setting " + row.name + " (from " + source + "): ";
  if (v.size() > kMax)
    throw ConfigError(head + std::to_string(v.size()) + " bytes, more than the " + std::to_string(kMax) +
                      " a CloudEvents source may have here -- fix: a short URI such as /orders-db");
  for (unsigned char c : v)
    if (c <= 0x20 || c == 0x7f)
      throw ConfigError(head + "\"" + v + "\" holds a space or a control character, which a URI-reference cannot -- "
                        "fix: percent-encode it (a space as %20), e.g. /orders-db or https://example.com/orders");
}

void check_known_sink(const Setting& row, const std::string& v, const std::string& source) {
  if (!find_sink_kind(v))
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v + "\" is not one of " +
                      join(row.choices, ", "));
}

// The core's settings; each broker's are in sinks/<broker>/settings.cpp.
std::vector<Setting> core_rows() {
  const std::vector<std::string> sinks = sink_kind_names();
  return {
      text_setting("pg", "", "PostgreSQL connection: libpq conninfo or URI; replication=database is added (default: libpq defaults and PG* variables)", check_conninfo),
      text_setting("slot", "outbox", "logical replication slot to stream from", check_slot_name),
      boolean_setting("create-slot", "false", "create the slot when it is missing (harmless when it exists)"),
      one_of_setting("plugin", supported_plugins().front(), supported_plugins(), "output plugin of the slot: " + or_list(supported_plugins()), check_supported),
      text_setting("shard", "", "i/n: stream only the events whose aggregate_id hashes to shard i of n (outbox_decoder only; one slot per shard)", check_shard),
      one_of_setting("ordering", "aggregate", {"commit", "aggregate", "none"}, "aggregate: each aggregate's events keep their commit order, other aggregates pass one that waits for a confirm or a retry; commit: first attempts also keep commit order across aggregates, so an aggregate waiting for a retry holds back the events behind its next one. Either way an aggregate has one event in flight at a time; none: no order at all, every event pipelined up to the window and a retry can be overtaken (for consumers that need no order)"),
      one_of_setting("on-dead-letter", "continue", {"continue", "park"}, "what a dead letter means for its aggregate's later events: continue (published) or park (dead letters too, until SELECT outbox.release_parked(aggregate_type, aggregate_id) re-emits them in order)"),
      integer_setting("max-in-flight", "1000", 1, 1000000000, "window of published, unconfirmed messages, per sink (a silent broker fills its own)"),
      integer_setting("max-in-flight-bytes", "16777216", 1, 1000000000, "window limit in payload bytes, per sink (bounds memory with big events; one event always fits)"),
      text_setting("http", "127.0.0.1:9187", "address:port (port 0-65535, 0 = any free one) for /metrics, /healthz, /readyz (\"\" or \"off\" disables)", check_http_address),
      one_of_setting("log-format", "text", {"text", "json"}, "text or json (one JSON object per line)"),
      // main.cpp checks the level: spdlog knows which it takes.
      text_setting("log-level", "info", "trace, debug, info, warn, error"),
      integer_setting("status-interval-ms", "10000", 1, 1000000000, "send a standby status update at least this often (capped to a third of the server's wal_sender_timeout)"),
      integer_setting("checkpoint-interval-ms", "50", 1, 1000000000, "record the acknowledged position in outbox.relay_checkpoints at most this often while events flow (a restart of PostgreSQL re-sends what was acknowledged since), and every 10 s when idle"),
      integer_setting("pg-timeout-ms", "30000", 1000, 1000000000, "give a PostgreSQL connection up when it answers nothing for this long (a silent network): queries, writes, and the replication stream (pinged at half of it)"),
      integer_setting("max-attempts", "5", 1, 1000000000, "publish attempts per event (nack/unroutable) before it becomes a dead letter"),
      integer_setting("retry-base-ms", "200", 0, 1000000000, "first publish retry delay (doubles per attempt)"),
      integer_setting("retry-max-ms", "10000", 0, 1000000000, "cap of the publish retry delay"),
      integer_setting("reconnect-min-ms", "500", 0, 1000000000, "first reconnect delay after a lost connection (doubles, with jitter)"),
      integer_setting("reconnect-max-ms", "30000", 0, 1000000000, "cap of the reconnect delay"),
      integer_setting("drain-timeout-ms", "10000", 0, 1000000000, "on SIGTERM/SIGINT/SIGHUP, wait at most this long for outstanding confirms"),
      // Every sink reads it, though its name is from the time RabbitMQ was the only one.
      integer_setting("amqp-connect-timeout-ms", "10000", 1, 3600000, "per broker address (RabbitMQ, NATS and Redis): the longest wait for the TCP connection, TLS and protocol handshake and each start-up request, before the next address is tried"),
      text_setting("cloudevents-source", "", "add CloudEvents 1.0 attributes in binary content mode with this source URI, e.g. /orders-db, on RabbitMQ, NATS and Redis (cloudEvents:* headers, ce-* headers, ce-* entry fields)", check_cloudevents_source),
      one_of_setting("default-sink", "rabbitmq", sinks, "the sink of events no [[routes]] rule matches: " + or_list(sinks), check_known_sink),
  };
}

const SinkKind& kind_of(const std::string& name) {
  const SinkKind* k = find_sink_kind(name);
  if (!k) throw std::logic_error("no sink kind " + name);
  return *k;
}

const Setting& row_of(const SinkKind& kind, const std::string& name) {
  for (const Setting& s : kind.rows)
    if (s.name == name) return s;
  throw std::logic_error("sink kind " + kind.name + " has no setting " + name);
}

bool configured(const SinkKind& kind, const SettingValues& v) { return !v.urls(kind.server).empty(); }

// A server with a default URL is configured whether or not anyone gave it.
bool always_configured(const SinkKind& kind) { return !row_of(kind, kind.server).def.empty(); }

std::string file_key(const std::string& name) {
  std::string alt = name;
  std::replace(alt.begin(), alt.end(), '-', '_');
  return alt;
}

// What the command line gave, by setting name.
struct CommandLine {
  std::map<std::string, std::string> text;
  std::map<std::string, bool> flags;
  std::map<std::string, std::vector<std::string>> lists;
  std::string config_file;
  bool version = false, check = false;
};

void add_options(CLI::App& app, const std::vector<Setting>& rows, CommandLine& cli) {
  app.get_formatter()->column_width(34);
  app.add_option("--config", cli.config_file,
                 "TOML file with settings (same names) and [topology] [env OUTBOX_RELAY_CONFIG]");
  app.add_flag("--version", cli.version, "print the version and exit");
  // Boolean flags take an optional value: --check, --check=true|false|1|0|yes|no|on|off.
  app.add_flag("--check", cli.check,
               "connect to both servers, run every pre-flight check (settings, slot, plugin, privileges, topology, "
               "default exchange) without streaming or creating anything, and exit 0 if the relay could start, 2 if not")
      ->type_name("[=BOOL]");
  for (const Setting& s : rows) {
    std::string flag = "--" + s.name;
    std::string help = s.help + " [env " + env_name(s.name) + "; default: " + (s.def.empty() ? "\"\"" : s.def) + "]";
    if (s.type == SettingType::Boolean)
      app.add_flag(flag, cli.flags[s.name], help)->type_name("[=BOOL]");
    else if (s.repeatable)  // one address per occurrence (or a comma list)
      app.add_option(flag, cli.lists[s.name], help)
          ->type_name("URL[,URL...]")
          ->expected(1)
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    else
      app.add_option(flag, cli.text[s.name], help)->type_name(s.type == SettingType::Integer ? "INT" : "TEXT");
  }
}

std::vector<KnownFlag> known_flags(const std::vector<Setting>& rows) {
  std::vector<KnownFlag> flags{{"config", false, "the TOML file"}, {"version", true, ""}, {"check", true, ""},
                               {"help", true, ""}};
  for (const Setting& s : rows) {
    // The help's first words: "PostgreSQL connection" of "PostgreSQL connection: libpq conninfo ...".
    std::string what = s.help.substr(0, s.help.find_first_of(":;("));
    while (!what.empty() && what.back() == ' ') what.pop_back();
    flags.push_back({s.name, s.type == SettingType::Boolean, what.size() <= 60 ? what : ""});
  }
  return flags;
}

toml::table read_file(const std::string& file) {
  try {
    return toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config file " << file << ": " << mask_text(e.description()) << " at line " << e.source().begin.line;
    throw ConfigError(os.str());
  } catch (const std::exception& e) {
    throw ConfigError("config file " + file + ": " + mask_text(e.what()));
  }
}

// Every top-level key is a setting (spelt once, with '-' or '_') or a table someone reads.
void check_file_keys(const toml::table& file, const std::string& file_name, const std::vector<Setting>& rows) {
  for (auto& [k, v] : file) {
    std::string key(k.str());
    bool known = key == "routes";
    for (const SinkKind& kind : sink_kinds())
      for (const SinkTable& t : kind.tables) known = known || key == t.key;
    for (const Setting& s : rows) {
      std::string alt = file_key(s.name);
      if (key != s.name && key != alt) continue;
      known = true;
      if (alt != s.name && file.get(s.name) && file.get(alt))
        throw ConfigError(toml_line(file_name, v) + "setting " + s.name + " is given twice (as " + s.name + " and " +
                          alt + "); keep one");
    }
    if (!known)
      throw ConfigError(toml_line(file_name, v) + "unknown setting \"" + key + "\" (see outbox-relay --help)");
  }
}

// A setting's value in the file: a string, an integer or a boolean (converted like the
// environment's text); anything else (an array, a table, a float, a date) is an error with the line.
std::optional<std::string> toml_scalar(const toml::node* n, const std::string& file, const std::string& key) {
  if (!n) return std::nullopt;
  if (auto s = n->as_string()) return s->get();
  if (auto i = n->as_integer()) return std::to_string(i->get());
  if (auto b = n->as_boolean()) return std::string(b->get() ? "true" : "false");
  throw ConfigError(toml_line(file, *n) + "setting " + key + " is " + toml_type_name(*n) +
                    "; give one string, integer or boolean (see outbox-relay --help)");
}

// A repeatable URL list in the file: one string, or an array of strings (one per address),
// joined with commas like the flag's list.
std::optional<std::string> toml_url_list(const toml::node* n, const std::string& file, const Setting& row) {
  if (!n || !n->is_array()) return toml_scalar(n, file, row.name);
  std::string joined;
  for (const toml::node& e : *n->as_array()) {
    auto s = e.as_string();
    if (!s)
      throw ConfigError(toml_line(file, e) + "an entry of setting " + row.name + " is " + toml_type_name(e) +
                        "; give each broker address as a string, e.g. " + row.name + " = [\"" + row.choices.front() +
                        "u:p@mq1:5672/\", ...]");
    joined += (joined.empty() ? "" : ",") + s->get();
  }
  if (joined.empty())
    throw ConfigError(toml_line(file, *n) + "setting " + row.name + " is an empty array; give at least one URL");
  return joined;
}

std::optional<std::string> file_value(const toml::table& file, const std::string& file_name, const Setting& row) {
  const toml::node* n = file.get(row.name);
  if (!n) n = file.get(file_key(row.name));
  return row.repeatable ? toml_url_list(n, file_name, row) : toml_scalar(n, file_name, row.name);
}

struct Given {
  std::string text, source;
};

// Flag > environment > file > (fallback environment) > default, for one row.
Given given_value(const Setting& s, const CLI::App& app, CommandLine& cli, const GetEnv& getenv,
                  const toml::table& file, const std::string& file_name) {
  std::string env = env_name(s.name);
  if (app.count("--" + s.name) > 0) {
    // A flag's own value: --create-slot=false means false (it used to mean true).
    std::string text;
    if (s.type == SettingType::Boolean) text = cli.flags[s.name] ? "true" : "false";
    else if (s.repeatable)
      for (const std::string& u : cli.lists[s.name]) text += (text.empty() ? "" : ",") + u;
    else text = cli.text[s.name];
    return {text, "flag --" + s.name};
  }
  if (const char* e = getenv(env.c_str())) return {e, "env " + env};
  if (auto f = file_value(file, file_name, s)) return {*f, "file " + file_name};
  if (!s.fallback_env.empty())
    if (const char* e = getenv(s.fallback_env.c_str())) return {e, "env " + s.fallback_env};
  return {s.def, "default"};
}

// Every row's value, converted and checked in the order of the table (the file's mistakes first).
SettingValues values_of(const std::vector<Setting>& rows, const CLI::App& app, CommandLine& cli,
                        const GetEnv& getenv, const toml::table& file, const std::string& file_name) {
  std::vector<Given> given;
  for (const Setting& s : rows) given.push_back(given_value(s, app, cli, getenv, file, file_name));
  SettingValues v;
  for (std::size_t i = 0; i < rows.size(); ++i) v.set(rows[i], std::move(given[i].text), std::move(given[i].source));
  return v;
}

// The values the relay core reads, typed.
void read_core(Config& c) {
  const SettingValues& v = c.settings;
  c.pg = v.text("pg");
  c.slot = v.text("slot");
  c.create_slot = v.boolean("create-slot");
  c.plugin = v.text("plugin");
  c.shard = v.text("shard");
  c.exchange = v.text("exchange");
  c.ordering = v.text("ordering");
  c.on_dead_letter = v.text("on-dead-letter");
  c.max_in_flight = v.integer("max-in-flight");
  c.max_in_flight_bytes = v.integer("max-in-flight-bytes");
  c.http = v.text("http") == "off" ? "" : v.text("http");
  c.log_format = v.text("log-format");
  c.log_level = v.text("log-level");
  c.status_interval_ms = v.integer("status-interval-ms");
  c.checkpoint_interval_ms = v.integer("checkpoint-interval-ms");
  c.pg_timeout_ms = v.integer("pg-timeout-ms");
  c.max_attempts = v.integer("max-attempts");
  c.retry_base_ms = v.integer("retry-base-ms");
  c.retry_max_ms = v.integer("retry-max-ms");
  c.reconnect_min_ms = v.integer("reconnect-min-ms");
  c.reconnect_max_ms = v.integer("reconnect-max-ms");
  c.drain_timeout_ms = v.integer("drain-timeout-ms");
  c.default_sink = v.text("default-sink");
}

// Cross-field checks, run once every row has its value.

void check_pairs(const std::vector<Setting>& rows, const SettingValues& v) {
  for (const Setting& s : rows)
    if (!s.pair.empty() && v.text(s.name).empty() != v.text(s.pair).empty())
      throw ConfigError("settings " + s.name + " and " + s.pair + " go together: give both or neither");
}

void check_retry_bounds(const Config& c) {
  const SettingValues& v = c.settings;
  if (c.retry_max_ms < c.retry_base_ms)
    throw ConfigError("setting retry-max-ms (" + std::to_string(c.retry_max_ms) + ", from " + v.source("retry-max-ms") +
                      ") is below retry-base-ms (" + std::to_string(c.retry_base_ms) + ", from " +
                      v.source("retry-base-ms") + "): the cap of the retry delay cannot be below its start -- fix: "
                      "raise --retry-max-ms or lower --retry-base-ms");
}

void check_reconnect_bounds(const Config& c) {
  const SettingValues& v = c.settings;
  if (c.reconnect_min_ms > c.reconnect_max_ms)
    throw ConfigError("setting reconnect-min-ms (" + std::to_string(c.reconnect_min_ms) + ", from " +
                      v.source("reconnect-min-ms") + ") is above reconnect-max-ms (" +
                      std::to_string(c.reconnect_max_ms) + ", from " + v.source("reconnect-max-ms") +
                      "): the first reconnect delay cannot exceed its cap -- fix: lower --reconnect-min-ms or raise "
                      "--reconnect-max-ms");
}

// Parking keeps an aggregate's later events behind its dead letter: with no order there is no
// "later" to keep (they may already be published).
void check_ordering_park(const Config& c) {
  const SettingValues& v = c.settings;
  if (c.ordering == "none" && c.on_dead_letter == "park")
    throw ConfigError("setting on-dead-letter park (from " + v.source("on-dead-letter") + ") needs an order, and ordering is none (from " +
                      v.source("ordering") + "): the later events of an aggregate may already be published -- fix: "
                      "--ordering aggregate, or --on-dead-letter continue");
}

void check_shard_plugin(const Config& c) {
  if (!c.shard.empty() && c.plugin != "outbox_decoder")
    throw ConfigError("setting shard needs --plugin outbox_decoder (stock wal2json cannot shard)");
}

void check_default_sink_configured(const Config& c) {
  const SinkKind& k = kind_of(c.default_sink);
  if (!configured(k, c.settings))
    throw ConfigError("setting default-sink is " + c.default_sink + " but setting " + k.server +
                      " (the server URL) is not given -- fix: give --" + k.server + " URL");
}

// [[routes]]: match (the event type), aggregate_type, exchange: globs; sink: where matching events go.
std::vector<Route> parse_routes(const toml::table& root, const std::string& file) {
  std::vector<Route> out;
  if (!root.get("routes")) return out;
  std::string names = "\"" + join(sink_kind_names(), "\" | \"") + "\"";
  for (const toml::table* rt : toml_entries(root, "routes", file)) {
    // The event type's condition is called match (event_type, its undocumented second name, is gone).
    if (const toml::node* n = rt->get("event_type"))
      throw ConfigError(toml_line(file, *n) + "[[routes]] has no key event_type: the event type's glob is match -- "
                        "fix: match = \"...\"");
    TomlEntry e(*rt, file, "[[routes]]", {"match", "aggregate_type", "exchange", "sink"});
    Route r;
    r.line = static_cast<int>(rt->source().begin.line);
    for (const char* key : {"match", "aggregate_type", "exchange"}) {
      if (!rt->get(key)) continue;
      std::string v = e.str(key);
      if (v.empty()) throw ConfigError(e.line_of(key) + "[[routes]] " + key + " is empty; leave it out to match anything");
      // With '#' as a word the rule matched nothing, silently (a literal '#' is still [#]).
      if (auto meant = Router::amqp_wildcard_meant(v))
        throw ConfigError(e.line_of(key) + "[[routes]] " + key + " = \"" + v + "\": '#' is RabbitMQ's wildcard; " +
                          "routes match shell globs, where * matches any text (dots too) and # only a '#' -- fix: " +
                          key + " = \"" + *meant + "\" (for a literal '#', write [#])");
      std::string k = key;
      (k == "aggregate_type" ? r.aggregate_type : k == "exchange" ? r.exchange : r.event_type) = v;
    }
    r.sink = e.str("sink");
    if (r.sink.empty()) throw ConfigError(e.line_of("sink") + "[[routes]] needs sink = " + names);
    out.push_back(std::move(r));
  }
  return out;
}

void check_route_sinks(const Config& c) {
  for (const Route& r : c.routes) {
    std::string at = "config file " + c.config_file + " line " + std::to_string(r.line) + ": ";
    const SinkKind* k = find_sink_kind(r.sink);
    if (!k)
      throw ConfigError(at + "[[routes]] sink = \"" + r.sink + "\" is not one of " + join(sink_kind_names(), ", "));
    if (!configured(*k, c.settings))
      throw ConfigError(at + "[[routes]] sends events to " + r.sink + ", but setting " + k->server +
                        " (the server URL) is not given -- fix: give " + k->server + " = \"URL\" in the file or --" +
                        k->server + " URL");
  }
}

bool in_use(const Config& c, const std::string& kind) {
  return std::find(c.sinks.begin(), c.sinks.end(), kind) != c.sinks.end();
}

// The sinks in use, in the order of sink_kinds(): the default one and every one a route names.
void pick_sinks(Config& c) {
  for (const SinkKind& k : sink_kinds()) {
    bool used = c.default_sink == k.name;
    for (const Route& r : c.routes) used = used || r.sink == k.name;
    if (used) c.sinks.push_back(k.name);
    else if (configured(k, c.settings) && !always_configured(k)) c.unused_sinks.push_back(k.name);
  }
}

// What was given for a sink that nothing reads, found by the rows' owners: the settings and tables
// of a sink not in use (its server setting aside: an unused sink is reported as such), and TLS
// files without a URL that uses TLS.
void note_ignored(Config& c, const std::vector<Setting>& rows) {
  const SettingValues& v = c.settings;
  for (const SinkKind& k : sink_kinds()) {
    if (in_use(c, k.name)) continue;
    std::string why = " (" + k.display_name + " is not in use)";
    for (const SinkTable& t : k.tables)
      if (v.table_given(t.key)) c.ignored.push_back(t.label + why);
    for (const Setting& s : rows)
      if (s.owner == k.name && s.name != k.server && v.given(s.name)) c.ignored.push_back(s.name + why);
  }
  for (const Setting& s : rows) {
    if (s.tls_scheme.empty() || !v.given(s.name) || !in_use(c, s.owner)) continue;
    const std::vector<std::string>& urls = v.urls(kind_of(s.owner).server);
    bool tls =
        std::any_of(urls.begin(), urls.end(), [&](const std::string& u) { return u.rfind(s.tls_scheme, 0) == 0; });
    if (!tls) c.ignored.push_back(s.name + " (no " + s.tls_scheme + " URL)");
  }
}

// The servers of the sinks in use or configured, masked: ` amqp="..."`.
std::string servers(const Config& c, bool with_default) {
  std::string out;
  for (const SinkKind& k : sink_kinds()) {
    if (always_configured(k) != with_default) continue;
    const auto& unused = c.unused_sinks;
    if (!in_use(c, k.name) && std::find(unused.begin(), unused.end(), k.name) == unused.end()) continue;
    std::string urls;
    for (const auto& u : c.settings.urls(k.server)) urls += (urls.empty() ? "" : ",") + mask_url(u);
    out += " " + k.server + "=\"" + urls + "\"";
  }
  return out;
}

}  // namespace

std::vector<Setting> settings_table() {
  std::vector<Setting> rows = core_rows();
  for (const SinkKind& k : sink_kinds()) rows.insert(rows.end(), k.rows.begin(), k.rows.end());
  return rows;
}

std::string env_name(const std::string& setting) {
  std::string out = "OUTBOX_RELAY_";
  for (char c : setting) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Config load_config(int argc, const char* const* argv, const GetEnv& getenv) {
  CLI::App app{"outbox-relay: streams committed outbox events from a PostgreSQL logical replication slot "
               "to RabbitMQ, NATS JetStream or Redis Streams, acknowledging WAL only after the broker confirmed "
               "every event of a transaction.\n"
               "Every setting can also be given as an environment variable OUTBOX_RELAY_<NAME> (upper case, "
               "'-' -> '_') or in the TOML file of --config; flags win over the environment, which wins over the file.",
               "outbox-relay"};
  const std::vector<Setting> rows = settings_table();
  CommandLine cli;
  add_options(app, rows, cli);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    throw ConfigExit{0, app.help()};
  } catch (const CLI::ExtrasError&) {
    throw ConfigError(explain_unexpected(std::vector<std::string>(argv + std::min(argc, 1), argv + argc),
                                         app.remaining(), known_flags(rows)));
  } catch (const CLI::ConversionError& e) {
    // Only flags convert their value here (the settings' values are checked later, by row).
    throw ConfigError(mask_text(e.what()) +
                      " (boolean flags take =true, =false, =1, =0, =yes or =no; see outbox-relay --help)");
  } catch (const CLI::ParseError& e) {
    // The parser quotes the words it refused: a URL or password=... may be among them.
    throw ConfigError(mask_text(e.what()) + " (see outbox-relay --help)");
  }
  if (cli.version)
    throw ConfigExit{0, std::string("outbox-relay ") + kRelayVersion + " (commit " + kBuildCommit + ")\n"};

  Config c;
  c.check = cli.check;
  c.config_file = cli.config_file;
  if (c.config_file.empty())
    if (const char* e = getenv("OUTBOX_RELAY_CONFIG")) c.config_file = e;
  toml::table file;
  if (!c.config_file.empty()) {
    file = read_file(c.config_file);
    check_file_keys(file, c.config_file, rows);
  }
  c.settings = values_of(rows, app, cli, getenv, file, c.config_file);
  read_core(c);
  check_pairs(rows, c.settings);
  check_retry_bounds(c);
  check_ordering_park(c);
  check_reconnect_bounds(c);
  check_shard_plugin(c);
  for (const SinkKind& k : sink_kinds())
    for (const SinkTable& t : k.tables) t.parse(file, c.config_file, c.settings);
  check_default_sink_configured(c);
  c.routes = parse_routes(file, c.config_file);
  check_route_sinks(c);
  pick_sinks(c);
  note_ignored(c, rows);
  return c;
}

std::vector<std::string> route_lines(const Config& c) {
  std::vector<std::string> out;
  auto to = [&](const std::string& sink) {
    const SinkKind& k = kind_of(sink);
    return sink + " (" + k.destination(c.settings) + ")";
  };
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    const Route& r = c.routes[i];
    std::string when;
    auto add = [&](const char* key, const std::optional<std::string>& v) {
      if (v) when += std::string(when.empty() ? "" : ", ") + key + " \"" + *v + "\"";
    };
    add("match", r.event_type);
    add("aggregate_type", r.aggregate_type);
    add("exchange", r.exchange);
    out.push_back("route " + std::to_string(i + 1) + " (config file line " + std::to_string(r.line) + "): " +
                  (when.empty() ? "every event" : when) + " -> " + to(r.sink));
  }
  out.push_back(std::string(c.routes.empty() ? "every event" : "events no route matches") + " -> " +
                to(c.default_sink) + " (default-sink)");
  return out;
}

std::string describe(const Config& c) {
  std::ostringstream os;
  // The servers that are always configured (a default URL) come first, the others last.
  os << "pg=\"" << mask_conninfo(c.pg) << "\"" << servers(c, true) << " slot=" << c.slot << " plugin=" << c.plugin
     << (c.shard.empty() ? "" : " shard=" + c.shard) << " create-slot=" << (c.create_slot ? "true" : "false")
     // Only RabbitMQ reads the exchange: shown for another sink it reads as a destination.
     << (in_use(c, "rabbitmq") ? " exchange=" + c.exchange : std::string()) << " max-in-flight=" << c.max_in_flight
     << " http=" << (c.http.empty() ? "off" : c.http) << " max-attempts=" << c.max_attempts;
  std::string sinks;
  for (const auto& k : c.sinks) sinks += (sinks.empty() ? "" : ",") + k;
  os << " sinks=" << sinks << " default-sink=" << c.default_sink << " routes=" << c.routes.size()
     << servers(c, false);
  return os.str();
}

}  // namespace outbox
