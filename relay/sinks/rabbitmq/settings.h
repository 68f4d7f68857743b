// What the RabbitMQ sink is configured with beyond its URLs: the topology it declares at start
// ([topology] of the settings file).
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
  };
  struct Binding {
    std::string queue, exchange, routing_key;
  };
  std::vector<Exchange> exchanges;
  std::vector<Queue> queues;
  std::vector<Binding> bindings;
  bool empty() const { return exchanges.empty() && queues.empty() && bindings.empty(); }
};

}  // namespace outbox
