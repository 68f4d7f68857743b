#include "ops/config.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <amqp.h>
#include <libpq-fe.h>
#include <toml++/toml.h>

#include "support/mask.h"

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
    {"amqp", "amqp://guest:guest@127.0.0.1:5672/", false, "RabbitMQ URL amqp://user:pass@host:port/vhost or amqps://..., or several separated by commas (nodes of a cluster; the flag may also be repeated, the file may give an array): tried in order, starting from the last one that worked (falls back to OUTBOX_AMQP_URL)"},
    {"amqp-confirm-timeout-ms", "30000", false, "messages in flight and no confirm or nack for this long (while the broker does not block publishing): the connection counts as lost and is reopened, to the next address (0 = never)"},
    {"amqp-connect-timeout-ms", "10000", false, "per broker address (RabbitMQ, NATS and Redis): the longest wait for the TCP connection, TLS and protocol handshake and each start-up request, before the next address is tried"},
    {"amqp-cacert", "", false, "amqps:// only: PEM file of the CA that signed the broker's certificate (peer and host name are verified)"},
    {"amqp-cert", "", false, "amqps:// only: PEM client certificate, for brokers that require one"},
    {"amqp-key", "", false, "amqps:// only: PEM private key of --amqp-cert"},
    {"nats", "", false, "NATS server URL nats://user:pass@host:4222 or tls://..., or several separated by commas (servers of one cluster): enables the nats sink, which publishes to JetStream with Nats-Msg-Id = event id; events go there by [[routes]] or --default-sink nats"},
    {"nats-subject-prefix", "outbox.", false, "NATS subject of an event: this prefix and its routing key (default <aggregate_type>.<event_type>)"},
    {"nats-ack-timeout-ms", "30000", false, "messages in flight and no JetStream ack for this long: the NATS connection counts as lost and is reopened (0 = never)"},
    {"nats-cacert", "", false, "tls:// only: PEM file of the CA that signed the NATS server's certificate"},
    {"nats-cert", "", false, "tls:// only: PEM client certificate"},
    {"nats-key", "", false, "tls:// only: PEM private key of --nats-cert"},
    {"redis", "", false, "Redis URL redis://user:pass@host:6379/db or rediss://..., or several separated by commas (tried in order): enables the redis sink, which XADDs each event to a stream; events go there by [[routes]] or --default-sink redis"},
    {"redis-stream", "outbox:{aggregate_type}", false, "Redis stream of an event; {aggregate_type}, {event_type}, {routing_key} and {exchange} are replaced by the event's values (\"_\" for null)"},
    {"redis-maxlen", "0", false, "trim each stream to about this many entries (XADD MAXLEN ~; 0 = never trim)"},
    {"redis-dedup-window-ms", "120000", false, "a re-sent event (same id) within this window is not added again (a key outbox:dedup:<id> per event, set in the same script as the XADD; 0 = no de-duplication)"},
    {"redis-ack-timeout-ms", "30000", false, "requests in flight and no Redis reply for this long: the connection counts as lost and is reopened (0 = never)"},
    {"redis-cacert", "", false, "rediss:// only: PEM file of the CA that signed the Redis server's certificate"},
    {"redis-cert", "", false, "rediss:// only: PEM client certificate"},
    {"redis-key", "", false, "rediss:// only: PEM private key of --redis-cert"},
    {"default-sink", "rabbitmq", false, "the sink of events no [[routes]] rule matches: rabbitmq, nats or redis"},
    {"slot", "outbox", false, "logical replication slot to stream from"},
    {"create-slot", "false", true, "create the slot when it is missing (harmless when it exists)"},
    {"plugin", "outbox_decoder", false, "output plugin of the slot: outbox_decoder or wal2json"},
    {"shard", "", false, "i/n: stream only the events whose aggregate_id hashes to shard i of n (outbox_decoder only; one slot per shard)"},
    {"exchange", "amq.topic", false, "exchange for events whose exchange column is null"},
    {"ordering", "aggregate", false, "aggregate: each aggregate's events keep their commit order, other aggregates pass one that waits for a confirm or a retry; commit: first attempts also keep commit order across aggregates, so an aggregate waiting for a retry holds back the events behind its next one. Either way an aggregate has one event in flight at a time"},
    {"on-dead-letter", "continue", false, "what a dead letter means for its aggregate's later events: continue (published) or park (dead letters too, until SELECT outbox.release_parked(aggregate_type, aggregate_id) re-emits them in order)"},
    {"max-in-flight", "1000", false, "window of published, unconfirmed messages, per sink (a silent broker fills its own)"},
    {"max-in-flight-bytes", "16777216", false, "window limit in payload bytes, per sink (bounds memory with big events; one event always fits)"},
    {"http", "127.0.0.1:9187", false, "address:port (port 0-65535, 0 = any free one) for /metrics, /healthz, /readyz (\"\" or \"off\" disables)"},
    {"log-format", "text", false, "text or json (one JSON object per line)"},
    {"log-level", "info", false, "trace, debug, info, warn, error"},
    {"app-id", "outbox-relay", false, "AMQP app_id property"},
    {"cloudevents-source", "", false, "add CloudEvents 1.0 attributes (binary mode, cloudEvents:* headers) with this source URI, e.g. /orders-db"},
    {"status-interval-ms", "10000", false, "send a standby status update at least this often (capped to a third of the server's wal_sender_timeout)"},
    {"checkpoint-interval-ms", "50", false, "record the acknowledged position in outbox.relay_checkpoints at most this often while events flow (a restart of PostgreSQL re-sends what was acknowledged since), and every 10 s when idle"},
    {"pg-timeout-ms", "30000", false, "give a PostgreSQL connection up when it answers nothing for this long (a silent network): queries, writes, and the replication stream (pinged at half of it)"},
    {"max-attempts", "5", false, "publish attempts per event (nack/unroutable) before it becomes a dead letter"},
    {"retry-base-ms", "200", false, "first publish retry delay (doubles per attempt)"},
    {"retry-max-ms", "10000", false, "cap of the publish retry delay"},
    {"reconnect-min-ms", "500", false, "first reconnect delay after a lost connection (doubles, with jitter)"},
    {"reconnect-max-ms", "30000", false, "cap of the reconnect delay"},
    {"drain-timeout-ms", "10000", false, "on SIGTERM/SIGINT/SIGHUP, wait at most this long for outstanding confirms"},
    {"heartbeat", "10", false, "AMQP heartbeat in seconds, 0-65535 (0 = off); a silent broker is noticed within 2 x heartbeat + 1 s, and the socket's TCP_USER_TIMEOUT is 2 x heartbeat (30 s when off)"},
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

