// A sink: one broker connection the relay publishes to (RabbitMQ, NATS JetStream, Redis Streams).
// The delivery unit and the event loop see only this interface: publish without blocking, pull
// the broker's answers (confirms, refusals, flow control) when the sink's descriptor is readable,
// and a broken connection reported after the answers read before it. What a broker's answer
// means for an event (retry, dead letter, order) stays in the delivery unit; how an event is
// mapped to a broker message, and what that broker can never take, stays in the sink.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "delivery/event.h"

namespace outbox {

// Why a broker refused one message.
enum class Refusal {
  Returned,         // RabbitMQ basic.return (unroutable, mandatory); NATS: no stream takes the subject
  Nacked,           // the broker answered with an error for this message
  ExchangeMissing,  // the message's destination does not exist (RabbitMQ: the passive check found no exchange)
  // What the sink's settings send events to is gone (NATS: no stream captures a subject that one
  // captured when the sink connected, or none captures any subject of the prefix): not the
  // event's fault; it waits, no attempt charged, until the destination exists again.
  DestinationMissing,
};

// What a sink's poll() found, in the order the broker sent it.
struct BrokerOutcome {
  enum class Kind { Confirmed, Refused, Blocked, Unblocked };
  Kind kind = Kind::Confirmed;
  std::uint64_t ticket = 0;          // Confirmed, Refused
  Refusal why = Refusal::Nacked;     // Refused
  std::string reply;                 // Refused: the broker's reply; Blocked: the reason
  // Refused: what was refused, in this broker's words, naming the sink and the destination
  // ("RabbitMQ: exchange \"x\" does not exist"): the dead letter's reason, so short and stable
  // (the broker's own text, which may change between versions, is `reply`).
  std::string refusal;
  // Confirmed: the broker said it already had this message (JetStream's duplicate window, the
  // Redis sink's de-duplication key): counted, still a confirm.
  bool duplicate = false;
};

// What a failed connection means (a broken session is always Retryable).
enum class SinkErrorKind {
  Retryable,  // broker down, network, closed connection: reconnect with backoff
  Auth,       // login refused: logged at error level with the fix, retried
  Tls,        // the broker's certificate does not verify: exit 2 at start, retried with an error at runtime
  Config,     // the URL or a TLS file of the settings is unusable: exit 2
};

struct SinkError : std::runtime_error {
  SinkErrorKind kind = SinkErrorKind::Retryable;
  std::string sink;  // display name of the sink, filled in by the loop ("" = not known yet)
  explicit SinkError(const std::string& what, SinkErrorKind k = SinkErrorKind::Retryable)
      : std::runtime_error(what), kind(k) {}
};

class Sink {
 public:
  virtual ~Sink() = default;

  // "rabbitmq", "nats", "redis": the name routes, metrics and logs use.
  virtual const char* name() const = 0;
  // "RabbitMQ", "NATS", "Redis": for log lines written for people.
  virtual const char* display_name() const = 0;

  // Connects (trying each configured address), logs in and prepares what the settings declare
  // (RabbitMQ topology, JetStream streams). `started`: a session has streamed before, so a
  // missing destination is a runtime problem (logged) rather than a settings mistake (thrown as
  // Config). Throws SinkError with the URL's password masked.
  virtual void open(bool started) = 0;
  // --check: connects and reports what exists and what open() would create, creating nothing.
  // Throws SinkError when the relay could not start with these settings.
  virtual std::vector<std::string> check() = 0;
  virtual void close() = 0;
  virtual bool connected() const = 0;
  // The node of the current connection, password masked ("" when not connected).
  virtual std::string node() const = 0;

  // Publishes one event (mapped to this broker's message) under `ticket`; its answer comes back
  // from poll() with that ticket. Never blocks: a message the connection cannot take now is held
  // inside the sink (pending()). Returns the reason when the event can never be published to this
  // broker (the event's fault: a dead letter, naming the field); throws SinkError when the
  // connection is broken.
  virtual std::optional<std::string> publish(std::uint64_t ticket, const Event& ev) = 0;

  // The descriptor the loop polls (-1 when there is none) and for what (POLLIN, POLLOUT).
  virtual int socket() const = 0;
  virtual short poll_events() const { return 1 /* POLLIN */; }
  // Reads every answer available without blocking and appends them to `out`. A broken
  // connection does not throw here: it is reported by broken() after the answers read before
  // it, so that none of them is lost.
  virtual void poll(std::vector<BrokerOutcome>& out) = 0;
  virtual bool broken() const = 0;
  virtual const std::string& broken_reason() const = 0;
  // The broker closed the connection with a code one message can cause (the delivery unit then
  // looks for the culprit by publishing the messages in flight one at a time).
  virtual bool broken_by_message() const { return false; }

  // Answers already read from the socket into the client library (poll() has work although the
  // descriptor is not readable).
  virtual bool has_buffered() const { return false; }
  // Messages accepted by publish() but not yet written: the loop calls send_pending() every turn
  // and polls again within kRecheckMs while any wait.
  virtual bool pending() const { return false; }
  virtual void send_pending() {}
  static constexpr int kRecheckMs = 5;
  // The connection can take more now (a hint for backpressure: publish() never blocks anyway).
  virtual bool writable() const { return true; }
  // Around a batch of publishes: the sink may gather them into fewer writes.
  virtual void batch(bool /*on*/) {}
  // The broker asked to stop publishing (RabbitMQ connection.blocked), until Unblocked.
  virtual bool blocked() const { return false; }
  // poll() must run at least this often even when nothing is readable (client heartbeats, a
  // confirm timeout), in milliseconds; 0 = only when the descriptor is readable.
  virtual int tick_ms() const { return 1000; }
};

}  // namespace outbox
