#include "sinks/rabbitmq/settings.h"

#include <amqp.h>

#include "outbox_wire.h"
#include "sinks/rabbitmq/sink.h"
#include "sinks/sink_kind.h"
#include "support/mask.h"
#include "support/toml_table.h"

namespace outbox {

namespace {

// Each address must be one rabbitmq-c can connect to: a mistake is found at start instead of
// being retried as a connection error. With several addresses the message says which one.
void check_amqp_urls(const Setting& row, const std::string& text, const std::string& source) {
  std::vector<std::string> urls = split_url_list(text);
  for (std::size_t k = 0; k < urls.size(); ++k) {
    const std::string& u = urls[k];
    std::string which =
        urls.size() > 1 ? "URL " + std::to_string(k + 1) + " of " + std::to_string(urls.size()) + " " : "";
    std::string head = "setting " + row.name + " (from " + source + "): " + which;
    if (u.empty())
      throw ConfigError(head + "is empty -- fix: separate the broker URLs by single commas, without a trailing one");
    bool scheme = false;
    for (const std::string& s : row.choices) scheme = scheme || u.rfind(s, 0) == 0;
    if (!scheme) throw ConfigError(head + "\"" + mask_url(u) + "\" is not an " + or_list(row.choices) + " URL");
    std::vector<char> buf(u.begin(), u.end());
    buf.push_back('\0');
    amqp_connection_info info;
    if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK || !info.host || !*info.host || info.port <= 0)
      throw ConfigError(head + "\"" + mask_url(u) +
                        "\" is not a valid AMQP URL -- fix: amqp[s]://user:password@host:port/vhost, with a port from 1 "
                        "to 65535 and special characters of user and password percent-encoded (@ as %40, a comma as "
                        "%2C)");
  }
}

// The default exchange and app_id go into every message as AMQP short strings: a longer one
// would turn every event into a dead letter, so it is refused at start.
void check_short_string(const Setting& row, const std::string& value, const std::string& source) {
  if (value.size() > OUTBOX_SHORTSTR_MAX)
    throw ConfigError("setting " + row.name + " (from " + source + ") is " + std::to_string(value.size()) +
                      " bytes long, more than the " + std::to_string(OUTBOX_SHORTSTR_MAX) +
                      " bytes of an AMQP short string -- fix: give a shorter " + row.name);
}

void need(const TomlEntry& e, const char* key, const std::string& v) {
  if (v.empty()) throw ConfigError(e.line_of(key) + "every " + e.what() + " needs a non-empty " + key);
}

Topology::Exchange exchange_of(const TomlEntry& e) {
  Topology::Exchange x;
  x.name = e.str("name");
  need(e, "name", x.name);
  x.type = e.str("type", "topic");
  e.one_of("type", x.type, {"direct", "topic", "fanout", "headers"}, true);
  x.durable = e.boolean("durable", true);
  x.auto_delete = e.boolean("auto_delete", false);
  return x;
}

Topology::Queue queue_of(const TomlEntry& e) {
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
  q.max_priority = e.integer("max_priority");
  if (q.max_priority && (*q.max_priority < 1 || *q.max_priority > 255))
    throw ConfigError(e.line_of("max_priority") + e.what() + " max_priority = " + std::to_string(*q.max_priority) +
                      " is outside 1..255 (RabbitMQ's priorities; events carry 0..9, so 9 covers them all)");
  // RabbitMQ 3.x refuses the argument for these types at queue.declare, which would read as a
  // topology that disagrees with the broker, at every reconnect.
  if (q.max_priority && (q.queue_type == "quorum" || q.queue_type == "stream"))
    throw ConfigError(e.line_of("max_priority") + e.what() + " \"" + q.name + "\": max_priority is for classic queues; " +
                      q.queue_type + " queues have no x-max-priority -- fix: drop max_priority or make it a classic queue");
  return q;
}

Topology::Binding binding_of(const TomlEntry& e) {
  Topology::Binding b;
  b.queue = e.str("queue");
  need(e, "queue", b.queue);
  b.exchange = e.str("exchange");
  need(e, "exchange", b.exchange);
  b.routing_key = e.str("routing_key", "#");
  return b;
}

// [topology]: [[topology.exchanges]], [[topology.queues]], [[topology.bindings]].
void parse_topology(const toml::table& root, const std::string& file, SettingValues& values) {
  Topology topo;
  if (const toml::node* tn = root.get("topology")) {
    const toml::table* t = tn->as_table();
    if (!t)
      throw ConfigError(toml_line(file, *tn) + "topology is " + toml_type_name(*tn) +
                        "; it is a table ([[topology.exchanges]], ...)");
    for (auto& [k, v] : *t) {
      std::string key(k.str());
      if (key != "exchanges" && key != "queues" && key != "bindings")
        throw ConfigError(toml_line(file, v) + "topology has an unknown key \"" + key +
                          "\" (known: exchanges, queues, bindings)");
    }
    for (const toml::table* et : toml_entries(*t, "exchanges", file))
      topo.exchanges.push_back(
          exchange_of(TomlEntry(*et, file, "[[topology.exchanges]]", {"name", "type", "durable", "auto_delete"})));
    for (const toml::table* qt : toml_entries(*t, "queues", file))
      topo.queues.push_back(queue_of(TomlEntry(*qt, file, "[[topology.queues]]",
                                               {"name", "durable", "auto_delete", "exclusive", "dead_letter_exchange",
                                                "dead_letter_routing_key", "queue_type", "message_ttl_ms",
                                                "max_length", "max_priority"})));
    for (const toml::table* bt : toml_entries(*t, "bindings", file))
      topo.bindings.push_back(
          binding_of(TomlEntry(*bt, file, "[[topology.bindings]]", {"queue", "exchange", "routing_key"})));
  }
  bool given = !topo.empty();
  values.set_table("topology", std::move(topo), given);
}

std::unique_ptr<Sink> make(const SettingValues& v, const std::string& connection_name) {
  RabbitSink::Options o;
  o.urls = v.urls("amqp");
  o.publisher.heartbeat_s = v.integer("heartbeat");
  o.publisher.connect_timeout_ms = v.integer("amqp-connect-timeout-ms");
  o.publisher.confirm_timeout_ms = v.integer("amqp-confirm-timeout-ms");
  o.publisher.name = connection_name;
  o.publisher.tls = AmqpPublisher::Tls{v.text("amqp-cacert"), v.text("amqp-cert"), v.text("amqp-key")};
  o.topology = rabbitmq_topology(v);
  o.defaults.exchange = v.text("exchange");
  o.defaults.app_id = v.text("app-id");
  o.defaults.cloudevents_source = v.text("cloudevents-source");
  return std::make_unique<RabbitSink>(std::move(o));
}

std::string destination(const SettingValues& v) {
  return "RabbitMQ exchange <the event's exchange, else " + v.text("exchange") + ">, routing key <routing key>";
}

}  // namespace