// "config file F line N: " for a node of the file.
std::string at(const std::string& file, const toml::node& n) {
  std::ostringstream os;
  os << "config file " << file << " line " << n.source().begin.line << ": ";
  return os.str();
}

const char* toml_type_name(const toml::node& n) {
  if (n.is_string()) return "a string";
  if (n.is_integer()) return "an integer";
  if (n.is_floating_point()) return "a float";
  if (n.is_boolean()) return "a boolean";
  if (n.is_array()) return "an array";
  if (n.is_table()) return "a table";
  return "a date or time";
}

// A setting's value in the file: a string, an integer or a boolean (converted like the
// environment's text); anything else (an array, a table, a float, a date) is an error with the line.
std::optional<std::string> toml_scalar(const toml::node* n, const std::string& file, const std::string& key) {
  if (!n) return std::nullopt;
  if (auto s = n->as_string()) return s->get();
  if (auto i = n->as_integer()) return std::to_string(i->get());
  if (auto b = n->as_boolean()) return std::string(b->get() ? "true" : "false");
  throw ConfigError(at(file, *n) + "setting " + key + " is " + toml_type_name(*n) +
                    "; give one string, integer or boolean (see outbox-relay --help)");
}

// `amqp` in the file: one string, or an array of strings (one per broker address), joined with
// commas like the flag's list.
std::optional<std::string> toml_url_list(const toml::node* n, const std::string& file) {
  if (!n || !n->is_array()) return toml_scalar(n, file, "amqp");
  std::string joined;
  for (const toml::node& e : *n->as_array()) {
    auto s = e.as_string();
    if (!s)
      throw ConfigError(at(file, e) + "an entry of setting amqp is " + toml_type_name(e) +
                        "; give each broker address as a string, e.g. amqp = [\"amqp://u:p@mq1:5672/\", ...]");
    joined += (joined.empty() ? "" : ",") + s->get();
  }
  if (joined.empty()) throw ConfigError(at(file, *n) + "setting amqp is an empty array; give at least one URL");
  return joined;
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

// One [[topology.*]] entry: every key must be known and of its type, with the line of the
// mistake in the error (a typo such as `typ = "fanout"` silently made a topic exchange).
class Entry {
 public:
  Entry(const toml::table& t, std::string file, std::string what, std::vector<const char*> keys)
      : t_(t), file_(std::move(file)), what_(std::move(what)) {
    for (auto& [k, v] : t_) {
      std::string key(k.str());
      bool known = false;
      for (const char* kk : keys) known = known || key == kk;
      if (!known) {
        std::string list;
        for (const char* kk : keys) list += std::string(list.empty() ? "" : ", ") + kk;
        throw ConfigError(at(file_, v) + what_ + " has an unknown key \"" + key + "\" (known: " + list + ")");
      }
    }
  }
  std::string str(const char* key, std::string def = {}) const {
    const toml::node* n = t_.get(key);
    if (!n) return def;
    if (auto s = n->as_string()) return s->get();
    throw wrong(*n, key, "a string");
  }
  bool boolean(const char* key, bool def) const {
    const toml::node* n = t_.get(key);
    if (!n) return def;
    if (auto b = n->as_boolean()) return b->get();
    throw wrong(*n, key, "true or false (without quotes)");
  }
  std::optional<std::int64_t> integer(const char* key) const {
    const toml::node* n = t_.get(key);
    if (!n) return std::nullopt;
    auto i = n->as_integer();
    if (!i || i->get() < 0) throw wrong(*n, key, "an integer >= 0 (without quotes)");
    return i->get();
  }
  // The key's value must be one of `allowed` (or, with `x_ok`, a plugin's x-... name).
  void one_of(const char* key, const std::string& v, std::vector<const char*> allowed, bool x_ok = false) const {
    if (v.empty() || (x_ok && v.rfind("x-", 0) == 0)) return;
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += std::string(list.empty() ? "" : ", ") + a;
    }
    throw ConfigError(line_of(key) + what_ + " " + key + " = \"" + v + "\" is not one of " + list);
  }
  std::string line_of(const char* key) const {
    const toml::node* n = t_.get(key);
    return n ? at(file_, *n) : at(file_, t_);
  }
  const std::string& what() const { return what_; }

 private:
  ConfigError wrong(const toml::node& n, const char* key, const char* want) const {
    return ConfigError(at(file_, n) + what_ + " " + key + " is " + toml_type_name(n) + "; it must be " + want);
  }
  const toml::table& t_;
  std::string file_, what_;
};

