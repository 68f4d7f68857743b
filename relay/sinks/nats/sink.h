// The NATS JetStream sink: publish() validates the event as untrusted input and maps it to a
// JetStream message (sinks/nats/message.h), which one nats.c connection with a JetStream context
// publishes asynchronously (sinks/nats/connection.h: the acks, what they mean, when the
// connection counts as broken). open() creates the streams of the settings that are missing and
// checks that some stream captures the subject prefix (sinks/nats/streams.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "delivery/sink.h"
#include "sinks/nats/connection.h"
#include "sinks/nats/message.h"
#include "sinks/nats/streams.h"

namespace outbox {

class NatsSink : public Sink {
 public:
  using Stream = JetStreamStream;
  using Tls = NatsTls;
  struct Options {
    // nats://[user:pass@]host:port or tls://...; several = servers of one cluster, tried in order.
    std::vector<std::string> urls;
    std::string subject_prefix = "outbox.";
    // Streams open() creates when missing (an existing stream is left as it is).
    std::vector<Stream> streams;
    Tls tls;
    int connect_timeout_ms = 10000;  // per server; also the wait of JetStream API requests
    // Messages in flight and no JetStream ack for this long: the connection counts as broken
    // (like RabbitMQ's confirm timeout). 0 = never.
    int ack_timeout_ms = 30000;
    std::string name = "outbox-relay";  // the connection name the server shows
    std::string cloudevents_source;     // "" = no CloudEvents attributes (--cloudevents-source)
  };

  static constexpr std::size_t kMaxSubject = kMaxNatsSubject;
  static constexpr int kWriteDeadlineMs = NatsConnection::kWriteDeadlineMs;
  static constexpr std::size_t kUnsentHighWater = NatsConnection::kUnsentHighWater;

  explicit NatsSink(Options o);
  NatsSink(const NatsSink&) = delete;
  NatsSink& operator=(const NatsSink&) = delete;

  const char* name() const override { return "nats"; }
  const char* display_name() const override { return "NATS"; }

  // Connects (servers in the order given), checks header support, creates the configured
  // streams that are missing (a failure is Config before the first session, logged after).
  // Throws SinkError: Config (bad URL, unreadable TLS file), Auth (authorization violation), Tls
  // (the server's certificate does not verify), else Retryable. Passwords masked.
  void open(bool started) override;
  // Lines: per configured stream whether it exists (and what differs) or would be created; which
  // stream captures the subject prefix (or that none does). Creates nothing.
  std::vector<std::string> check() override;
  // Destroys the connection (callbacks still running on library threads finish first or find
  // nothing), then drops what was queued. Safe to call twice.
  void close() override { conn_.close(); }
  bool connected() const override { return conn_.connected(); }
  std::string node() const override { return conn_.node(); }

  // Returns an error text naming the field when the event can never be published (invalid
  // subject or header, too large for the server's max_payload). Throws SinkError when not
  // connected or broken() was already reported. Never waits (NatsConnection::publish).
  std::optional<std::string> publish(std::uint64_t ticket, const Event& ev) override;

  void batch(bool on) override { conn_.batch(on); }
  int socket() const override { return conn_.socket(); }
  void poll(std::vector<BrokerOutcome>& out) override { conn_.poll(out); }
  bool broken() const override { return conn_.broken(); }
  const std::string& broken_reason() const override { return conn_.broken_reason(); }
  // Answers queued by the library thread but not yet taken by poll().
  bool has_buffered() const override { return conn_.has_buffered(); }
  // Bytes accepted by publish() and not yet written stay under kUnsentHighWater (a hint only).
  bool writable() const override { return conn_.writable(); }
  // poll() runs at least this often to check the ack timeout.
  int tick_ms() const override;

  // Messages published and neither answered nor lost (for tests and metrics).
  std::size_t in_flight() const { return conn_.in_flight(); }
  // The subject an event goes to (prefix + routing key or default routing key), unvalidated.
  std::string subject_for(const Event& ev) const { return nats_subject(o_.subject_prefix, ev); }

 private:
  // Checks the settings, then connects `c` (open() and check()). Throws SinkError.
  void connect_to(NatsConnection& c, bool report);
  // Lists the streams: none capturing a subject of the prefix is SinkError(Config) at start and
  // an error logged once running (the events wait); the connection remembers their filters.
  void check_capture(bool started);

  Options o_;
  NatsConnection conn_;
};

}  // namespace outbox