const Topology& rabbitmq_topology(const SettingValues& values) { return values.table<Topology>("topology"); }

SinkKind rabbitmq_sink_kind() {
  std::vector<Setting> rows = {
      url_list_setting("amqp", "amqp://guest:guest@127.0.0.1:5672/", {"amqp://", "amqps://"}, "RabbitMQ URL amqp://user:pass@host:port/vhost or amqps://..., or several separated by commas (nodes of a cluster; the flag may also be repeated, the file may give an array): tried in order, starting from the last one that worked (falls back to OUTBOX_AMQP_URL)", check_amqp_urls).repeated().falls_back_to("OUTBOX_AMQP_URL"),
      text_setting("exchange", "amq.topic", "exchange for events whose exchange column is null", check_short_string),
      text_setting("amqp-cacert", "", "amqps:// only: PEM file of the CA that signed the broker's certificate (peer and host name are verified)"),
      text_setting("amqp-cert", "", "amqps:// only: PEM client certificate, for brokers that require one").together_with("amqp-key"),
      text_setting("amqp-key", "", "amqps:// only: PEM private key of --amqp-cert", check_key_path),
      // AMQP negotiates the heartbeat as a 16-bit number of seconds.
      integer_setting("heartbeat", "10", 0, 65535, "AMQP heartbeat in seconds, 0-65535 (0 = off); a silent broker is noticed within 2 x heartbeat + 1 s, and the socket's TCP_USER_TIMEOUT is 2 x heartbeat (30 s when off)", " seconds (AMQP's range; 0 = off)"),
      integer_setting("amqp-confirm-timeout-ms", "30000", 0, 3600000, "messages in flight and no confirm or nack for this long (while the broker does not block publishing): the connection counts as lost and is reopened, to the next address (0 = never)"),
      text_setting("app-id", "outbox-relay", "AMQP app_id property", check_short_string),
  };
  return SinkKind{"rabbitmq", "RabbitMQ", "amqp", owned_by("rabbitmq", std::move(rows)),
                  {SinkTable{"topology", "[topology]", parse_topology}}, make, destination};
}

}  // namespace outbox
