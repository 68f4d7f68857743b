// The event loop (DESIGN 5.1): one thread polls the replication socket and the AMQP socket. Each
// turn pulls what arrived (WAL lines into the Delivery unit, broker answers), then acts (publish
// what may go, settle transactions in the AckTracker, write dead letters, send standby status
// updates). Reconnects, standby waiting, checkpoints and graceful shutdown live here too; which
// event is published when, and what a refusal means, is the Delivery unit's (delivery/delivery.h).
#pragma once
#include <poll.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "delivery/ack_tracker.h"
#include "ops/config.h"
#include "delivery/delivery.h"
#include "source/line_encoding.h"
#include "ops/metrics.h"
#include "source/pg_admin.h"
#include "source/pg_replication.h"
#include "delivery/shard.h"
#include "delivery/sink.h"
#include "sinks/sink_opener.h"
#include "source/wal2json_parser.h"

namespace outbox {

// A mistake in the settings found while starting (exit 2): retrying cannot fix it.
struct StartError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Relay {
 public:
  Relay(Config cfg, Metrics& metrics);
  ~Relay();
  // Runs until stopped (returns 0) or a fatal error (returns 2, after logging it with the fix).
  int run();
  // --check: connects to both servers, runs every pre-flight check (settings, slot, plugin,
  // privileges, topology) without streaming, logs the verdict; 0 when the relay could start.
  int check();
  // Async-signal-safe: asks the loop to drain and stop.
  void request_stop();

 private:
  using Clock = std::chrono::steady_clock;

  void connect_session();  // throws PgError / AmqpError
  // What --check and every session's start verify on the database before anything is created
  // (the slot above all): the server can decode with the plugin, the outbox extension is there
  // at a version this relay works with, the relay role holds what outbox.grant_relay() gives,
  // and the slot, if it exists, fits the settings. One function for both, so that the start
  // refuses everything --check refuses. Throws PgError (Fatal naming the fix; Retryable when
  // the connection fails); a slot active elsewhere is returned in `busy`, not thrown.
  struct Preflight {
    std::string database;
    std::optional<SlotInfo> slot;
    std::optional<PgError> busy;  // SlotBusy: wait as a standby
    std::string unchecked;        // what the server did not let the relay check ("" = nothing)
  };
  Preflight preflight();
  void stream();           // returns on stop; throws on lost connections
  // The stream's steps: whether a stop has drained (or timed out); one turn (reopen sinks, read
  // the slot, publish, act on what came back, checkpoint, status); how long poll may sleep; the
  // poll and the reads of what it reported.
  bool stop_done(Clock::time_point now);
  void turn(Clock::time_point now);
  int poll_timeout_ms(Clock::time_point now);
  void poll_and_read(int timeout_ms);
  // Ends the session. With finish_writes (the database connection is not the one that failed)
  // the queued database writes are completed first, up to --pg-timeout-ms: a dead letter
  // written but not known as written would be written a second time.
  void close_session(bool finish_writes = false);
  void process_wal();
  void handle_xlogdata(Lsn start, std::string_view data);
  // Opens every sink at the start of a session. With several sinks, one that cannot be reached
  // is left down (its events wait, the others flow) and retried from the loop; with one sink, or
  // when none can be reached, the error is thrown (the session is retried with backoff).
  void open_sinks();
  void sink_down(std::size_t i, const SinkError& e, Clock::time_point now);
  // Starts the open of each down sink whose retry time has come (SinkOpener), and takes the
  // outcome of those that ended.
  void reopen_sinks(Clock::time_point now);
  void set_down(std::size_t i, bool down);
  void drain_wake_pipe();
  bool other_sink_connected(std::size_t i) const;
  bool all_sinks_blocked() const;
  void act_on_broker(std::size_t sink, Clock::time_point now);
  // Sink `i` broke (its answers read first): with other sinks connected it is left down and its
  // messages in flight requeued; alone, the session ends (throws SinkError).
  void sink_failed(std::size_t i, const std::string& reason, bool by_message, Clock::time_point now);
  // delivery_.pump, then what it found broken.
  void pump_delivery();
  // Some connected sink cannot take more now (its socket buffer is full).
  bool sinks_full() const;
  void act_on_delivery();
  // Counts the line; logs it (and returns true) for the first ones, then one in a thousand.
  bool reject_line(Lsn lsn, const std::string& reason);
  // A new unit of the stream at `lsn`: in the open transaction, or in a transaction of its own
  // (acknowledged at `lsn`).
  AckTracker::Unit unit_for(Lsn lsn);
  // True when the unit of the open transaction at `lsn` was settled before a restart (the
  // transaction's progress, DESIGN 6.1): it is counted as settled and not published again.
  bool skip_settled(Lsn lsn);
  // The skipping of the open transaction ends (at its first unit not skipped, or its commit).
  void end_skip();
  // At session start: the transaction progress this session may use (the checkpoint row's and
  // this process's last session's, when they were taken on this cluster, timeline and --shard).
  void load_progress(const std::optional<CheckpointRow>& cp, const ReplicationStream::SystemInfo& sys,
                     bool slot_created);
  void load_message_keys();
  // Reads the keys again (rate_limited: not if that was done within the last second); true if it did.
  bool reload_message_keys(bool rate_limited);
  void maybe_send_status(Clock::time_point now, bool force);
  void maybe_checkpoint(Clock::time_point now, bool force);
  // The position to stream from: the slot's, or the relay's own durable checkpoint when that is
  // newer (PostgreSQL 15 saves a slot's position only at checkpoints).
  Lsn start_position(const SlotInfo& slot, const std::optional<CheckpointRow>& cp,
                     const ReplicationStream::SystemInfo& sys);
  // Slot recovery: before any line of the new slot, the events of outbox.events it will never
  // decode (source/pg_admin.h, outbox--0.1--0.2.sql "Slot recovery"), one page per turn.
  void feed_recovery();
  // Sends queued database writes and acts on the completed ones (dead letters settle events).
  void pump_admin();
  // Gives the replication connection up when the server sent nothing for --pg-timeout-ms while
  // the relay was listening; pings it (reply requested) at half of that.
  void check_pg_silence(Clock::time_point now);
  bool can_read() const;
  bool wait_interruptible(std::chrono::milliseconds d);  // false if stop requested
  void update_gauges();