// The entries of [[topology.<name>]]: an array of tables, or an error with the line.
std::vector<const toml::table*> entries(const toml::table& topo, const char* name, const std::string& file) {
  std::vector<const toml::table*> out;
  const toml::node* n = topo.get(name);
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr)
    throw ConfigError(at(file, *n) + "topology." + name + " is " + toml_type_name(*n) + "; write each one as [[topology." +
                      name + "]]");
  for (const toml::node& e : *arr) {
    const toml::table* t = e.as_table();
    if (!t)
      throw ConfigError(at(file, e) + "an entry of topology." + name + " is " + toml_type_name(e) +
                        "; write each one as [[topology." + name + "]]");
    out.push_back(t);
  }
  return out;
}

Topology parse_topology(const toml::table& root, const std::string& file) {
  Topology topo;
  const toml::node* tn = root.get("topology");
  if (!tn) return topo;
  const toml::table* t = tn->as_table();
  if (!t) throw ConfigError(at(file, *tn) + "topology is " + toml_type_name(*tn) + "; it is a table ([[topology.exchanges]], ...)");
  for (auto& [k, v] : *t) {
    std::string key(k.str());
    if (key != "exchanges" && key != "queues" && key != "bindings")
      throw ConfigError(at(file, v) + "topology has an unknown key \"" + key + "\" (known: exchanges, queues, bindings)");
  }
  auto need = [&](const Entry& e, const char* key, const std::string& v) {
    if (v.empty()) throw ConfigError(e.line_of(key) + "every " + e.what() + " needs a non-empty " + key);
  };
  for (const toml::table* et : entries(*t, "exchanges", file)) {
    Entry e(*et, file, "[[topology.exchanges]]", {"name", "type", "durable", "auto_delete"});
    Topology::Exchange x;
    x.name = e.str("name");
    need(e, "name", x.name);
    x.type = e.str("type", "topic");
    e.one_of("type", x.type, {"direct", "topic", "fanout", "headers"}, true);
    x.durable = e.boolean("durable", true);
    x.auto_delete = e.boolean("auto_delete", false);
    topo.exchanges.push_back(x);
  }
  for (const toml::table* qt : entries(*t, "queues", file)) {
    Entry e(*qt, file, "[[topology.queues]]",
            {"name", "durable", "auto_delete", "exclusive", "dead_letter_exchange", "dead_letter_routing_key",
             "queue_type", "message_ttl_ms", "max_length"});
    Topology::Queue q;
    q.name = e.str("name");
    need(e, "name", q.name);
    q.durable = e.boolean("durable", true);
    q.auto_delete = e.boolean("auto_delete", false);
    q.exclusive = e.boolean("exclusive", false);
    q.dead_letter_exchange = e.str("dead_letter_exchange");
    q.dead_letter_routing_key = e.str("dead_letter_routing_key");
    q.queue_type = e.str("queue_type");
    e.one_of("queue_type", q.queue_type, {"classic", "quorum", "stream"});
    q.message_ttl_ms = e.integer("message_ttl_ms");
    q.max_length = e.integer("max_length");
    topo.queues.push_back(q);
  }
  for (const toml::table* bt : entries(*t, "bindings", file)) {
    Entry e(*bt, file, "[[topology.bindings]]", {"queue", "exchange", "routing_key"});
    Topology::Binding b;
    b.queue = e.str("queue");
    need(e, "queue", b.queue);
    b.exchange = e.str("exchange");
    need(e, "exchange", b.exchange);
    b.routing_key = e.str("routing_key", "#");
    topo.bindings.push_back(b);
  }
  return topo;
}

