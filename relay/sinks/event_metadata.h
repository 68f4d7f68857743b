// What every sink attaches to an event besides its payload and its own headers: the x-outbox-*
// metadata (where the event came from), under the same names on every broker, so that a consumer
// moved from one broker to another reads the same fields.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "delivery/event.h"
#include "delivery/event_fields.h"  // default_routing_key()

namespace outbox {

// A header holding a string.
Header string_header(const char* name, const std::string& value);

// x-outbox-aggregate-type, -aggregate-id (when set), -lsn, -xid, -commit-time (when known),
// -causation-id (when set), in this order.
std::vector<Header> outbox_metadata(const Event& ev);

// The event's own headers must not pose as metadata: an empty name, or one with the reserved
// prefix x-outbox- (any case), is the reason returned; nullopt when every name is acceptable.
std::optional<std::string> reserved_header_problem(const Event& ev);

}  // namespace outbox
