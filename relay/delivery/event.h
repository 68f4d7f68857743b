// One outbox event as the relay publishes it (DESIGN 3 fields plus where it came from in the WAL).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "delivery/lsn.h"

namespace outbox {

// A header value from the event's flat `headers` object.
struct HeaderValue {
  enum class Kind { String, Int, Double, Bool, Null };
  Kind kind = Kind::Null;
  std::string s;
  std::int64_t i = 0;
  double d = 0;
  bool b = false;
};

struct Header {
  std::string name;
  HeaderValue value;
};

struct Event {
  std::string id;  // uuid text, "" if absent
  std::optional<std::string> aggregate_type;
  std::optional<std::string> aggregate_id;
  std::string event_type;
  std::string payload;  // JSON text, the AMQP body
  std::vector<Header> headers;
  std::optional<std::string> exchange;
  std::optional<std::string> routing_key;
  std::optional<std::string> correlation_id;
  std::optional<std::string> causation_id;
  std::string created_at;  // as the source wrote it
  // Extension 0.4, each absent when null (and in everything older): the W3C trace context the
  // emitting transaction ran in, the AMQP priority (0..9), and the version of the event type's
  // schema the payload was validated against. Sinks pass them on; none reorders by priority.
  std::optional<std::string> traceparent, tracestate;
  std::optional<int> priority, schema_version;

  // Non-empty when the event is genuine (a table row, or a message whose MAC verified) but can
  // never be published as it is: why, naming the field (a header number beyond int64, "headers"
  // not an object, an AMQP short string over 255 bytes, ...). Every field that could be read is
  // still filled, so that a dead letter shows it.
  std::string invalid;

  // Where it came from.
  Lsn lsn = 0;             // XLogData start of its line
  std::uint64_t xid = 0;   // 0 when unknown (non-transactional message)
  std::string commit_time; // commit timestamp text of its transaction ("" if unknown)
  bool from_message = false;  // storage mode wal (logical message) vs table row
  bool transactional = true;
};

}  // namespace outbox
