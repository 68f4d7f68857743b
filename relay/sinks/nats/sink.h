// The NATS JetStream sink: one nats.c connection (the library's own reconnect off: the relay
// reconnects itself), a JetStream context publishing asynchronously. publish() validates the
// event as untrusted input, builds the message (subject prefix + routing key, the event's headers,
// Nats-Msg-Id = event id for JetStream's de-duplication (none for an event without id), the
// x-outbox-* metadata) and hands it to the sink's writer thread, the only caller of
// js_PublishMsgAsync. The PubAcks arrive on a nats.c thread: they are queued under a mutex and a
// byte is written to a self-pipe, whose read end is socket(); poll() drains both. No stream for
// the subject is Refused Returned; a JetStream error or a permissions violation for the message
// is Refused Nacked; but a subject a stream captured at an earlier connect (the stream was deleted),
// or any subject when no stream captured the prefix's subjects at the latest connect, is Refused
// DestinationMissing (the event waits, uncharged). A lost connection or no ack for ack_timeout_ms is broken() (the fate of the
// messages in flight is unknown: no refusal for them), reported after the answers queued before it.
// Header values are sent as they are, an empty one (null) too: nats.c 3.4.1 consumers misread an
// empty value (its parser skips the CRLF and takes the next header line as the value).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delivery/sink.h"

// nats.c types (<nats/nats.h> stays out of this header).
struct __natsConnection;
struct __jsCtx;
struct __natsMsg;

namespace outbox {

class NatsSink : public Sink {
 public:
  struct Stream {
    std::string name;
    std::vector<std::string> subjects;  // may use the wildcards * and >
    std::string storage = "file";       // "file" | "memory"
    int replicas = 1;
    std::int64_t duplicate_window_ms = 120000;  // JetStream's de-duplication window (Nats-Msg-Id)
  };
  struct Tls {
    std::string cacert, cert, key;  // PEM files; empty = not used
  };
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
  };

  // Subjects longer than this are refused (the PUB line must fit the server's max_control_line,
  // 4096 by default, with the reply inbox and sizes).
  static constexpr std::size_t kMaxSubject = 1024;
  // A socket write the server does not take within this long fails and shuts the connection.
  static constexpr int kWriteDeadlineMs = 2000;
  // writable() turns false beyond this many bytes accepted and not yet written.
  static constexpr std::size_t kUnsentHighWater = 8u << 20;

  explicit NatsSink(Options o);
  ~NatsSink() override;
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
  void close() override;
  bool connected() const override { return conn_ != nullptr; }
  std::string node() const override { return node_; }

  // Returns an error text naming the field when the event can never be published (invalid
  // subject or header, too large for the server's max_payload). Throws SinkError when not
  // connected or broken() was already reported. Never waits: the message is handed to the
  // sink's writer thread, the only caller of js_PublishMsgAsync (nats.c writes to the socket
  // with no deadline once its buffer is full; MaxPending is far above any window, so it never
  // stalls for acks either).
  std::optional<std::string> publish(std::uint64_t ticket, const Event& ev) override;

  int socket() const override { return conn_ ? pipe_[0] : -1; }
  void poll(std::vector<BrokerOutcome>& out) override;
  bool broken() const override { return !broken_reason_.empty(); }
  const std::string& broken_reason() const override { return broken_reason_; }
  // Answers queued by the library thread but not yet taken by poll() (the pipe byte may have
  // been read by an earlier poll).
  bool has_buffered() const override;
  // Bytes accepted by publish() and not yet written stay under kUnsentHighWater (a hint only).
  bool writable() const override;
  // poll() runs at least this often to check the ack timeout.
  int tick_ms() const override;

  // Messages published and neither answered nor lost (for tests and metrics).
  std::size_t in_flight() const;
  // The subject an event goes to (prefix + routing key or default routing key), unvalidated.
  std::string subject_for(const Event& ev) const;

  // Library callbacks (public for the C trampolines in the .cpp; not for callers).
  void on_ack(__natsMsg* msg, bool ok, bool duplicate, int status, int err_code, const char* err_text);
  void on_lost(const std::string& why);
  void on_permission_violation(const std::string& text);

 private:
  // Builds the connection (open() and check()). Throws SinkError.
  void connect_(__natsConnection** nc, __jsCtx** js, std::uint64_t id);
  void ensure_streams(bool started);
  // Lists the streams: none capturing a subject of the prefix is SinkError(Config) at start and
  // an error logged once running (the events wait); remembers their subject filters.
  void check_capture(bool started);
  std::optional<std::string> validate_subject(const std::string& subject, const Event& ev) const;
  void wake();
  std::string mask(std::string text) const;  // the URLs' passwords and tokens -> ***
  std::string err(int status) const;        // nats.c's last error text, masked
  void send_loop();  // the writer thread

  Options o_;
  std::vector<std::string> masked_urls_;
  std::vector<std::string> secrets_;  // passwords and tokens of the URLs
  int pipe_[2] = {-1, -1};

  // Owned by the relay's thread.
  __natsConnection* conn_ = nullptr;
  __jsCtx* js_ = nullptr;
  std::uint64_t conn_id_ = 0;  // the id callbacks of this connection carry (never reused)
  std::string node_;
  std::int64_t max_payload_ = 0;
  std::string broken_reason_;  // reported (after the answers before it)
  std::chrono::steady_clock::time_point progress_at_{};

  // Shared with nats.c's threads, under mu_.
  mutable std::mutex mu_;
  std::unordered_map<__natsMsg*, std::uint64_t> inflight_;  // message in the library -> ticket
  std::deque<BrokerOutcome> queue_;  // answers not yet taken by poll()
  std::string lost_;                 // why the connection broke (not yet reported)
  bool progressed_ = false;          // an ack arrived since the last poll()
  // The subject filters of every stream seen at a connect of this sink, and whether a stream
  // captured some subject of the prefix at the latest one: what tells a stream deleted (the
  // events wait) from a routing key no stream was meant to capture (refused, then a dead letter).
  std::set<std::string> filters_seen_;
  bool prefix_captured_ = true;
  std::deque<__natsMsg*> unsent_;    // accepted by publish(), not yet given to nats.c (ours)
  std::size_t unsent_bytes_ = 0;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread sender_;
};

}  // namespace outbox
