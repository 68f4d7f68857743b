// How the NATS sink maps an event to a JetStream message (pure, unit-tested; no nats.c): the
// subject (subject prefix + routing key, or the default routing key), the event's headers,
// Nats-Msg-Id = event id for JetStream's de-duplication (none for an event without id), the
// W3C trace context, the priority, the x-outbox-* metadata and the CloudEvents attributes (the
// NATS protocol binding's binary mode: ce-* headers). It is where the stream is checked as
// untrusted input: whatever NATS would refuse or misread, or what would reach the server's own
// subjects, is refused here naming the field, so that one event fails and not the connection.
// Header values are sent as they are, an empty one (null) too: nats.c 3.4.1 consumers misread an
// empty value (its parser skips the CRLF and takes the next header line as the value).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "delivery/event.h"
#include "delivery/sink.h"

namespace outbox {

// Subjects longer than this are refused (the PUB line must fit the server's max_control_line,
// 4096 by default, with the reply inbox and sizes).
constexpr std::size_t kMaxNatsSubject = 1024;

struct NatsMessage {
  std::string subject;
  std::vector<std::pair<std::string, std::string>> headers;  // in this order on the wire
  const std::string* data = nullptr;  // the event's payload (not copied)
};

// The subject an event goes to (prefix + routing key or default routing key), unvalidated.
std::string nats_subject(const std::string& prefix, const Event& ev);

// Why the subject can never be published to, naming where it came from (the routing key or the
// default one); nullopt when it can.
std::optional<std::string> nats_subject_problem(const std::string& subject, const Event& ev);

// The message, or the reason it can never be published (an error text naming the field).
// max_payload: the server's, which the payload and the header block together must not exceed.
// cloudevents_source: --cloudevents-source ("" = no CloudEvents attributes); now_us: the time of
// an event that has neither created_at nor a commit time.
std::variant<NatsMessage, std::string> build_nats_message(const Event& ev, const std::string& subject_prefix,
                                                          std::int64_t max_payload,
                                                          const std::string& cloudevents_source = std::string(),
                                                          std::int64_t now_us = 0);

// Subject filters (both sides may hold the wildcards * and >).
// Every subject `pattern` matches is matched by `filter`.
bool filter_covers(const std::string& filter, const std::string& pattern);
// Some subject matches both.
bool filters_overlap(const std::string& a, const std::string& b);
// Some subject that starts with `prefix` (which may end inside a token: "evts" of "evtsOrder.x")
// matches `filter`.
bool filter_may_take_prefix(const std::string& filter, const std::string& prefix);

// The dead letter's words for a message to `subject` that NATS refused (BrokerOutcome::refusal):
// short and stable, naming the sink and the subject. jetstream_error: JetStream's err_code of a
// Nacked (0: the server denied the publish, a permissions violation).
std::string nats_refusal(Refusal why, const std::string& subject, int jetstream_error = 0);

}  // namespace outbox
