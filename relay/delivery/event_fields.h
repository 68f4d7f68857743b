// What AMQP 0-9-1 and RabbitMQ can carry of an event's fields (the limits of common/outbox_wire.h),
// found in one place for the two that check them: the parser, which makes a genuine event that
// breaks a limit invalid before anything is published, and the AMQP mapping, which refuses what
// it is given. Each words the problem its own way (their texts reach dead letters and logs); this
// only finds it.
#pragma once
#include "outbox_wire.h"
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/event.h"

namespace outbox {

// The routing key an event without one gets: "<aggregate_type>.<event_type>", or the event type.
std::string default_routing_key(const Event& ev);

// A field that AMQP sends as a short string (at most OUTBOX_SHORTSTR_MAX bytes) and that is longer.
struct LongField {
  const char* field;        // as the event names it: "id", "event_type", "exchange", ...
  std::size_t bytes;
  bool default_key = false;  // routing_key only: the event has none and default_routing_key() is too long
};

// The event's short strings that are too long, one member a field, so that each caller reports
// them in its own order; nullopt where the field fits (or is not set). An event without an
// exchange goes to `default_exchange`.
struct LongFields {
  std::optional<LongField> id, event_type, exchange, routing_key, correlation_id;
};
LongFields long_fields(const Event& ev, const std::string& default_exchange = std::string());

// What makes a header name one the event cannot send, the first that applies.
enum class HeaderNameProblem {
  None,
  Empty,           // AMQP carries it; every sink refuses it, the parser does not mark it
  TooLong,         // over OUTBOX_SHORTSTR_MAX bytes: an AMQP table key is a short string
  ReservedPrefix,  // begins with OUTBOX_RESERVED_HEADER_PREFIX (any case): it would pose as the relay's metadata
  RabbitMqMeaning  // CC or BCC, exactly so: RabbitMQ reads them as routing keys (sender-selected distribution)
};
HeaderNameProblem header_name_problem(std::string_view name);

// Whether `name` begins with OUTBOX_RESERVED_HEADER_PREFIX, in any case (checked apart from the
// length by the sinks whose header names may be longer than AMQP's).
bool has_reserved_prefix(std::string_view name);

// Encoded sizes in an AMQP field table (the formula of common/outbox_wire.h): an entry whose name
// has `name_bytes` bytes, one holding a string, and a whole table (its 4-byte length included).
std::size_t table_entry_size(std::size_t name_bytes, const HeaderValue& v);
std::size_t string_entry_size(std::size_t name_bytes, std::size_t value_bytes);
std::size_t encoded_table_size(const std::vector<Header>& headers);

// The fields of extension 0.4, bounded so that every broker can carry them as they are. W3C
// Trace Context sizes: a traceparent of version 00 has 55 characters (a higher version may be
// longer: fields to come, which outbox_emit lets through, so only the header budget bounds it);
// a tracestate holds at most 32 list members of a key and a value of up to 256 characters each,
// separated by commas (outbox_emit takes 512 characters of it: the relay is not the stricter one).
// Priorities are those outbox_emit accepts (AMQP's 0..9); a schema version is a positive int32.
constexpr std::size_t kTraceparentV00 = 55;
constexpr std::size_t kTracestateMax = 32 * (256 + 1 + 256) + 31;
constexpr std::int64_t kPriorityMax = OUTBOX_PRIORITY_MAX;

// Why a value of one of them can never be sent, naming the field ("\"priority\" is 12, outside
// 0..9"); nullopt when it can. Unlike the checks above these word the problem too: the parser
// and every mapping say the same about fields that mean the same on every broker. The parser
// checks a number before it knows whether it fits the event's int.
std::optional<std::string> priority_problem(std::int64_t priority);
std::optional<std::string> schema_version_problem(std::int64_t version);
std::optional<std::string> traceparent_problem(std::string_view traceparent);
std::optional<std::string> tracestate_problem(std::string_view tracestate);
// The first problem of the event's traceparent, tracestate, priority and schema_version.
std::optional<std::string> contract_field_problem(const Event& ev);

}  // namespace outbox
