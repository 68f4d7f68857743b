#include "sinks/nats/settings.h"

#include "sinks/nats/sink.h"
#include "sinks/sink_kind.h"
#include "support/toml_table.h"

namespace outbox {

namespace {

// A prefix is what keeps an event's routing key (the publisher's choice) inside the relay's own
// subjects.
void check_subject_prefix(const Setting& row, const std::string& v, const std::string& source) {
  if (v.empty() || v[0] == '$' || v.rfind("_INBOX", 0) == 0)
    throw ConfigError("setting " + row.name + " (from " + source + "): \"" + v +
                      "\" would let an event's routing key choose any subject, the server's API ($JS.API..., $KV...) "
                      "included -- fix: give a prefix of your own, for example outbox.");
}

NatsStream stream_of(const toml::table& st, const std::string& file) {
  TomlEntry e(st, file, "[[jetstream.streams]]", {"name", "subjects", "storage", "replicas", "duplicate_window_ms"});
  NatsStream s;
  s.name = e.str("name");
  if (s.name.empty()) throw ConfigError(e.line_of("name") + "[[jetstream.streams]] needs a name");
  const toml::node* sn = st.get("subjects");
  const toml::array* arr = sn ? sn->as_array() : nullptr;
  if (!arr || arr->empty())
    throw ConfigError(e.line_of("subjects") +
                      "[[jetstream.streams]] needs subjects = [\"outbox.>\", ...] (an array of strings)");
  for (const toml::node& x : *arr) {
    auto str = x.as_string();
    if (!str || str->get().empty())
      throw ConfigError(toml_line(file, x) + "a subject of [[jetstream.streams]] must be a non-empty string");
    s.subjects.push_back(str->get());
  }
  s.storage = e.str("storage", "file");
  e.one_of("storage", s.storage, {"file", "memory"});
  if (auto r = e.integer("replicas")) {
    if (*r < 1 || *r > 5) throw ConfigError(e.line_of("replicas") + "[[jetstream.streams]] replicas must be 1 to 5");
    s.replicas = static_cast<int>(*r);
  }
  if (auto w = e.integer("duplicate_window_ms")) s.duplicate_window_ms = *w;
  return s;
}

// [jetstream]: [[jetstream.streams]], the streams the sink creates when they do not exist.
void parse_jetstream(const toml::table& root, const std::string& file, SettingValues& values) {
  std::vector<NatsStream> streams;
  if (const toml::node* jn = root.get("jetstream")) {
    const toml::table* j = jn->as_table();
    if (!j)
      throw ConfigError(toml_line(file, *jn) + "jetstream is " + toml_type_name(*jn) +
                        "; it is a table ([[jetstream.streams]])");
    for (auto& [k, v] : *j)
      if (k.str() != "streams")
        throw ConfigError(toml_line(file, v) + "jetstream has an unknown key \"" + std::string(k.str()) +
                          "\" (known: streams)");
    for (const toml::table* st : toml_entries(*j, "streams", file)) streams.push_back(stream_of(*st, file));
  }
  bool given = !streams.empty();
  values.set_table("jetstream", std::move(streams), given);
}

std::unique_ptr<Sink> make(const SettingValues& v, const std::string& connection_name) {
  NatsSink::Options o;
  o.urls = v.urls("nats");
  o.subject_prefix = v.text("nats-subject-prefix");
  for (const NatsStream& s : nats_streams(v))
    o.streams.push_back(NatsSink::Stream{s.name, s.subjects, s.storage, s.replicas, s.duplicate_window_ms});
  o.tls = NatsSink::Tls{v.text("nats-cacert"), v.text("nats-cert"), v.text("nats-key")};
  o.connect_timeout_ms = v.integer("amqp-connect-timeout-ms");
  o.ack_timeout_ms = v.integer("nats-ack-timeout-ms");
  o.name = connection_name;
  o.cloudevents_source = v.text("cloudevents-source");
  return std::make_unique<NatsSink>(std::move(o));
}

std::string destination(const SettingValues& v) {
  return "NATS subject " + v.text("nats-subject-prefix") + "<routing key>";
}

}  // namespace

const std::vector<NatsStream>& nats_streams(const SettingValues& values) {
  return values.table<std::vector<NatsStream>>("jetstream");
}

SinkKind nats_sink_kind() {
  std::vector<Setting> rows = {
      url_list_setting("nats", "", {"nats://", "tls://"}, "NATS server URL nats://user:pass@host:4222 or tls://..., or several separated by commas (servers of one cluster): enables the nats sink, which publishes to JetStream with Nats-Msg-Id = event id; events go there by [[routes]] or --default-sink nats"),
      text_setting("nats-subject-prefix", "outbox.", "NATS subject of an event: this prefix and its routing key (default <aggregate_type>.<event_type>)", check_subject_prefix),
      integer_setting("nats-ack-timeout-ms", "30000", 0, 3600000, "messages in flight and no JetStream ack for this long: the NATS connection counts as lost and is reopened (0 = never)"),
      text_setting("nats-cacert", "", "tls:// only: PEM file of the CA that signed the NATS server's certificate").only_with("tls://"),
      text_setting("nats-cert", "", "tls:// only: PEM client certificate").together_with("nats-key").only_with("tls://"),
      text_setting("nats-key", "", "tls:// only: PEM private key of --nats-cert", check_key_path).only_with("tls://"),
  };
  return SinkKind{"nats", "NATS", "nats", owned_by("nats", std::move(rows)),
                  {SinkTable{"jetstream", "[[jetstream.streams]]", parse_jetstream}}, make, destination};
}

}  // namespace outbox
