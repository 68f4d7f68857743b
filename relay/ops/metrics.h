// Counters and gauges the event loop updates (atomics, so the HTTP thread can read them without
// locks) and their Prometheus text rendering.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

namespace outbox {

struct Metrics {
  static constexpr std::array<double, 14> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1.0,   2.5,  5.0,  10.0};
  std::atomic<std::uint64_t> events_published{0};   // basic.publish calls (retries included)
  std::atomic<std::uint64_t> events_confirmed{0};   // broker acks of routed messages
  std::atomic<std::uint64_t> transactions{0};       // committed transactions received
  std::atomic<std::uint64_t> nacks{0};
  std::atomic<std::uint64_t> returns{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> dead_letters{0};
  std::atomic<std::uint64_t> reconnects_pg{0};
  std::atomic<std::uint64_t> reconnects_amqp{0};
  std::atomic<std::uint64_t> standby_waits{0};
  std::atomic<std::uint64_t> status_updates{0};
  std::atomic<std::uint64_t> exchange_missing{0};  // refusals: the event's exchange does not exist
  std::atomic<std::uint64_t> suspects{0};          // events published alone after an unpinned channel close
  std::atomic<std::uint64_t> rejected_lines{0};    // lines that are not genuine outbox events (forged, unparseable)
  std::atomic<std::uint64_t> key_reloads{0};       // message keys read again (a rotation, or a MAC that did not verify)
  std::atomic<std::uint64_t> pg_silences{0};       // PostgreSQL connections given up for want of an answer
  std::atomic<std::uint64_t> slot_recoveries{0};   // lost slots recreated, their events republished
  std::atomic<std::uint64_t> republished{0};       // events republished by slot recoveries
  std::atomic<std::uint64_t> checkpoint_skips{0};  // starts ahead of the slot, at the relay's own checkpoint
  std::atomic<std::uint64_t> resent_skipped{0};    // events of a transaction sent again, settled before a restart
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> held{0};               // events received and not yet settled
  std::atomic<bool> default_exchange_missing{false};
  std::atomic<std::uint64_t> ack_lsn{0};
  std::atomic<std::uint64_t> server_wal_end{0};
  std::atomic<std::int64_t> ack_commit_time_us{0};
  std::atomic<bool> pg_connected{false};
  std::atomic<bool> amqp_connected{false};
  std::atomic<bool> streaming{false};
  std::atomic<bool> broker_blocked{false};
  std::atomic<std::int64_t> loop_heartbeat_ms{0};  // steady-clock ms of the last loop iteration
  // Logins refused (wrong credentials, pg_hba.conf, vhost): counted, and 1 until a login works.
  std::atomic<std::uint64_t> auth_failures_pg{0};
  std::atomic<std::uint64_t> auth_failures_amqp{0};
  std::atomic<bool> auth_failing_pg{false};
  std::atomic<bool> auth_failing_amqp{false};
  std::atomic<bool> standby{false};  // waiting for a slot another process holds

  // Per broker kind, in the factory's order (sinks/sink_factory.h), labelled sink="<name>"; only
  // the sinks in use (`active`) are shown. A new broker gets its series without a change here.
  struct SinkMetrics {
    // destination_missing: its events wait because what the settings send them to is gone (a
    // JetStream stream deleted).
    std::atomic<bool> active{false}, connected{false}, blocked{false}, destination_missing{false};
    std::atomic<std::uint64_t> published{0}, confirmed{0}, duplicates{0}, refused{0}, retries{0}, reconnects{0},
        auth_failures{0};
    std::atomic<std::int64_t> in_flight{0};
  };
  Metrics();
  const std::vector<std::string> sink_names;  // fixed at construction: the HTTP thread reads it
  std::unique_ptr<SinkMetrics[]> sinks;       // one per name
  // The index in `sinks` of a sink name (0 for an unknown one).
  std::size_t sink_index(const std::string& name) const {
    for (std::size_t i = 0; i < sink_names.size(); ++i)
      if (name == sink_names[i]) return i;
    return 0;
  }

  // A latency histogram over kBuckets (seconds), written by the loop, read by the HTTP thread.
  struct Histogram {
    std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_us{0};
    void observe_us(std::uint64_t us);
  };
  Histogram confirm_latency;    // publish -> the broker's confirm
  Histogram commit_to_receive;  // the commit in PostgreSQL -> the relay read the commit line
  Histogram receive_to_publish;  // the relay read an event -> its (last) publish

  void observe_confirm_latency_us(std::uint64_t us) { confirm_latency.observe_us(us); }
  std::string render_prometheus() const;

  // Why the relay is not streaming (shown by /readyz; secrets already masked), "" when it is.
  void set_not_ready(std::string why) { not_ready_.set(std::move(why)); }
  std::string not_ready() const { return not_ready_.get(); }
  // Why events wait while streaming, for a reason an operator must fix (a sink's destination is
  // gone): /readyz answers 503 with it. "" when none.
  void set_paused(std::string why) { paused_.set(std::move(why)); }
  std::string paused() const { return paused_.get(); }

 private:
  // A text the event loop sets and the HTTP thread reads: too long for an atomic, so under a lock.
  class LockedText {
   public:
    void set(std::string s) {
      std::lock_guard<std::mutex> l(mu_);
      s_ = std::move(s);
    }
    std::string get() const {
      std::lock_guard<std::mutex> l(mu_);
      return s_;
    }

   private:
    mutable std::mutex mu_;
    std::string s_;
  };
  LockedText not_ready_, paused_;
};

// Microseconds as exact decimal seconds: 1796150000123456 -> "1796150000.123456".
std::string seconds_text(std::int64_t us);

}  // namespace outbox