// PostgreSQL's rule for slot names (ReplicationSlotValidateName).
bool valid_slot_name(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

// [[routes]]: match (the event type), aggregate_type, exchange: globs; sink: where matching events go.
std::vector<Route> parse_routes(const toml::table& root, const std::string& file) {
  std::vector<Route> out;
  if (!root.get("routes")) return out;
  for (const toml::table* rt : entries(root, "routes", file)) {
    Entry e(*rt, file, "[[routes]]", {"match", "event_type", "aggregate_type", "exchange", "sink"});
    Route r;
    r.line = static_cast<int>(rt->source().begin.line);
    if (rt->get("match") && rt->get("event_type"))
      throw ConfigError(e.line_of("event_type") + "[[routes]] has both match and event_type (the same condition); keep one");
    for (const char* key : {"match", "event_type", "aggregate_type", "exchange"}) {
      if (!rt->get(key)) continue;
      std::string v = e.str(key);
      if (v.empty()) throw ConfigError(e.line_of(key) + "[[routes]] " + key + " is empty; leave it out to match anything");
      std::string k = key;
      (k == "aggregate_type" ? r.aggregate_type : k == "exchange" ? r.exchange : r.event_type) = v;
    }
    r.sink = e.str("sink");
    if (r.sink.empty()) throw ConfigError(e.line_of("sink") + "[[routes]] needs sink = \"rabbitmq\" | \"nats\" | \"redis\"");
    out.push_back(std::move(r));
  }
  return out;
}

// [[jetstream.streams]]: streams the nats sink creates when they do not exist.
std::vector<NatsStream> parse_streams(const toml::table& root, const std::string& file) {
  std::vector<NatsStream> out;
  const toml::node* jn = root.get("jetstream");
  if (!jn) return out;
  const toml::table* j = jn->as_table();
  if (!j) throw ConfigError(at(file, *jn) + "jetstream is " + toml_type_name(*jn) + "; it is a table ([[jetstream.streams]])");
  for (auto& [k, v] : *j)
    if (k.str() != "streams")
      throw ConfigError(at(file, v) + "jetstream has an unknown key \"" + std::string(k.str()) + "\" (known: streams)");
  for (const toml::table* st : entries(*j, "streams", file)) {
    Entry e(*st, file, "[[jetstream.streams]]", {"name", "subjects", "storage", "replicas", "duplicate_window_ms"});
    NatsStream s;
    s.name = e.str("name");
    if (s.name.empty()) throw ConfigError(e.line_of("name") + "[[jetstream.streams]] needs a name");
    const toml::node* sn = st->get("subjects");
    const toml::array* arr = sn ? sn->as_array() : nullptr;
    if (!arr || arr->empty())
      throw ConfigError(e.line_of("subjects") + "[[jetstream.streams]] needs subjects = [\"outbox.>\", ...] (an array of strings)");
    for (const toml::node& x : *arr) {
      auto str = x.as_string();
      if (!str || str->get().empty()) throw ConfigError(at(file, x) + "a subject of [[jetstream.streams]] must be a non-empty string");
      s.subjects.push_back(str->get());
    }
    s.storage = e.str("storage", "file");
    e.one_of("storage", s.storage, {"file", "memory"});
    if (auto r = e.integer("replicas")) {
      if (*r < 1 || *r > 5) throw ConfigError(e.line_of("replicas") + "[[jetstream.streams]] replicas must be 1 to 5");
      s.replicas = static_cast<int>(*r);
    }
    if (auto w = e.integer("duplicate_window_ms")) s.duplicate_window_ms = *w;
    out.push_back(std::move(s));
  }
  return out;
}

int to_int(const Config& c, const std::string& name, const std::string& v, int min, int max = 1000000000,
           const std::string& why = "") {
  try {
    std::size_t pos = 0;
    long long x = std::stoll(v, &pos);
    if (pos != v.size() || x < min || x > max) throw std::out_of_range("range");
    return static_cast<int>(x);
  } catch (const std::exception&) {
    auto src = c.sources.count(name) ? c.sources.at(name) : "default";
    throw ConfigError("setting " + name + " (from " + src + "): \"" + v + "\" is not an integer from " +
                      std::to_string(min) + " to " + std::to_string(max) + why + "; fix the value of --" + name);
  }
}

std::string source_of(const Config& c, const std::string& name) {
  return c.sources.count(name) ? c.sources.at(name) : "default";
}

// host:port with a port 0-65535 ("" = off); false when it is not.
bool valid_http(const std::string& v) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size() || colon + 6 < v.size()) return false;
  long port = 0;
  for (std::size_t i = colon + 1; i < v.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(v[i]))) return false;
    port = port * 10 + (v[i] - '0');
  }
  return port <= 65535;
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
  // Boolean flags take an optional value: --check, --check=true|false|1|0|yes|no|on|off.
  app.add_flag("--check", check,
               "connect to both servers, run every pre-flight check (settings, slot, plugin, privileges, topology, "
               "default exchange) without streaming or creating anything, and exit 0 if the relay could start, 2 if not")
      ->type_name("[=BOOL]");
  std::vector<std::string> amqp_cli;  // --amqp may be repeated: one address per occurrence (or a comma list)
  for (const Def& d : kDefs) {
    std::string help = std::string(d.help) + " [env " + upper_env(d.name) + "; default: " +
                       (std::string(d.def).empty() ? "\"\"" : d.def) + "]";
    if (std::string(d.name) == "amqp")
      app.add_option("--amqp", amqp_cli, help)
          ->type_name("URL[,URL...]")
          ->expected(1)
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    else if (d.flag)
      app.add_flag(std::string("--") + d.name, cli_flags[d.name], help)->type_name("[=BOOL]");
    else
      app.add_option(std::string("--") + d.name, cli[d.name], help)
          ->type_name(is_integer(d.def) ? "INT" : "TEXT");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    throw ConfigExit{0, app.help()};
  } catch (const CLI::ParseError& e) {
    // The parser quotes arguments it did not expect: a URL or password=... given without its flag.
    throw ConfigError(mask_text(e.what()) +
                      " (boolean flags take =true, =false, =1, =0, =yes or =no; see outbox-relay --help)");
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
      os << "config file " << config_file << ": " << mask_text(e.description()) << " at line " << e.source().begin.line;
      throw ConfigError(os.str());
    } catch (const std::exception& e) {
      throw ConfigError("config file " + config_file + ": " + mask_text(e.what()));
    }
    for (auto& [k, v] : file) {
      std::string key(k.str());
      bool known = key == "topology" || key == "routes" || key == "jetstream";
      for (const Def& d : kDefs) {
        std::string alt = d.name;
        for (auto& ch : alt)
          if (ch == '-') ch = '_';
        if (key == d.name || key == alt) {
          known = true;
          if (alt != d.name && file.get(d.name) && file.get(alt))
            throw ConfigError(at(config_file, v) + "setting " + d.name + " is given twice (as " + d.name + " and " +
                              alt + "); keep one");
        }
      }
      if (!known)
        throw ConfigError(at(config_file, v) + "unknown setting \"" + key + "\" (see outbox-relay --help)");
    }
  }
  c.config_file = config_file;

  std::map<std::string, std::string> val;
  for (const Def& d : kDefs) {
    std::string name = d.name;
    std::string env = upper_env(name);
    if (app.count("--" + name) > 0) {
      // A flag's own value: --create-slot=false means false (it used to mean true).
      if (name == "amqp") {
        std::string joined;
        for (const auto& u : amqp_cli) joined += (joined.empty() ? "" : ",") + u;
        val[name] = joined;
      } else {
        val[name] = d.flag ? (cli_flags[name] ? "true" : "false") : cli[name];
      }
      c.sources[name] = "flag --" + name;
    } else if (const char* e = getenv(env.c_str())) {
      val[name] = e;
      c.sources[name] = "env " + env;
    } else if (auto f = name == "amqp" ? toml_url_list(toml_get(file, name), config_file)
                                       : toml_scalar(toml_get(file, name), config_file, name)) {
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
  {
    // Unknown keywords (key=value and URI query forms) and malformed strings are found now,
    // not at every reconnect.
    auto parse_error = [](const std::string& ci) -> std::optional<std::string> {
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
    };
    if (auto why = parse_error(c.pg)) {
      // libpq's message quotes the text it stumbled on, which can be part of a password: only the
      // masked conninfo's own error is shown. When the masked one parses, the mistake is inside a secret.
      std::string masked = mask_conninfo(c.pg);
      std::string head = "setting pg (from " + source_of(c, "pg") + "): \"" + masked + "\": ";
      auto masked_why = masked == c.pg ? why : parse_error(masked);
      if (!masked_why)
        throw ConfigError(head + "libpq cannot read the value of a secret keyword (password, sslpassword, ...) -- fix: "
                                 "in key=value form quote it (password='...', with \\' for ' and \\\\ for \\); in a "
                                 "URI percent-encode its special characters (/ as %2F, ? as %3F, # as %23, @ as %40, "
                                 "a space as %20)");
      throw ConfigError(head + *masked_why +
                        " -- fix: use libpq's keywords (host, port, dbname, user, password, sslmode, ...; see "
                        "https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-PARAMKEYWORDS)");
    }
  }
  // A key's contents given where its path belongs would be echoed by every error about the file.
  for (const char* k : {"amqp-key", "nats-key", "redis-key"})
    if (val[k].find('\n') != std::string::npos || val[k].find("-----BEGIN") != std::string::npos)
      throw ConfigError("setting " + std::string(k) + " (from " + source_of(c, k) + ") holds a key's contents, not the "
                        "path of its file -- fix: write the key to a file only the relay can read and give its path");
  c.amqp = val["amqp"];
  c.amqp_cacert = val["amqp-cacert"];
  c.amqp_cert = val["amqp-cert"];
  c.amqp_key = val["amqp-key"];
  if (c.amqp_cert.empty() != c.amqp_key.empty())
    throw ConfigError("settings amqp-cert and amqp-key go together: give both or neither");
  c.slot = val["slot"];
  if (!parse_bool(val["create-slot"], c.create_slot))
    throw ConfigError("setting create-slot (from " + c.sources["create-slot"] + "): \"" + val["create-slot"] +
                      "\" is not a boolean (true/false, 1/0, yes/no, on/off)");
  if (!c.slot.empty() && !valid_slot_name(c.slot))
    throw ConfigError("setting slot (from " + source_of(c, "slot") + "): \"" + c.slot +
                      "\" is not a replication slot name PostgreSQL accepts -- fix: use only lower-case letters, digits "
                      "and underscores, at most 63 bytes (for example " + std::string("outbox") + ")");
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
  if (!c.http.empty() && !valid_http(c.http))
    throw ConfigError("setting http (from " + source_of(c, "http") + "): \"" + c.http +
                      "\" is not address:port with a port from 0 to 65535 (0 picks a free one) -- fix: for example "
                      "127.0.0.1:9187, or \"off\"");
  c.log_format = val["log-format"];
  if (c.log_format != "text" && c.log_format != "json")
    throw ConfigError("setting log-format (from " + c.sources["log-format"] + "): \"" + c.log_format +
                      "\" must be text or json");
  c.log_level = val["log-level"];
  c.app_id = val["app-id"];
  c.cloudevents_source = val["cloudevents-source"];
  c.status_interval_ms = to_int(c, "status-interval-ms", val["status-interval-ms"], 1);
  c.checkpoint_interval_ms = to_int(c, "checkpoint-interval-ms", val["checkpoint-interval-ms"], 1);
  c.pg_timeout_ms = to_int(c, "pg-timeout-ms", val["pg-timeout-ms"], 1000);
  c.max_attempts = to_int(c, "max-attempts", val["max-attempts"], 1);
  c.retry_base_ms = to_int(c, "retry-base-ms", val["retry-base-ms"], 0);
  c.retry_max_ms = to_int(c, "retry-max-ms", val["retry-max-ms"], 0);
  if (c.retry_max_ms < c.retry_base_ms)
    throw ConfigError("setting retry-max-ms (" + std::to_string(c.retry_max_ms) + ", from " + source_of(c, "retry-max-ms") +
                      ") is below retry-base-ms (" + std::to_string(c.retry_base_ms) + ", from " +
                      source_of(c, "retry-base-ms") + "): the cap of the retry delay cannot be below its start -- fix: "
                      "raise --retry-max-ms or lower --retry-base-ms");
  c.reconnect_min_ms = to_int(c, "reconnect-min-ms", val["reconnect-min-ms"], 0);
  c.reconnect_max_ms = to_int(c, "reconnect-max-ms", val["reconnect-max-ms"], 0);
  if (c.reconnect_min_ms > c.reconnect_max_ms)
    throw ConfigError("setting reconnect-min-ms (" + std::to_string(c.reconnect_min_ms) + ", from " +
                      source_of(c, "reconnect-min-ms") + ") is above reconnect-max-ms (" +
                      std::to_string(c.reconnect_max_ms) + ", from " + source_of(c, "reconnect-max-ms") +
                      "): the first reconnect delay cannot exceed its cap -- fix: lower --reconnect-min-ms or raise "
                      "--reconnect-max-ms");
  c.drain_timeout_ms = to_int(c, "drain-timeout-ms", val["drain-timeout-ms"], 0);
  // AMQP negotiates the heartbeat as a 16-bit number of seconds.
  c.heartbeat_s = to_int(c, "heartbeat", val["heartbeat"], 0, 65535, " seconds (AMQP's range; 0 = off)");
  if (c.slot.empty()) throw ConfigError("setting slot is empty; give --slot NAME");
  c.amqp_connect_timeout_ms = to_int(c, "amqp-connect-timeout-ms", val["amqp-connect-timeout-ms"], 1, 3600000);
  c.amqp_confirm_timeout_ms = to_int(c, "amqp-confirm-timeout-ms", val["amqp-confirm-timeout-ms"], 0, 3600000);
  c.amqp_urls = split_url_list(c.amqp);
  for (std::size_t k = 0; k < c.amqp_urls.size(); ++k) {
    const std::string& u = c.amqp_urls[k];
    // With several addresses the message says which one is wrong.
    std::string which = c.amqp_urls.size() > 1 ? "URL " + std::to_string(k + 1) + " of " +
                                                     std::to_string(c.amqp_urls.size()) + " "
                                               : "";
    if (u.empty())
      throw ConfigError("setting amqp (from " + source_of(c, "amqp") + "): " + which +
                        "is empty -- fix: separate the broker URLs by single commas, without a trailing one");
    if (u.rfind("amqp://", 0) != 0 && u.rfind("amqps://", 0) != 0)
      throw ConfigError("setting amqp (from " + source_of(c, "amqp") + "): " + which + "\"" + mask_url(u) +
                        "\" is not an amqp:// or amqps:// URL");
    std::vector<char> buf(u.begin(), u.end());
    buf.push_back('\0');
    amqp_connection_info info;
    if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK || !info.host || !*info.host || info.port <= 0)
      throw ConfigError("setting amqp (from " + source_of(c, "amqp") + "): " + which + "\"" + mask_url(u) +
                        "\" is not a valid AMQP URL -- fix: amqp[s]://user:password@host:port/vhost, with a port from 1 "
                        "to 65535 and special characters of user and password percent-encoded (@ as %40, a comma as "
                        "%2C)");
  }
  if (!config_file.empty()) c.topology = parse_topology(file, config_file);

  for (const char* kind : {"nats", "redis"}) {
    std::string k = kind;
    if (val[k + "-cert"].empty() != val[k + "-key"].empty())
      throw ConfigError("settings " + k + "-cert and " + k + "-key go together: give both or neither");
  }
  c.nats = val["nats"];
  c.nats_subject_prefix = val["nats-subject-prefix"];
  if (c.nats_subject_prefix.empty() || c.nats_subject_prefix[0] == '$' || c.nats_subject_prefix.rfind("_INBOX", 0) == 0)
    throw ConfigError("setting nats-subject-prefix (from " + source_of(c, "nats-subject-prefix") + "): \"" +
                      c.nats_subject_prefix +
                      "\" would let an event's routing key choose any subject, the server's API ($JS.API..., $KV...) "
                      "included -- fix: give a prefix of your own, for example outbox.");
  c.nats_ack_timeout_ms = to_int(c, "nats-ack-timeout-ms", val["nats-ack-timeout-ms"], 0, 3600000);
  c.nats_cacert = val["nats-cacert"];
  c.nats_cert = val["nats-cert"];
  c.nats_key = val["nats-key"];
  c.redis = val["redis"];
  c.redis_stream = val["redis-stream"];
  if (c.redis_stream.empty())
    throw ConfigError("setting redis-stream (from " + source_of(c, "redis-stream") + ") is empty -- fix: give a stream "
                      "name or template, for example outbox:{aggregate_type}");
  c.redis_maxlen = to_int(c, "redis-maxlen", val["redis-maxlen"], 0);
  c.redis_dedup_window_ms = to_int(c, "redis-dedup-window-ms", val["redis-dedup-window-ms"], 0);
  c.redis_ack_timeout_ms = to_int(c, "redis-ack-timeout-ms", val["redis-ack-timeout-ms"], 0, 3600000);
  c.redis_cacert = val["redis-cacert"];
  c.redis_cert = val["redis-cert"];
  c.redis_key = val["redis-key"];
  auto url_list = [&](const std::string& setting, const std::string& text, std::vector<const char*> schemes) {
    std::vector<std::string> urls;
    if (text.empty()) return urls;
    urls = split_url_list(text);
    for (const std::string& u : urls) {
      bool ok = false;
      for (const char* sch : schemes) ok = ok || (u.rfind(sch, 0) == 0 && u.size() > std::strlen(sch));
      if (!ok) {
        std::string list;
        for (const char* sch : schemes) list += std::string(list.empty() ? "" : " or ") + sch;
        throw ConfigError("setting " + setting + " (from " + source_of(c, setting) + "): \"" + mask_url(u) +
                          "\" is not a " + list + " URL" + (u.empty() ? " (an empty entry: separate URLs by single commas)" : ""));
      }
    }
    return urls;
  };
  c.nats_urls = url_list("nats", c.nats, {"nats://", "tls://"});
  c.redis_urls = url_list("redis", c.redis, {"redis://", "rediss://"});
  c.default_sink = val["default-sink"];
  auto configured = [&](const std::string& sink) {
    return sink == "rabbitmq" || (sink == "nats" && !c.nats_urls.empty()) || (sink == "redis" && !c.redis_urls.empty());
  };
  auto known_sink = [](const std::string& sink) { return sink == "rabbitmq" || sink == "nats" || sink == "redis"; };
  if (!known_sink(c.default_sink))
    throw ConfigError("setting default-sink (from " + source_of(c, "default-sink") + "): \"" + c.default_sink +
                      "\" is not one of rabbitmq, nats, redis");
  if (!configured(c.default_sink))
    throw ConfigError("setting default-sink is " + c.default_sink + " but setting " + c.default_sink +
                      " (the server URL) is not given -- fix: give --" + c.default_sink + " URL");
  if (!config_file.empty()) {
    c.routes = parse_routes(file, config_file);
    for (const Route& r : c.routes) {
      if (!known_sink(r.sink))
        throw ConfigError("config file " + config_file + " line " + std::to_string(r.line) + ": [[routes]] sink = \"" +
                          r.sink + "\" is not one of rabbitmq, nats, redis");
      if (!configured(r.sink))
        throw ConfigError("config file " + config_file + " line " + std::to_string(r.line) + ": [[routes]] sends events to " +
                          r.sink + ", but setting " + r.sink + " (the server URL) is not given -- fix: give " + r.sink +
                          " = \"URL\" in the file or --" + r.sink + " URL");
    }
    c.nats_streams = parse_streams(file, config_file);
  }
  // The sinks in use, in a fixed order: the default one and every one a route names.
  for (const char* sink : {"rabbitmq", "nats", "redis"}) {
    bool used = c.default_sink == sink;
    for (const Route& r : c.routes) used = used || r.sink == sink;
    if (used) c.sinks.push_back(sink);
    else if (configured(sink) && std::string(sink) != "rabbitmq")
      c.unused_sinks.push_back(sink);
  }
  auto in_use = [&](const char* sink) { return std::find(c.sinks.begin(), c.sinks.end(), sink) != c.sinks.end(); };
  auto given = [&](const std::string& name) { return source_of(c, name) != "default"; };
  if (!in_use("rabbitmq")) {
    if (!c.topology.empty()) c.ignored.push_back("[topology] (RabbitMQ is not in use)");
    for (const char* s : {"exchange", "amqp-cacert", "amqp-cert", "amqp-key", "heartbeat", "amqp-confirm-timeout-ms"})
      if (given(s)) c.ignored.push_back(std::string(s) + " (RabbitMQ is not in use)");
  }
  if (!in_use("nats")) {
    if (!c.nats_streams.empty()) c.ignored.push_back("[[jetstream.streams]] (NATS is not in use)");
    for (const char* s : {"nats-subject-prefix", "nats-ack-timeout-ms", "nats-cacert", "nats-cert", "nats-key"})
      if (given(s)) c.ignored.push_back(std::string(s) + " (NATS is not in use)");
  }
  if (!in_use("redis")) {
    for (const char* s : {"redis-stream", "redis-maxlen", "redis-dedup-window-ms", "redis-ack-timeout-ms", "redis-cacert",
                          "redis-cert", "redis-key"})
      if (given(s)) c.ignored.push_back(std::string(s) + " (Redis is not in use)");
  }
  bool redis_tls = false, nats_tls = false;
  for (const auto& u : c.redis_urls) redis_tls = redis_tls || u.rfind("rediss://", 0) == 0;
  for (const auto& u : c.nats_urls) nats_tls = nats_tls || u.rfind("tls://", 0) == 0;
  if (in_use("redis") && !redis_tls)
    for (const char* s : {"redis-cacert", "redis-cert", "redis-key"})
      if (given(s)) c.ignored.push_back(std::string(s) + " (no rediss:// URL)");
  if (in_use("nats") && !nats_tls)
    for (const char* s : {"nats-cacert", "nats-cert", "nats-key"})
      if (given(s)) c.ignored.push_back(std::string(s) + " (no tls:// URL)");
  return c;
}

