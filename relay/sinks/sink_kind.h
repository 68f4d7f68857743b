// What the relay knows of a kind of broker: its settings, the tables of the settings file it
// reads, and how its sink is made. Each broker describes itself in sinks/<broker>/settings.cpp;
// sinks/sink_factory.cpp lists them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "delivery/sink.h"
#include "support/settings.h"

namespace outbox {

// A table of the settings file that a sink kind reads ([topology], [jetstream]).
struct SinkTable {
  std::string key;    // its top-level key in the file: "topology"
  std::string label;  // how warnings name it: "[topology]"
  // Parses root[key] (absent: nothing given) into values.set_table(key, ...); `file` is for messages.
  void (*parse)(const toml::table& root, const std::string& file, SettingValues& values);
};

struct SinkKind {
  std::string name;          // "rabbitmq": --default-sink, [[routes]] sink = ..., metrics
  std::string display_name;  // "RabbitMQ": in messages
  // The URL-list row that configures the sink: its URLs given, the sink can be used. A server
  // with a default (RabbitMQ's) is always configured, and never reported as configured but unused.
  std::string server;
  std::vector<Setting> rows;  // each owned by `name`
  std::vector<SinkTable> tables;
  std::unique_ptr<Sink> (*make)(const SettingValues& values, const std::string& connection_name);
  // Where the settings send an event, for --check's list of routes: "NATS subject outbox.<routing key>".
  std::string (*destination)(const SettingValues& values);
};

}  // namespace outbox
