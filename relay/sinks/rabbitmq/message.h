// The mapping from an outbox event to an AMQP message (DESIGN 5.3): exchange and routing-key
// defaults, properties (priority among them), the event's headers plus the W3C trace context,
// the x-outbox-* metadata and the CloudEvents attributes.
// Pure (no I/O, no rabbitmq-c types), so it is unit-tested on its own, and it is where the stream
// is checked as untrusted input: whatever AMQP or RabbitMQ would refuse (or rabbitmq-c would
// encode wrongly) is refused here, naming the field, so that one event fails and not the channel.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "delivery/event.h"
#include "delivery/event_fields.h"  // encoded_table_size(), for the connection's frame sizes
#include "delivery/sink.h"

namespace outbox {

struct MessageDefaults {
  std::string exchange;            // for events whose exchange is null
  std::string app_id;
  std::string cloudevents_source;  // "" = no CloudEvents attributes (--cloudevents-source)
};

struct AmqpMessage {
  std::string exchange, routing_key;
  std::string message_id, type, correlation_id, app_id;
  bool has_message_id = false, has_correlation_id = false, has_priority = false;
  std::uint8_t priority = 0;
  std::uint64_t timestamp_s = 0;
  std::vector<Header> headers;  // in this order on the wire
  const std::string* body = nullptr;  // the event's payload (not copied)
};

// The message, or the reason it can never be published (an error text naming the field).
std::variant<AmqpMessage, std::string> build_message(const Event& ev, const MessageDefaults& d,
                                                     std::int64_t now_us);

// The dead letter's words for a message to `exchange` with `routing_key` that RabbitMQ refused
// (BrokerOutcome::refusal): short and stable, naming the sink and where the message went.
std::string amqp_refusal(Refusal why, const std::string& exchange, const std::string& routing_key);

}  // namespace outbox
