// The event loop (DESIGN 5.1): one thread polls the replication socket and the AMQP socket. Each
// turn pulls what arrived (WAL lines into the Delivery unit, broker answers), then acts (publish
// what may go, settle transactions in the AckTracker, write dead letters, send standby status
// updates). Reconnects, standby waiting, checkpoints and graceful shutdown live here too; which
// event is published when, and what a refusal means, is the Delivery unit's (delivery.h).
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <string>

#include "ack_tracker.h"
#include "amqp_publisher.h"
#include "config.h"
#include "delivery.h"
#include "metrics.h"
#include "pg_admin.h"
#include "pg_replication.h"
#include "wal2json_parser.h"

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
  void stream();           // returns on stop; throws on lost connections
  void close_session();
  void process_wal();
  void handle_xlogdata(Lsn start, std::string_view data);
  void act_on_broker(Clock::time_point now);
  void act_on_delivery();
  void reject_line(Lsn lsn, const std::string& reason);
  // The tracker unit one more item of the stream belongs to: the open transaction, or a unit of
  // its own at `lsn`.
  AckTracker::TxnId unit_for(Lsn lsn);
  void load_message_key();
  void maybe_send_status(Clock::time_point now, bool force);
  void maybe_checkpoint(Clock::time_point now, bool force);
  bool can_read() const;
  bool wait_interruptible(std::chrono::milliseconds d);  // false if stop requested
  void update_gauges();

  Config cfg_;
  Metrics& m_;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stop_{false};

  PgAdmin admin_;
  ReplicationStream repl_;
  AmqpPublisher amqp_;
  Wal2jsonParser parser_;
  AckTracker tracker_;
  Delivery delivery_;
  std::vector<BrokerOutcome> outcomes_;
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
  Lsn ack_sent_ = 0;
  Clock::time_point last_status_{};
  Clock::time_point last_checkpoint_{};
  bool reply_now_ = false;
  bool warned_privileges_ = false;
  bool started_ = false;          // a session has streamed: later problems are runtime ones
  bool warned_default_missing_ = false;
  int status_interval_configured_ms_ = 0;  // --status-interval-ms as given (cfg_ holds the one in use)
  std::uint64_t rejected_ = 0;
  Clock::time_point last_amqp_poll_{};
};

}  // namespace outbox
