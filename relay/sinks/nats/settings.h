// What the NATS sink is configured with beyond its URLs: the JetStream streams it creates when
// they do not exist ([[jetstream.streams]] of the settings file).
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

}  // namespace outbox
