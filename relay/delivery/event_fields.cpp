#include "delivery/event_fields.h"

#include "outbox_wire.h"

namespace outbox {

namespace {

std::optional<LongField> if_long(const char* field, std::size_t bytes) {
  if (bytes <= OUTBOX_SHORTSTR_MAX) return std::nullopt;
  return LongField{field, bytes};
}

}  // namespace

std::string default_routing_key(const Event& ev) {
  return (ev.aggregate_type ? *ev.aggregate_type + "." : std::string()) + ev.event_type;
}

LongFields long_fields(const Event& ev, const std::string& default_exchange) {
  LongFields f;
  f.id = if_long("id", ev.id.size());
  f.event_type = if_long("event_type", ev.event_type.size());
  f.exchange = if_long("exchange", (ev.exchange ? *ev.exchange : default_exchange).size());
  if (ev.routing_key) {
    f.routing_key = if_long("routing_key", ev.routing_key->size());
  } else {
    // Measured, not built: the parser checks every event.
    f.routing_key = if_long("routing_key", (ev.aggregate_type ? ev.aggregate_type->size() + 1 : 0) + ev.event_type.size());
    if (f.routing_key) f.routing_key->default_key = true;
  }
  if (ev.correlation_id) f.correlation_id = if_long("correlation_id", ev.correlation_id->size());
  return f;
}

bool has_reserved_prefix(std::string_view name) {
  static constexpr std::string_view prefix = OUTBOX_RESERVED_HEADER_PREFIX;  // lower case
  if (name.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

HeaderNameProblem header_name_problem(std::string_view name) {
  if (name.empty()) return HeaderNameProblem::Empty;
  if (name.size() > OUTBOX_SHORTSTR_MAX) return HeaderNameProblem::TooLong;
  if (has_reserved_prefix(name)) return HeaderNameProblem::ReservedPrefix;
  if (name == OUTBOX_RESERVED_HEADER_CC || name == OUTBOX_RESERVED_HEADER_BCC) return HeaderNameProblem::RabbitMqMeaning;
  return HeaderNameProblem::None;
}

std::size_t string_entry_size(std::size_t name_bytes, std::size_t value_bytes) {
  return 1 + name_bytes + 1 + 4 + value_bytes;
}

std::size_t table_entry_size(std::size_t name_bytes, const HeaderValue& v) {
  std::size_t n = 1 + name_bytes + 1;
  switch (v.kind) {
    case HeaderValue::Kind::String: return string_entry_size(name_bytes, v.s.size());
    case HeaderValue::Kind::Int:
    case HeaderValue::Kind::Double: return n + 8;
    case HeaderValue::Kind::Bool: return n + 1;
    case HeaderValue::Kind::Null: return n;
  }
  return n;
}

std::size_t encoded_table_size(const std::vector<Header>& headers) {
  std::size_t n = 4;
  for (const Header& h : headers) n += table_entry_size(h.name.size(), h.value);
  return n;
}

std::optional<std::string> priority_problem(std::int64_t priority) {
  if (priority >= 0 && priority <= kPriorityMax) return std::nullopt;
  return "\"priority\" is " + std::to_string(priority) + ", outside 0.." + std::to_string(kPriorityMax);
}

std::optional<std::string> schema_version_problem(std::int64_t version) {
  if (version >= 1 && version <= INT32_MAX) return std::nullopt;
  return "\"schema_version\" is " + std::to_string(version) + ", not a positive 32-bit integer";
}

std::optional<std::string> traceparent_problem(std::string_view traceparent) {
  if (traceparent.substr(0, 3) != "00-" || traceparent.size() <= kTraceparentV00) return std::nullopt;
  return "\"traceparent\" has " + std::to_string(traceparent.size()) + " bytes, more than the " +
         std::to_string(kTraceparentV00) + " of a W3C traceparent of version 00";
}

std::optional<std::string> tracestate_problem(std::string_view tracestate) {
  if (tracestate.size() <= kTracestateMax) return std::nullopt;
  return "\"tracestate\" has " + std::to_string(tracestate.size()) + " bytes, more than the " +
         std::to_string(kTracestateMax) + " of a W3C tracestate (32 list members)";
}

std::optional<std::string> contract_field_problem(const Event& ev) {
  std::optional<std::string> p;
  if (ev.traceparent) p = traceparent_problem(*ev.traceparent);
  if (!p && ev.tracestate) p = tracestate_problem(*ev.tracestate);
  if (!p && ev.priority) p = priority_problem(*ev.priority);
  if (!p && ev.schema_version) p = schema_version_problem(*ev.schema_version);
  return p;
}

}  // namespace outbox
