#include "sinks/sink_factory.h"

#include <stdexcept>

#include "sinks/sink_kind.h"

namespace outbox {

// The brokers built into the relay, in the order their sinks are listed. The folder of each,
// sinks/<broker>/, defines `SinkKind <broker>_sink_kind()` in its settings.cpp: its settings, its
// tables of the settings file and how its sink is made. A new broker is its folder and its name
// on the next line.
#define OUTBOX_SINK_KINDS(KIND) KIND(rabbitmq) KIND(nats) KIND(redis)

#define OUTBOX_DECLARE_SINK_KIND(broker) SinkKind broker##_sink_kind();
OUTBOX_SINK_KINDS(OUTBOX_DECLARE_SINK_KIND)
#undef OUTBOX_DECLARE_SINK_KIND

const std::vector<SinkKind>& sink_kinds() {
#define OUTBOX_SINK_KIND(broker) broker##_sink_kind(),
  static const std::vector<SinkKind> kinds{OUTBOX_SINK_KINDS(OUTBOX_SINK_KIND)};
#undef OUTBOX_SINK_KIND
  return kinds;
}

const SinkKind* find_sink_kind(const std::string& name) {
  for (const SinkKind& k : sink_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<std::string> sink_kind_names() {
  std::vector<std::string> out;
  for (const SinkKind& k : sink_kinds()) out.push_back(k.name);
  return out;
}

std::vector<std::unique_ptr<Sink>> make_sinks(const SettingValues& values, const std::vector<std::string>& kinds,
                                              const std::string& connection_name) {
  std::vector<std::unique_ptr<Sink>> out;
  for (const std::string& name : kinds) {
    const SinkKind* kind = find_sink_kind(name);
    if (!kind) throw std::logic_error("sink " + name + " is not built into this relay");
    out.push_back(kind->make(values, connection_name));
  }
  return out;
}

}  // namespace outbox