std::vector<std::string> split_url_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto b = part.find_first_not_of(" \t");
    auto e = part.find_last_not_of(" \t");
    out.push_back(b == std::string::npos ? "" : part.substr(b, e - b + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string describe(const Config& c) {
  std::string amqp;
  for (const auto& u : c.amqp_urls) amqp += (amqp.empty() ? "" : ",") + mask_url(u);
  if (c.amqp_urls.empty()) amqp = mask_url(c.amqp);
  std::ostringstream os;
  bool rabbit = c.sinks.empty() || std::find(c.sinks.begin(), c.sinks.end(), "rabbitmq") != c.sinks.end();
  os << "pg=\"" << mask_conninfo(c.pg) << "\"" << (rabbit ? " amqp=\"" + amqp + "\"" : std::string()) << " slot=" << c.slot
     << " plugin=" << c.plugin << (c.shard.empty() ? "" : " shard=" + c.shard) << " create-slot=" << (c.create_slot ? "true" : "false") << " exchange=" << c.exchange
     << " max-in-flight=" << c.max_in_flight << " http=" << (c.http.empty() ? "off" : c.http)
     << " max-attempts=" << c.max_attempts;
  std::string sinks;
  for (const auto& k : c.sinks) sinks += (sinks.empty() ? "" : ",") + k;
  os << " sinks=" << sinks << " default-sink=" << c.default_sink << " routes=" << c.routes.size();
  auto masked = [](const std::vector<std::string>& urls) {
    std::string out;
    for (const auto& u : urls) out += (out.empty() ? "" : ",") + mask_url(u);
    return out;
  };
  if (!c.nats_urls.empty()) os << " nats=\"" << masked(c.nats_urls) << "\"";
  if (!c.redis_urls.empty()) os << " redis=\"" << masked(c.redis_urls) << "\"";
  return os.str();
}

}  // namespace outbox
