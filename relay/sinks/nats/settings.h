// What the NATS sink is configured with: its settings (nats, nats-subject-prefix, ...; the rows
// are in settings.cpp) and the JetStream streams it creates when they do not exist
// ([[jetstream.streams]] of the settings file).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace outbox {

// A JetStream stream the nats sink creates when it does not exist ([[jetstream.streams]]).
struct NatsStream {
  std::string name;
  std::vector<std::string> subjects;
  std::string storage = "file";  // file | memory
  int replicas = 1;
  std::int64_t duplicate_window_ms = 120000;
};

struct SinkKind;
class SettingValues;

// NATS's settings, its [jetstream] table and how its sink is made (listed in sink_factory.cpp).
SinkKind nats_sink_kind();

// [[jetstream.streams]] as the settings file gave them (none without one).
const std::vector<NatsStream>& nats_streams(const SettingValues& values);

}  // namespace outbox
