#include "sinks/rabbitmq/message.h"

#include <cstring>

#include "sinks/event_metadata.h"
#include "outbox_wire.h"
#include "delivery/timestamp.h"

namespace outbox {

namespace {

constexpr std::size_t kShort = OUTBOX_SHORTSTR_MAX;

std::string too_long(const char* field, std::size_t n, std::size_t max) {
  return std::string("field \"") + field + "\" is " + std::to_string(n) + " bytes, more than the " +
         std::to_string(max) + " AMQP allows";
}

}  // namespace

std::size_t encoded_table_size(const std::vector<Header>& headers) {
  std::size_t n = 4;
  for (const auto& h : headers) {
    n += 1 + h.name.size() + 1;
    switch (h.value.kind) {
      case HeaderValue::Kind::String: n += 4 + h.value.s.size(); break;
      case HeaderValue::Kind::Int:
      case HeaderValue::Kind::Double: n += 8; break;
      case HeaderValue::Kind::Bool: n += 1; break;
      case HeaderValue::Kind::Null: break;
    }
  }
  return n;
}

std::variant<AmqpMessage, std::string> build_message(const Event& ev, const MessageDefaults& d, std::int64_t now_us) {
  if (!ev.invalid.empty()) return ev.invalid;
  AmqpMessage m;
  m.exchange = ev.exchange ? *ev.exchange : d.exchange;
  m.routing_key = ev.routing_key ? *ev.routing_key : default_routing_key(ev);
  if (m.exchange.empty()) return std::string("field \"exchange\" is empty (AMQP's nameless default exchange is not used)");
  if (m.exchange.size() > kShort) return too_long("exchange", m.exchange.size(), kShort);
  if (m.routing_key.size() > kShort) return too_long("routing_key", m.routing_key.size(), kShort);
  if (ev.event_type.empty()) return std::string("field \"event_type\" is empty");
  if (ev.event_type.size() > kShort) return too_long("event_type", ev.event_type.size(), kShort);
  if (ev.id.size() > kShort) return too_long("id", ev.id.size(), kShort);
  if (ev.correlation_id && ev.correlation_id->size() > kShort)
    return too_long("correlation_id", ev.correlation_id->size(), kShort);
  m.type = ev.event_type;
  m.app_id = d.app_id.substr(0, kShort);
  m.has_message_id = !ev.id.empty();
  m.message_id = ev.id;
  if (ev.correlation_id) {
    m.has_correlation_id = true;
    m.correlation_id = *ev.correlation_id;
  }
  std::int64_t ts_us = now_us;
  if (auto t = parse_timestamp_us(ev.created_at)) ts_us = *t;
  else if (auto c = parse_timestamp_us(ev.commit_time)) ts_us = *c;
  m.timestamp_s = ts_us > 0 ? static_cast<std::uint64_t>(ts_us / 1000000) : 0;

  m.headers.reserve(ev.headers.size() + 12);
  const std::size_t reserved_len = std::strlen(OUTBOX_RESERVED_HEADER_PREFIX);
  for (const auto& h : ev.headers) {
    if (h.name.empty() || h.name.size() > kShort)
      return "header name of " + std::to_string(h.name.size()) + " bytes (AMQP header names hold 1 to 255 bytes)";
    if (h.name == OUTBOX_RESERVED_HEADER_CC || h.name == OUTBOX_RESERVED_HEADER_BCC)
      return "header \"" + h.name + "\" is reserved by RabbitMQ (sender-selected distribution); rename it";
    if (h.name.size() >= reserved_len &&
        strncasecmp(h.name.c_str(), OUTBOX_RESERVED_HEADER_PREFIX, reserved_len) == 0)
      return "header \"" + h.name + "\" uses the reserved prefix " OUTBOX_RESERVED_HEADER_PREFIX;
    m.headers.push_back(h);
  }
  for (Header& h : outbox_metadata(ev)) m.headers.push_back(std::move(h));
  if (!d.cloudevents_source.empty()) {
    m.headers.push_back(string_header("cloudEvents:specversion", "1.0"));
    m.headers.push_back(string_header("cloudEvents:id", ev.id));
    m.headers.push_back(string_header("cloudEvents:source", d.cloudevents_source));
    m.headers.push_back(string_header("cloudEvents:type", ev.event_type));
    m.headers.push_back(string_header("cloudEvents:time", format_rfc3339_us(ts_us)));
    if (ev.aggregate_id) m.headers.push_back(string_header("cloudEvents:subject", *ev.aggregate_id));
  }
  std::size_t table = encoded_table_size(m.headers);
  if (table > OUTBOX_HEADER_TABLE_MAX)
    return "the AMQP header table would be " + std::to_string(table) + " bytes, more than the " +
           std::to_string(OUTBOX_HEADER_TABLE_MAX) + " that fit in one frame (headers, aggregate_id, causation_id)";
  m.body = &ev.payload;
  return m;
}

}  // namespace outbox
