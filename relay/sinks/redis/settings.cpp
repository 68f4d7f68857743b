#include "sinks/redis/settings.h"

#include "sinks/redis/sink.h"
#include "sinks/sink_kind.h"

namespace outbox {

namespace {

// What the template's placeholders may make of it is judged by the sink when it is made.
void check_stream(const Setting& row, const std::string& v, const std::string& source) {
  if (v.empty())
    throw ConfigError("setting " + row.name + " (from " + source + ") is empty -- fix: give a stream "
                      "name or template, for example outbox:{aggregate_type}");
}

std::unique_ptr<Sink> make(const SettingValues& v, const std::string& connection_name) {
  RedisSink::Options o;
  o.urls = v.urls("redis");
  o.stream = v.text("redis-stream");
  o.maxlen = static_cast<std::uint64_t>(v.integer("redis-maxlen"));
  o.dedup_window_ms = v.integer("redis-dedup-window-ms");
  o.tls = RedisTls{v.text("redis-cacert"), v.text("redis-cert"), v.text("redis-key")};
  o.connect_timeout_ms = v.integer("amqp-connect-timeout-ms");
  o.ack_timeout_ms = v.integer("redis-ack-timeout-ms");
  o.cloudevents_source = v.text("cloudevents-source");
  // CLIENT SETNAME takes no spaces.
  o.name = connection_name;
  for (char& ch : o.name)
    if (ch == ' ') ch = '_';
  return std::make_unique<RedisSink>(std::move(o));
}

std::string destination(const SettingValues& v) { return "Redis stream " + v.text("redis-stream"); }

}  // namespace

SinkKind redis_sink_kind() {
  std::vector<Setting> rows = {
      url_list_setting("redis", "", {"redis://", "rediss://"}, "Redis URL redis://user:pass@host:6379/db or rediss://..., or several separated by commas (tried in order): enables the redis sink, which XADDs each event to a stream; events go there by [[routes]] or --default-sink redis"),
      text_setting("redis-stream", "outbox:{aggregate_type}", "Redis stream of an event; {aggregate_type}, {event_type}, {routing_key} and {exchange} are replaced by the event's values (\"_\" for null)", check_stream),
      integer_setting("redis-maxlen", "0", 0, 1000000000, "trim each stream to about this many entries (XADD MAXLEN ~; 0 = never trim)"),
      integer_setting("redis-dedup-window-ms", "120000", 0, 1000000000, "a re-sent event (same id) within this window is not added again (a key outbox:dedup:<id> per event, set in the same script as the XADD; 0 = no de-duplication)"),
      integer_setting("redis-ack-timeout-ms", "30000", 0, 3600000, "requests in flight and no Redis reply for this long: the connection counts as lost and is reopened (0 = never)"),
      text_setting("redis-cacert", "", "rediss:// only: PEM file of the CA that signed the Redis server's certificate").only_with("rediss://"),
      text_setting("redis-cert", "", "rediss:// only: PEM client certificate").together_with("redis-key").only_with("rediss://"),
      text_setting("redis-key", "", "rediss:// only: PEM private key of --redis-cert", check_key_path).only_with("rediss://"),
  };
  return SinkKind{"redis", "Redis", "redis", owned_by("redis", std::move(rows)), {}, make, destination};
}

}  // namespace outbox
