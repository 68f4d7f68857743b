// What the RabbitMQ sink is configured with: its settings (amqp, exchange, heartbeat, ...; the
// rows are in settings.cpp) and the topology it declares at start ([topology] of the settings
// file).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outbox {

struct Topology {
  struct Exchange {
    std::string name, type = "topic";
    bool durable = true, auto_delete = false;
  };
  struct Queue {
    std::string name;
    bool durable = true, auto_delete = false, exclusive = false;
    std::string dead_letter_exchange, dead_letter_routing_key, queue_type;
    std::optional<std::int64_t> message_ttl_ms, max_length;
    std::optional<std::int64_t> max_priority;  // x-max-priority, 1..255: the queue honours the priority property
  };
  struct Binding {
    std::string queue, exchange, routing_key;
  };
  std::vector<Exchange> exchanges;
  std::vector<Queue> queues;
  std::vector<Binding> bindings;
  bool empty() const { return exchanges.empty() && queues.empty() && bindings.empty(); }
};

struct SinkKind;
class SettingValues;

// RabbitMQ's settings, its [topology] table and how its sink is made (listed in sink_factory.cpp).
SinkKind rabbitmq_sink_kind();

// [topology] as the settings file gave it (empty without one).
const Topology& rabbitmq_topology(const SettingValues& values);

}  // namespace outbox
