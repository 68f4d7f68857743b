#include "sinks/rabbitmq/message.h"

#include "delivery/event_json.h"
#include "sinks/event_metadata.h"
#include "outbox_wire.h"

namespace outbox {

namespace {

constexpr std::size_t kShort = OUTBOX_SHORTSTR_MAX;

std::string too_long(const LongField& f) {
  return std::string("field \"") + f.field + "\" is " + std::to_string(f.bytes) + " bytes, more than the " +
         std::to_string(kShort) + " AMQP allows";
}

}  // namespace

std::variant<AmqpMessage, std::string> build_message(const Event& ev, const MessageDefaults& d, std::int64_t now_us) {
  if (!ev.invalid.empty()) return ev.invalid;
  AmqpMessage m;
  m.exchange = ev.exchange ? *ev.exchange : d.exchange;
  m.routing_key = ev.routing_key ? *ev.routing_key : default_routing_key(ev);
  LongFields longs = long_fields(ev, d.exchange);
  if (m.exchange.empty()) return std::string("field \"exchange\" is empty (AMQP's nameless default exchange is not used)");
  if (longs.exchange) return too_long(*longs.exchange);
  if (longs.routing_key) return too_long(*longs.routing_key);
  if (ev.event_type.empty()) return std::string("field \"event_type\" is empty");
  for (const auto* f : {&longs.event_type, &longs.id, &longs.correlation_id})
    if (*f) return too_long(**f);
  m.type = ev.event_type;
  m.app_id = d.app_id.substr(0, kShort);
  m.has_message_id = !ev.id.empty();
  m.message_id = ev.id;
  if (ev.correlation_id) {
    m.has_correlation_id = true;
    m.correlation_id = *ev.correlation_id;
  }
  std::int64_t ts_us = event_time_us(ev, now_us);
  m.timestamp_s = ts_us > 0 ? static_cast<std::uint64_t>(ts_us / 1000000) : 0;

  if (auto p = contract_field_problem(ev)) return *p;
  if (ev.priority) {
    m.has_priority = true;
    m.priority = static_cast<std::uint8_t>(*ev.priority);
  }

  // AMQP binding of CloudEvents: application properties "cloudEvents:*"; content_type is the
  // datacontenttype. The priority is a property.
  std::vector<Header> relay = event_metadata(ev, {false, "cloudEvents:", false}, d.cloudevents_source, ts_us);
  m.headers.reserve(ev.headers.size() + relay.size());
  for (const auto& h : ev.headers) {
    switch (header_name_problem(h.name)) {
      case HeaderNameProblem::Empty:
      case HeaderNameProblem::TooLong:
        return "header name of " + std::to_string(h.name.size()) + " bytes (AMQP header names hold 1 to 255 bytes)";
      case HeaderNameProblem::RabbitMqMeaning:
        return "header \"" + h.name + "\" is reserved by RabbitMQ (sender-selected distribution); rename it";
      case HeaderNameProblem::ReservedPrefix:
        return "header \"" + h.name + "\" uses the reserved prefix " OUTBOX_RESERVED_HEADER_PREFIX;
      case HeaderNameProblem::None: break;
    }
    if (!has_header(relay, h.name)) m.headers.push_back(h);
  }
  for (Header& h : relay) m.headers.push_back(std::move(h));
  std::size_t table = encoded_table_size(m.headers);
  if (table > OUTBOX_HEADER_TABLE_MAX)
    return "the AMQP header table would be " + std::to_string(table) + " bytes, more than the " +
           std::to_string(OUTBOX_HEADER_TABLE_MAX) + " that fit in one frame (headers, aggregate_id, causation_id, tracestate)";
  m.body = &ev.payload;
  return m;
}

std::string amqp_refusal(Refusal why, const std::string& exchange, const std::string& routing_key) {
  std::string where = "exchange " + json_string(exchange);
  switch (why) {
    case Refusal::ExchangeMissing:
    case Refusal::DestinationMissing: return "RabbitMQ: " + where + " does not exist";
    case Refusal::Returned:
      return "RabbitMQ: unroutable, no queue bound to " + where + " for routing key " + json_string(routing_key);
    case Refusal::Nacked: break;
  }
  return "RabbitMQ: nacked (" + where + ", routing key " + json_string(routing_key) + ")";
}

}  // namespace outbox
