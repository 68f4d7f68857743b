// What every sink attaches to an event besides its payload and its own headers: the x-outbox-*
// metadata (where the event came from), the W3C trace context and the CloudEvents attributes,
// computed here once, so that a consumer moved from one broker to another reads the same values
// (each broker only names and encodes them its own way).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "delivery/event.h"
#include "delivery/event_fields.h"  // default_routing_key(), contract_field_problem()

namespace outbox {

// The payload's media type: AMQP's content_type, CloudEvents' datacontenttype.
constexpr const char* kPayloadContentType = "application/json";

// `s` with every byte but those `keep` keeps as %XX (upper-case hex, RFC 3986).
std::string percent_encode(std::string_view s, bool (*keep)(unsigned char));

// A header holding a string, one holding an integer.
Header string_header(const char* name, const std::string& value);
Header int_header(const char* name, std::int64_t value);

// x-outbox-aggregate-type, -aggregate-id (when set), -lsn, -xid, -commit-time (when known),
// -causation-id (when set), -schema-version (an integer, when set), in this order.
std::vector<Header> outbox_metadata(const Event& ev);

// The event's own headers must not pose as metadata: an empty name, or one with the reserved
// prefix x-outbox- (any case), is the reason returned; nullopt when every name is acceptable.
std::optional<std::string> reserved_header_problem(const Event& ev);

// Header names compared as HTTP and NATS compare them: in any case. A header the relay sets from
// the event's fields (traceparent, the CloudEvents attributes, ...) replaces an own header of
// the same name, so that a consumer finds one value, the field's.
bool same_header_name(std::string_view a, std::string_view b);
bool has_header(const std::vector<Header>& headers, std::string_view name);

// The time an event carries (AMQP timestamp, CloudEvents time): its created_at, else its
// transaction's commit time, else `now_us`.
std::int64_t event_time_us(const Event& ev, std::int64_t now_us);

// The CloudEvents 1.0 attributes of an event in binary content mode, by attribute name (each
// binding adds its prefix), in this order: specversion "1.0", id, source = `source`, type =
// event_type, time (RFC 3339 UTC with microseconds), subject = aggregate_id (when set),
// dataschema = <source>/schemas/<event_type, percent-encoded>/<schema_version> (when set), and
// the distributed tracing extension's traceparent and tracestate (when set). datacontenttype
// (kPayloadContentType) is left to the bindings: AMQP carries it as content_type.
using Attributes = std::vector<std::pair<std::string, std::string>>;
Attributes cloudevents_attributes(const Event& ev, const std::string& source, std::int64_t time_us);

// How a broker carries what the relay adds to every event.
struct MetadataNaming {
  bool priority_header;     // a "priority" header (NATS, Redis); AMQP has a property for it
  const char* ce_prefix;    // CloudEvents attribute names: "cloudEvents:" (AMQP binding), "ce-"
  bool ce_content_type;     // datacontenttype as an attribute too (AMQP carries it as content_type)
};

// Everything the relay adds to every event, whatever the broker, in this order: the W3C trace
// context under its W3C names (traceparent, tracestate, each when set), the priority (an integer, when set and priority_header), the x-outbox-*
// metadata, and with a non-empty `cloudevents_source` the CloudEvents attributes (strings, at
// `time_us`; datacontenttype last, when ce_content_type).
std::vector<Header> event_metadata(const Event& ev, const MetadataNaming& naming, const std::string& cloudevents_source,
                                   std::int64_t time_us);

}  // namespace outbox
