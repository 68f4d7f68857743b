// The client-library side of the NATS sink: one nats.c connection (the library's own reconnect
// off: the relay reconnects itself) with a JetStream context, publishing asynchronously.
// publish() hands the message to the writer thread, the only caller of js_PublishMsgAsync. The
// PubAcks arrive on a nats.c thread: they are queued under a mutex and a byte is written to a
// self-pipe, whose read end is socket(); poll() drains both. No stream for the subject is Refused
// Returned; a JetStream error or a permissions violation for the message is Refused Nacked; but a
// subject a stream captured at an earlier connect (the stream was deleted), or any subject when no
// stream captured the prefix's subjects at the latest connect, is Refused DestinationMissing (the
// event waits, uncharged). A lost connection or no ack for ack_timeout_ms is broken() (the fate of
// the messages in flight is unknown: no refusal for them), reported after the answers queued
// before it.
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
#include <utility>
#include <vector>

#include "delivery/sink.h"
#include "sinks/nats/message.h"

// nats.c types (<nats/nats.h> stays out of this header).
struct __natsConnection;
struct __natsOptions;
struct __jsCtx;
struct __natsMsg;

namespace outbox {

struct NatsTls {
  std::string cacert, cert, key;  // PEM files; empty = not used
};

class NatsConnection {
 public:
  // A socket write the server does not take within this long fails and shuts the connection.
  static constexpr int kWriteDeadlineMs = 2000;
  // writable() turns false beyond this many bytes accepted and not yet written.
  static constexpr std::size_t kUnsentHighWater = 8u << 20;

  // urls: nats://[user:pass@]host:port or tls://..., at least one; several = servers of one
  // cluster, tried in order. Their passwords and tokens are masked in every text. The subject
  // prefix is named by refusals; ack_timeout_ms: messages in flight and no ack for this long
  // break the connection (0 = never).
  NatsConnection(std::vector<std::string> urls, std::string subject_prefix, int ack_timeout_ms);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // Checks the URLs and TLS files, then connects (servers in the order given), checks header
  // support and that JetStream answers. Throws SinkError: Config (bad URL, unreadable TLS file),
  // Auth (authorization violation), Tls (the server's certificate does not verify), else
  // Retryable. Passwords masked. `report` false: nothing from nats.c's threads reaches this
  // object (a connection that only asks the JetStream API, for check()).
  void connect(const NatsTls& tls, const std::string& name, int connect_timeout_ms, bool report);
  // Starts the writer thread: publish() may be called from now on.
  void start();
  // Destroys the connection (callbacks still running on library threads finish first or find
  // nothing), then drops what was queued. Safe to call twice.
  void close();
  bool connected() const { return conn_ != nullptr; }
  const std::string& node() const { return node_; }  // the server connected to, masked
  std::int64_t max_payload() const { return max_payload_; }
  __jsCtx* jetstream() const { return js_; }

  std::string mask(std::string text) const;  // the URLs' passwords and tokens -> ***
  std::string err(int status) const;        // nats.c's last error text, masked

  // The subject filters of the streams seen at this connect (stream, filter), and whether one
  // captured some subject of the prefix: what tells a stream deleted (the events wait) from a
  // routing key no stream was meant to capture (refused, then a dead letter).
  void streams_seen(const std::vector<std::pair<std::string, std::string>>& filters, bool prefix_captured);

  // Never waits: the message is handed to the writer thread (nats.c writes to the socket with no
  // deadline once its buffer is full; MaxPending is far above any window, so it never stalls for
  // acks either). Returns the error text when nats.c cannot build the message.
  std::optional<std::string> publish(std::uint64_t ticket, const NatsMessage& m);
  // Between batch(true) and batch(false) publish() keeps the messages here, and batch(false)
  // hands them to the writer under one lock with one wake-up: per message, the mutex and the
  // writer's futex cost more than the publish itself (2.5 futex calls per event were measured).
  void batch(bool on);

  int socket() const { return conn_ ? pipe_[0] : -1; }
  void poll(std::vector<BrokerOutcome>& out);
  bool broken() const { return !broken_reason_.empty(); }
  const std::string& broken_reason() const { return broken_reason_; }
  // Answers queued by the library thread but not yet taken by poll() (the pipe byte may have
  // been read by an earlier poll).
  bool has_buffered() const;
  // Bytes accepted by publish() and not yet written stay under kUnsentHighWater (a hint only).
  bool writable() const;
  // Messages published and neither answered nor lost.
  std::size_t in_flight() const;

  // Library callbacks (public for the C trampolines in the .cpp; not for callers).
  void on_ack(__natsMsg* msg, bool ok, bool duplicate, int status, int err_code, const char* err_text);
  void on_lost(const std::string& why);
  void on_permission_violation(const std::string& text);

 private:
  // The first server that accepts; throws when none does.
  // Returns the id the callbacks of the connection used carry.
  std::uint64_t connect_servers(const NatsTls& tls, const std::string& name, int connect_timeout_ms, bool report);
  // Server i's URL and the TLS settings (Config when unusable).
  void use_server(__natsOptions* opts, std::size_t i, const NatsTls& tls, bool secure) const;
  // The JetStream context of a new connection; nullptr and `why` when there is none (the caller
  // unregisters the connection's id, then destroys it).
  __jsCtx* jetstream_of(__natsConnection* nc, int wait_ms, std::uint64_t id, std::string& why) const;
  // The refusal of a message no stream answered (under mu_): stream_gone when its event is to
  // wait for the stream (DestinationMissing) rather than be refused (Returned).
  std::string refusal_for_no_responders(const char* subj, bool& stream_gone) const;
  void wake();  // under mu_: a byte in the pipe unless one is there since the last poll()
  void hand_off_held();
  void send_loop();  // the writer thread

  std::vector<std::string> urls_;
  std::vector<std::string> masked_urls_;
  std::vector<std::string> secrets_;  // passwords and tokens of the URLs
  std::string subject_prefix_;
  int ack_timeout_ms_;
  int pipe_[2] = {-1, -1};

  // Owned by the relay's thread.
  __natsConnection* conn_ = nullptr;
  __jsCtx* js_ = nullptr;
  std::uint64_t conn_id_ = 0;  // the id callbacks of this connection carry (never reused)
  std::string node_;
  std::int64_t max_payload_ = 0;
  std::string broken_reason_;  // reported (after the answers before it)
  std::chrono::steady_clock::time_point progress_at_{};
  // publish() inside a batch (the relay's thread only): messages not yet handed to the writer.
  bool batching_ = false;
  std::vector<std::pair<__natsMsg*, std::uint64_t>> held_;
  std::size_t held_bytes_ = 0;
  std::string scratch_;  // a message's header block and data, before nats.c copies them

  // Shared with nats.c's threads, under mu_.
  mutable std::mutex mu_;
  std::unordered_map<__natsMsg*, std::uint64_t> inflight_;  // message in the library -> ticket
  std::deque<BrokerOutcome> queue_;  // answers not yet taken by poll()
  std::string lost_;                 // why the connection broke (not yet reported)
  bool progressed_ = false;          // an ack arrived since the last poll()
  bool woken_ = false;               // a byte is in the pipe since the last poll(): no more
  // See streams_seen(): of every connect of this sink, and of the latest one.
  std::set<std::string> filters_seen_;
  bool prefix_captured_ = true;
  std::deque<__natsMsg*> unsent_;    // accepted by publish(), not yet given to nats.c (ours)
  std::size_t unsent_bytes_ = 0;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread sender_;
};

}  // namespace outbox
