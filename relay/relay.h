// The event loop (DESIGN 5.1): one thread polls the replication socket and the AMQP socket,
// parses, publishes within the confirm window, applies confirms to the AckTracker and sends
// standby status updates. Reconnects, standby waiting, retries, dead letters, checkpoints and
// graceful shutdown live here too.
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
#include "confirm_window.h"
#include "metrics.h"
#include "pg_admin.h"
#include "pg_replication.h"
#include "wal2json_parser.h"

namespace outbox {

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
  struct Item {
    Event ev;
    AckTracker::TxnId txn = 0;
    Clock::time_point published{};
    std::int64_t first_failed_us = 0;
    std::string last_reply;
    Clock::time_point due{};
  };
  using ItemPtr = std::unique_ptr<Item>;

  void connect_session();  // throws PgError / AmqpError
  void stream();           // returns on stop; throws on lost connections
  void close_session();
  void process_wal();
  void handle_xlogdata(Lsn start, std::string_view data);
  void publish(ItemPtr item);
  void on_confirm(std::uint64_t tag, bool multiple, bool nack);
  void on_return(const std::string& id, const std::string& lsn, const std::string& reply);
  void fail(ItemPtr item, const std::string& reason);
  void process_retries(Clock::time_point now);
  void maybe_send_status(Clock::time_point now, bool force);
  void maybe_checkpoint(Clock::time_point now, bool force);
  bool can_read() const;
  bool window_full() const;
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
  ConfirmWindow<ItemPtr> window_;
  std::deque<ItemPtr> retry_;
  AmqpCallbacks callbacks_;
  std::mt19937_64 rng_{std::random_device{}()};

  // per session
  bool in_txn_ = false;
  AckTracker::TxnId txn_ = 0;
  std::string txn_time_;
  std::uint64_t txn_xid_ = 0;
  bool pg_more_ = false;
  bool blocked_ = false;
  bool send_full_ = false;
  std::uint64_t in_flight_bytes_ = 0;
  bool stopping_ = false;
  Clock::time_point drain_deadline_{};
  Lsn ack_sent_ = 0;
  Clock::time_point last_status_{};
  Clock::time_point last_checkpoint_{};
  Lsn checkpointed_ = 0;
  bool reply_now_ = false;
  bool warned_privileges_ = false;
  Clock::time_point last_amqp_poll_{};
};

}  // namespace outbox
