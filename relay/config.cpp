#include "config.h"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include "mask.h"

namespace outbox {

const char* const kRelayVersion = "0.1.0";

namespace {

struct Def {
  const char* name;
  const char* def;
  bool flag;
  const char* help;
};

// The one list of settings. Keep relay/README.md in step.
const Def kDefs[] = {
    {"pg", "", false, "PostgreSQL connection: libpq conninfo or URI; replication=database is added (default: libpq defaults and PG* variables)"},
    {"amqp", "amqp://guest:guest@127.0.0.1:5672/", false, "RabbitMQ URL amqp://user:pass@host:port/vhost or amqps://... (falls back to OUTBOX_AMQP_URL)"},
    {"amqp-cacert", "", false, "amqps:// only: PEM file of the CA that signed the broker's certificate (peer and host name are verified)"},
    {"amqp-cert", "", false, "amqps:// only: PEM client certificate, for brokers that require one"},
    {"amqp-key", "", false, "amqps:// only: PEM private key of --amqp-cert"},
    {"slot", "outbox", false, "logical replication slot to stream from"},
    {"create-slot", "false", true, "create the slot when it is missing (harmless when it exists)"},
    {"plugin", "outbox_decoder", false, "output plugin of the slot: outbox_decoder or wal2json"},
    {"shard", "", false, "i/n: stream only the events whose aggregate_id hashes to shard i of n (outbox_decoder only; one slot per shard)"},
    {"exchange", "amq.topic", false, "exchange for events whose exchange column is null"},
    {"ordering", "aggregate", false, "aggregate: each aggregate's events keep their commit order, other aggregates pass one that waits for a confirm or a retry; commit: first attempts also keep commit order across aggregates, so an aggregate waiting for a retry holds back the events behind its next one. Either way an aggregate has one event in flight at a time"},
    {"on-dead-letter", "continue", false, "what a dead letter means for its aggregate's later events: continue (published) or park (dead letters too, until SELECT outbox.release_parked(aggregate_type, aggregate_id) re-emits them in order)"},
    {"max-in-flight", "1000", false, "window of published, unconfirmed messages"},
    {"max-in-flight-bytes", "16777216", false, "window limit in payload bytes (bounds memory with big events; one event always fits)"},
    {"http", "127.0.0.1:9187", false, "address:port for /metrics, /healthz, /readyz (\"\" or \"off\" disables)"},
    {"log-format", "text", false, "text or json (one JSON object per line)"},
    {"log-level", "info", false, "trace, debug, info, warn, error"},
    {"app-id", "outbox-relay", false, "AMQP app_id property"},
    {"cloudevents-source", "", false, "add CloudEvents 1.0 attributes (binary mode, cloudEvents:* headers) with this source URI, e.g. /orders-db"},
    {"status-interval-ms", "10000", false, "send a standby status update at least this often"},
    {"checkpoint-interval-ms", "5000", false, "record outbox.relay_checkpoints this often"},
    {"max-attempts", "5", false, "publish attempts per event (nack/unroutable) before it becomes a dead letter"},
    {"retry-base-ms", "200", false, "first publish retry delay (doubles per attempt)"},
    {"retry-max-ms", "10000", false, "cap of the publish retry delay"},
    {"reconnect-min-ms", "500", false, "first reconnect delay after a lost connection (doubles, with jitter)"},
    {"reconnect-max-ms", "30000", false, "cap of the reconnect delay"},
    {"drain-timeout-ms", "10000", false, "on SIGTERM/SIGINT, wait at most this long for outstanding confirms"},
    {"heartbeat", "30", false, "AMQP heartbeat in seconds (0 = off)"},
};

// Whether a default is a whole number (127.0.0.1:9187 is not, though it starts with a digit).
bool is_integer(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (!std::isdigit(static_cast<unsigned char>(*s))) return false;
  return true;
}

std::string upper_env(const std::string& name) {
  std::string out = "OUTBOX_RELAY_";
  for (char c : name) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::string> toml_scalar(const toml::node* n) {
  if (!n) return std::nullopt;
  if (auto s = n->as_string()) return s->get();
  if (auto i = n->as_integer()) return std::to_string(i->get());
  if (auto b = n->as_boolean()) return std::string(b->get() ? "true" : "false");
  if (auto f = n->as_floating_point()) return std::to_string(f->get());
  return std::nullopt;
}

const toml::node* toml_get(const toml::table& t, const std::string& name) {
  if (auto n = t.get(name)) return n;
  std::string alt = name;
  for (auto& c : alt)
    if (c == '-') c = '_';
  return t.get(alt);
}

bool parse_bool(const std::string& v, bool& out) {
  std::string l;
  for (char c : v) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "1" || l == "true" || l == "yes" || l == "on") return out = true, true;
  if (l == "0" || l == "false" || l == "no" || l == "off" || l.empty()) return out = false, true;
  return false;
}

std::string str_or(const toml::table& t, const char* key, std::string def = {}) {
  if (auto n = t.get(key))
    if (auto s = n->as_string()) return s->get();
  return def;
}
bool bool_or(const toml::table& t, const char* key, bool def) {
  if (auto n = t.get(key))
    if (auto b = n->as_boolean()) return b->get();
  return def;
}
std::optional<std::int64_t> int_opt(const toml::table& t, const char* key) {
  if (auto n = t.get(key))
    if (auto i = n->as_integer()) return i->get();
  return std::nullopt;
}

Topology parse_topology(const toml::table& root, const std::string& file) {
  Topology topo;
  const toml::table* t = root["topology"].as_table();
  if (!t) return topo;
  auto need = [&](const std::string& what, const std::string& v) {
    if (v.empty()) throw ConfigError(file + ": every " + what + " needs a non-empty name");
  };
  if (auto arr = (*t)["exchanges"].as_array())
    for (auto& e : *arr)
      if (auto et = e.as_table()) {
        Topology::Exchange x;
        x.name = str_or(*et, "name");
        need("[[topology.exchanges]]", x.name);
        x.type = str_or(*et, "type", "topic");
        x.durable = bool_or(*et, "durable", true);
        x.auto_delete = bool_or(*et, "auto_delete", false);
        topo.exchanges.push_back(x);
      }
  if (auto arr = (*t)["queues"].as_array())
    for (auto& e : *arr)
      if (auto qt = e.as_table()) {
        Topology::Queue q;
        q.name = str_or(*qt, "name");
        need("[[topology.queues]]", q.name);
        q.durable = bool_or(*qt, "durable", true);
        q.auto_delete = bool_or(*qt, "auto_delete", false);
        q.exclusive = bool_or(*qt, "exclusive", false);
        q.dead_letter_exchange = str_or(*qt, "dead_letter_exchange");
        q.dead_letter_routing_key = str_or(*qt, "dead_letter_routing_key");
        q.queue_type = str_or(*qt, "queue_type");
        q.message_ttl_ms = int_opt(*qt, "message_ttl_ms");
        q.max_length = int_opt(*qt, "max_length");
        topo.queues.push_back(q);
      }
  if (auto arr = (*t)["bindings"].as_array())
    for (auto& e : *arr)
      if (auto bt = e.as_table()) {
        Topology::Binding b;
        b.queue = str_or(*bt, "queue");
        b.exchange = str_or(*bt, "exchange");
        b.routing_key = str_or(*bt, "routing_key", "#");
        if (b.queue.empty() || b.exchange.empty())
          throw ConfigError(file + ": every [[topology.bindings]] needs queue and exchange");
        topo.bindings.push_back(b);
      }
  return topo;
}

int to_int(const Config& c, const std::string& name, const std::string& v, int min) {
  try {
    std::size_t pos = 0;
    long long x = std::stoll(v, &pos);
    if (pos != v.size() || x < min || x > 1000000000) throw std::out_of_range("range");
    return static_cast<int>(x);
  } catch (const std::exception&) {
    auto src = c.sources.count(name) ? c.sources.at(name) : "default";
    throw ConfigError("setting " + name + " (from " + src + "): \"" + v + "\" is not an integer >= " +
                      std::to_string(min) + "; fix the value of --" + name);
  }
}

}  // namespace

std::string env_name(const std::string& setting) { return upper_env(setting); }

Config load_config(int argc, const char* const* argv, const GetEnv& getenv) {
  CLI::App app{"outbox-relay: streams committed outbox events from a PostgreSQL logical replication slot "
               "to RabbitMQ with publisher confirms, acknowledging WAL only after the broker confirmed.\n"
               "Every setting can also be given as an environment variable OUTBOX_RELAY_<NAME> (upper case, "
               "'-' -> '_') or in the TOML file of --config; flags win over the environment, which wins over the file.",
               "outbox-relay"};
  app.get_formatter()->column_width(34);
  std::map<std::string, std::string> cli;
  std::map<std::string, bool> cli_flags;
  std::string config_file;
  bool version = false;
  app.add_option("--config", config_file, "TOML file with settings (same names) and [topology] [env OUTBOX_RELAY_CONFIG]");
  app.add_flag("--version", version, "print the version and exit");
  bool check = false;
  app.add_flag("--check", check,
               "connect to both servers, run every pre-flight check (settings, slot, plugin, privileges, topology, "
               "default exchange) without streaming, and exit 0 if the relay could start, 2 if not");
  for (const Def& d : kDefs) {
    std::string help = std::string(d.help) + " [env " + upper_env(d.name) + "; default: " +
                       (std::string(d.def).empty() ? "\"\"" : d.def) + "]";
    if (d.flag) app.add_flag(std::string("--") + d.name, cli_flags[d.name], help);
    else
      app.add_option(std::string("--") + d.name, cli[d.name], help)
          ->type_name(is_integer(d.def) ? "INT" : "TEXT");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    throw ConfigExit{0, app.help()};
  } catch (const CLI::ParseError& e) {
    throw ConfigError(std::string(e.what()) + " (see outbox-relay --help)");
  }
  if (version) throw ConfigExit{0, std::string("outbox-relay ") + kRelayVersion + "\n"};

  Config c;
  c.check = check;
  if (config_file.empty())
    if (const char* e = getenv("OUTBOX_RELAY_CONFIG")) config_file = e;
  toml::table file;
  if (!config_file.empty()) {
    try {
      file = toml::parse_file(config_file);
    } catch (const toml::parse_error& e) {
      std::ostringstream os;
      os << "config file " << config_file << ": " << e.description() << " at line " << e.source().begin.line;
      throw ConfigError(os.str());
    } catch (const std::exception& e) {
      throw ConfigError("config file " + config_file + ": " + e.what());
    }
    for (auto& [k, v] : file) {
      std::string key(k.str());
      bool known = key == "topology";
      for (const Def& d : kDefs) {
        std::string alt = d.name;
        for (auto& ch : alt)
          if (ch == '-') ch = '_';
        if (key == d.name || key == alt) known = true;
      }
      if (!known) throw ConfigError("config file " + config_file + ": unknown setting \"" + key + "\" (see outbox-relay --help)");
    }
  }
  c.config_file = config_file;

  std::map<std::string, std::string> val;
  for (const Def& d : kDefs) {
    std::string name = d.name;
    std::string env = upper_env(name);
    if (d.flag ? app.count("--" + name) > 0 : app.count("--" + name) > 0) {
      val[name] = d.flag ? "true" : cli[name];
      c.sources[name] = "flag --" + name;
    } else if (const char* e = getenv(env.c_str())) {
      val[name] = e;
      c.sources[name] = "env " + env;
    } else if (auto f = toml_scalar(toml_get(file, name))) {
      val[name] = *f;
      c.sources[name] = "file " + config_file;
    } else {
      val[name] = d.def;
      c.sources[name] = "default";
      if (name == "amqp")
        if (const char* e = getenv("OUTBOX_AMQP_URL")) {
          val[name] = e;
          c.sources[name] = "env OUTBOX_AMQP_URL";
        }
    }
  }
  c.pg = val["pg"];
  c.amqp = val["amqp"];
  c.amqp_cacert = val["amqp-cacert"];
  c.amqp_cert = val["amqp-cert"];
  c.amqp_key = val["amqp-key"];
  if (c.amqp_cert.empty() != c.amqp_key.empty())
    throw ConfigError("settings amqp-cert and amqp-key go together: give both or neither");
  c.slot = val["slot"];
  if (!parse_bool(val["create-slot"], c.create_slot))
    throw ConfigError("setting create-slot (from " + c.sources["create-slot"] + "): \"" + val["create-slot"] +
                      "\" is not a boolean (true/false)");
  c.plugin = val["plugin"];
  if (c.plugin != "outbox_decoder" && c.plugin != "wal2json")
    throw ConfigError("setting plugin (from " + c.sources["plugin"] + "): \"" + c.plugin +
                      "\" is not supported; use outbox_decoder or wal2json");
  c.shard = val["shard"];
  if (!c.shard.empty()) {
    unsigned long i = 0, n = 0;
    char rest = 0;
    if (std::sscanf(c.shard.c_str(), "%lu/%lu%c", &i, &n, &rest) != 2 || n == 0 || i >= n || n > 65536)
      throw ConfigError("setting shard (from " + c.sources["shard"] + "): \"" + c.shard +
                        "\" is not i/n with 0 <= i < n <= 65536 (for example 0/4)");
    if (c.plugin != "outbox_decoder")
      throw ConfigError("setting shard needs --plugin outbox_decoder (stock wal2json cannot shard)");
  }
  c.exchange = val["exchange"];
  c.ordering = val["ordering"];
  c.on_dead_letter = val["on-dead-letter"];
  if (c.on_dead_letter != "continue" && c.on_dead_letter != "park")
    throw ConfigError("setting on-dead-letter (from " + c.sources["on-dead-letter"] + "): \"" + c.on_dead_letter +
                      "\" must be continue or park");
  if (c.ordering != "commit" && c.ordering != "aggregate")
    throw ConfigError("setting ordering (from " + c.sources["ordering"] + "): \"" + c.ordering +
                      "\" must be commit or aggregate");
  c.max_in_flight = to_int(c, "max-in-flight", val["max-in-flight"], 1);
  c.max_in_flight_bytes = to_int(c, "max-in-flight-bytes", val["max-in-flight-bytes"], 1);
  c.http = val["http"];
  if (c.http == "off") c.http.clear();
  c.log_format = val["log-format"];
  if (c.log_format != "text" && c.log_format != "json")
    throw ConfigError("setting log-format (from " + c.sources["log-format"] + "): \"" + c.log_format +
                      "\" must be text or json");
  c.log_level = val["log-level"];
  c.app_id = val["app-id"];
  c.cloudevents_source = val["cloudevents-source"];
  c.status_interval_ms = to_int(c, "status-interval-ms", val["status-interval-ms"], 1);
  c.checkpoint_interval_ms = to_int(c, "checkpoint-interval-ms", val["checkpoint-interval-ms"], 1);
  c.max_attempts = to_int(c, "max-attempts", val["max-attempts"], 1);
  c.retry_base_ms = to_int(c, "retry-base-ms", val["retry-base-ms"], 0);
  c.retry_max_ms = to_int(c, "retry-max-ms", val["retry-max-ms"], 0);
  c.reconnect_min_ms = to_int(c, "reconnect-min-ms", val["reconnect-min-ms"], 0);
  c.reconnect_max_ms = to_int(c, "reconnect-max-ms", val["reconnect-max-ms"], 0);
  c.drain_timeout_ms = to_int(c, "drain-timeout-ms", val["drain-timeout-ms"], 0);
  c.heartbeat_s = to_int(c, "heartbeat", val["heartbeat"], 0);
  if (c.slot.empty()) throw ConfigError("setting slot is empty; give --slot NAME");
  if (c.amqp.rfind("amqp://", 0) != 0 && c.amqp.rfind("amqps://", 0) != 0)
    throw ConfigError("setting amqp (from " + c.sources["amqp"] + "): \"" + mask_url(c.amqp) +
                      "\" is not an amqp:// or amqps:// URL");
  if (!config_file.empty()) c.topology = parse_topology(file, config_file);
  return c;
}

std::string describe(const Config& c) {
  std::ostringstream os;
  os << "pg=\"" << mask_conninfo(c.pg) << "\" amqp=\"" << mask_url(c.amqp) << "\" slot=" << c.slot
     << " plugin=" << c.plugin << (c.shard.empty() ? "" : " shard=" + c.shard) << " create-slot=" << (c.create_slot ? "true" : "false") << " exchange=" << c.exchange
     << " max-in-flight=" << c.max_in_flight << " http=" << (c.http.empty() ? "off" : c.http)
     << " max-attempts=" << c.max_attempts;
  return os.str();
}

}  // namespace outbox