  Config cfg_;
  Metrics& m_;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stop_{false};

  PgAdmin admin_;
  ReplicationStream repl_;
  std::vector<std::unique_ptr<Sink>> sinks_;  // Config::sinks, in that order (the Router's indexes)
  // The sinks the loop may use, by the same index: null while one is down (and perhaps being
  // opened by its SinkOpener's thread), so that nothing reads a sink another thread writes.
  std::vector<Sink*> sink_ptrs_;
  std::deque<SinkOpener> openers_;  // one per sink
  struct SinkState {
    bool down = false;  // left out of this session until retry_at
    Clock::time_point retry_at{}, last_poll{};
    int attempt = 0;
    std::size_t metrics = 0;  // its slot in Metrics::sinks
  };
  std::vector<SinkState> sink_state_;
  Wal2jsonParser parser_;
  LineEncoding line_encoding_;  // the plugin writes the database's encoding; the parser reads UTF-8
  void use_server_encoding();
  AckTracker tracker_;
  Delivery delivery_;
  std::vector<Settled> settled_buf_;  // act_on_delivery's, kept for its capacity
  std::vector<BrokerOutcome> outcomes_;
  std::vector<pollfd> fds_;  // poll_and_read's, kept to save an allocation per turn
  std::vector<AdminDone> admin_done_;
  std::unordered_map<std::uint64_t, DeadLetter> dead_letters_writing_;  // by tag, until the row is written
  std::uint64_t next_dead_letter_tag_ = 0;
  struct Recovery {
    bool active = false;       // republishing, or waiting for the broker to confirm what was
    bool fetched_all = false;  // every page read; the stream may be read now
    std::string after_id;      // paging position
    AckTracker::TxnId txn = 0;
    Lsn at = 0;                // the new slot's start: the unit is acknowledged there
    std::uint64_t pending = 0, total = 0;
  } recovery_;
  std::mt19937_64 rng_{std::random_device{}()};

  // per session
  bool in_txn_ = false;
  AckTracker::TxnId txn_ = 0;
  std::string txn_time_;
  std::uint64_t txn_xid_ = 0;
  bool pg_more_ = false;
  bool blocked_ = false;
  bool send_full_ = false;
  bool stopping_ = false;
  Clock::time_point drain_deadline_{};
  Clock::time_point last_key_reload_{};
  Lsn ack_sent_ = 0;
  Lsn session_start_ = 0;  // where this session's stream began: never sent again
  Clock::time_point last_status_{};
  Clock::time_point last_checkpoint_{};
  Clock::time_point next_checkpoint_{};
  Lsn checkpoint_sent_ = 0;
  std::optional<TxnProgress> progress_sent_;  // with the newest checkpoint queued
  // Large transactions (DESIGN 6.1): what is known settled of transactions the slot may send
  // again, where this session's stream comes from, the last session's progress (a reconnect of
  // this process), and the open transaction's skipping.
  std::vector<TxnProgress> resume_;
  std::string session_system_;
  int session_timeline_ = 0;
  struct LastProgress {
    TxnProgress progress;
    std::string system_id;
    int timeline = 0;
  };
  std::optional<LastProgress> last_progress_;
  std::optional<TxnProgress> skip_;
  std::uint64_t skipped_ = 0;
  std::uint64_t settled_ = 0, settled_at_checkpoint_ = 0;  // events settled: does a checkpoint say something new?
  // The fence of the newest checkpoint written, and how many settled events it and the newest
  // fence passed (acked_snapshot) cover: a recovery after a failover republishes at most what
  // came after the passed one.
  Lsn fence_ = 0;
  std::uint64_t fenced_settled_ = 0, covered_settled_ = 0;
  Clock::time_point last_heard_{};  // the last message from the walsender (or when the relay stopped listening)
  bool pinged_ = false;
  // How long the replication connection may stay silent: --pg-timeout-ms, but at least 3/4 of
  // the walsender's wal_sender_timeout (it decodes a large filtered transaction sending nothing
  // for up to half of it).
  long long repl_silence_ms_ = 30000;
  std::optional<Shard> shard_;  // --shard: a slot recovery republishes only this shard's events
  bool reply_now_ = false;
  // When this turn began, just after poll() returned: the receive time of receive_to_publish for
  // the lines it reads, without a clock read per event (early by up to the turn's own length,
  // which is long only while a backlog drains).
  Clock::time_point turn_at_{};
  bool started_ = false;          // a session has streamed: later problems are runtime ones
  bool warned_default_missing_ = false;
  std::vector<std::string> destination_warned_;  // by sink: the reason logged while its events wait
  int status_interval_configured_ms_ = 0;  // --status-interval-ms as given (cfg_ holds the one in use)
  std::uint64_t rejected_ = 0;
};

}  // namespace outbox
