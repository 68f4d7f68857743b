#include "ops/metrics.h"

#include "sinks/sink_factory.h"

#include <cinttypes>
#include <cstdio>
#include <sstream>

namespace outbox {

Metrics::Metrics() : sink_names(sink_kind_names()), sinks(new SinkMetrics[sink_names.size()]) {}

void Metrics::Histogram::observe_us(std::uint64_t us) {
  double s = static_cast<double>(us) / 1e6;
  std::size_t i = 0;
  while (i < kBuckets.size() && s > kBuckets[i]) ++i;
  buckets[i].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(us, std::memory_order_relaxed);
}

std::string seconds_text(std::int64_t us) {
  // Integer arithmetic: exact for every value (a double would round beyond 2^53 us).
  char buf[48];
  std::uint64_t a = us < 0 ? 0 - static_cast<std::uint64_t>(us) : static_cast<std::uint64_t>(us);
  std::snprintf(buf, sizeof buf, "%s%" PRIu64 ".%06" PRIu64, us < 0 ? "-" : "", a / 1000000, a % 1000000);
  return buf;
}

namespace {

void render_histogram(std::ostringstream& o, const std::string& name, const char* help, const Metrics::Histogram& h) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < Metrics::kBuckets.size(); ++i) {
    cum += h.buckets[i].load();
    o << name << "_bucket{le=\"" << Metrics::kBuckets[i] << "\"} " << cum << '\n';
  }
  cum += h.buckets[Metrics::kBuckets.size()].load();
  o << name << "_bucket{le=\"+Inf\"} " << cum << '\n';
  o << name << "_sum " << seconds_text(static_cast<std::int64_t>(h.sum_us.load())) << '\n';
  o << name << "_count " << h.count.load() << '\n';
}

}  // namespace

std::string Metrics::render_prometheus() const {
  std::ostringstream o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    family(name, "counter", help);
    o << name << ' ' << v << '\n';
  };
  // Gauges are whole numbers (LSNs reach 2^64, beyond a double's 2^53) printed exactly, or
  // times in microseconds printed as seconds with all six decimals: an ostream's default six
  // significant digits put 1796150000.5 at 1.79615e+09, 21 minutes off.
  auto gauge = [&](const char* name, const char* help, auto v) {
    family(name, "gauge", help);
    o << name << ' ' << v << '\n';
  };
  auto per_server = [&](const char* name, const char* type, const char* help, auto pg, auto amqp) {
    family(name, type, help);
    o << name << "{server=\"postgresql\"} " << pg << '\n' << name << "{server=\"rabbitmq\"} " << amqp << '\n';
  };
  counter("outbox_relay_events_published_total", "basic.publish calls, retries included", events_published.load());
  counter("outbox_relay_events_confirmed_total", "events confirmed (acked and routed) by the broker", events_confirmed.load());
  counter("outbox_relay_transactions_total", "committed transactions received from the slot", transactions.load());
  counter("outbox_relay_nacks_total", "basic.nack received", nacks.load());
  counter("outbox_relay_returns_total", "unroutable messages returned (mandatory)", returns.load());
  counter("outbox_relay_retries_total", "publish retries after a nack or return", retries.load());
  counter("outbox_relay_dead_letters_total", "events written to outbox.dead_letters", dead_letters.load());
  counter("outbox_relay_exchange_missing_total", "publishes refused because the exchange does not exist",
          exchange_missing.load());
  counter("outbox_relay_suspects_total",
          "events republished alone after the broker closed a channel with several messages in flight",
          suspects.load());
  counter("outbox_relay_rejected_lines_total",
          "stream lines skipped as not genuine outbox events (forged or unverifiable messages, unparseable lines)",
          rejected_lines.load());
  counter("outbox_relay_key_reloads_total",
          "message keys read again while streaming (a rotation in the stream, or a message that did not verify)",
          key_reloads.load());
  counter("outbox_relay_pg_silences_total",
          "PostgreSQL connections given up because nothing came back within --pg-timeout-ms (a silent network)",
          pg_silences.load());
  counter("outbox_relay_slot_recoveries_total",
          "lost slots (a failover on PostgreSQL 15) created again, with the events they lost republished",
          slot_recoveries.load());
  counter("outbox_relay_republished_total", "events republished from outbox.events by slot recoveries",
          republished.load());
  counter("outbox_relay_checkpoint_starts_total",
          "streaming started at the relay's own checkpoint, ahead of the slot's saved position", checkpoint_skips.load());
  counter("outbox_relay_resent_events_skipped_total",
          "events of a transaction the slot sent again that were confirmed or dead-lettered before the restart (not "
          "published again)",
          resent_skipped.load());
  per_server("outbox_relay_reconnects_total", "counter", "reconnections after a lost connection", reconnects_pg.load(),
             reconnects_amqp.load());
  counter("outbox_relay_standby_waits_total", "times the slot was busy and the relay waited as a standby", standby_waits.load());
  per_server("outbox_relay_auth_failures_total", "counter", "logins refused (credentials, pg_hba.conf, vhost)",
             auth_failures_pg.load(), auth_failures_amqp.load());
  per_server("outbox_relay_auth_failing", "gauge", "1 while the last login was refused, until one succeeds",
             auth_failing_pg.load() ? 1 : 0, auth_failing_amqp.load() ? 1 : 0);
  gauge("outbox_relay_standby", "1 while waiting for the slot that another process holds", standby.load() ? 1 : 0);
  counter("outbox_relay_status_updates_total", "standby status updates sent", status_updates.load());
  gauge("outbox_relay_in_flight", "published messages not yet confirmed", in_flight.load());
  gauge("outbox_relay_held_events", "events received from the slot and not yet confirmed or dead-lettered",
        held.load());
  gauge("outbox_relay_default_exchange_missing",
        "1 while the default exchange does not exist and events without an exchange wait",
        default_exchange_missing.load() ? 1 : 0);
  std::uint64_t end = server_wal_end.load(), ack = ack_lsn.load();
  gauge("outbox_relay_acknowledged_lsn", "LSN acknowledged to the slot (as a number)", ack);
  gauge("outbox_relay_replication_lag_bytes", "server WAL end minus acknowledged LSN",
        static_cast<std::uint64_t>(end > ack ? end - ack : 0));
  gauge("outbox_relay_acknowledged_commit_time_seconds", "commit time of the newest acknowledged transaction",
        seconds_text(ack_commit_time_us.load()));
  gauge("outbox_relay_up", "1 while streaming from the slot and connected to the broker", streaming.load() ? 1 : 0);
  gauge("outbox_relay_broker_blocked", "1 while RabbitMQ blocks publishing (connection.blocked)", broker_blocked.load() ? 1 : 0);
  auto per_sink = [&](const char* name, const char* type, const char* help, auto get) {
    family(name, type, help);
    for (std::size_t i = 0; i < sink_names.size(); ++i)
      if (sinks[i].active.load()) o << name << "{sink=\"" << sink_names[i] << "\"} " << get(sinks[i]) << '\n';
  };
  per_sink("outbox_relay_sink_published_total", "counter", "publishes to this sink, retries included",
           [](const SinkMetrics& s) { return s.published.load(); });
  per_sink("outbox_relay_sink_confirmed_total", "counter", "events this sink's broker confirmed",
           [](const SinkMetrics& s) { return s.confirmed.load(); });
  per_sink("outbox_relay_sink_duplicates_total", "counter",
           "confirms of events the broker already had (JetStream duplicate window, the Redis de-duplication key)",
           [](const SinkMetrics& s) { return s.duplicates.load(); });
  per_sink("outbox_relay_sink_refused_total", "counter", "messages this sink's broker refused (nack, return, error reply)",
           [](const SinkMetrics& s) { return s.refused.load(); });
  per_sink("outbox_relay_sink_reconnects_total", "counter", "connections to this sink lost or refused, then retried",
           [](const SinkMetrics& s) { return s.reconnects.load(); });
  per_sink("outbox_relay_sink_auth_failures_total", "counter", "logins this sink's broker refused",
           [](const SinkMetrics& s) { return s.auth_failures.load(); });
  per_sink("outbox_relay_sink_connected", "gauge", "1 while connected to this sink",
           [](const SinkMetrics& s) { return s.connected.load() ? 1 : 0; });
  per_sink("outbox_relay_sink_blocked", "gauge", "1 while this sink's broker blocks publishing",
           [](const SinkMetrics& s) { return s.blocked.load() ? 1 : 0; });
  per_sink("outbox_relay_sink_destination_missing", "gauge",
           "1 while this sink's events wait because their destination is gone (a JetStream stream deleted)",
           [](const SinkMetrics& s) { return s.destination_missing.load() ? 1 : 0; });
  per_sink("outbox_relay_sink_in_flight", "gauge", "messages published to this sink and not yet answered",
           [](const SinkMetrics& s) { return s.in_flight.load(); });
  render_histogram(o, "outbox_relay_confirm_latency_seconds", "publish to broker confirm", confirm_latency);
  render_histogram(o, "outbox_relay_commit_to_receive_seconds",
                   "a transaction's commit in PostgreSQL to the relay reading its commit line (WAL flush, "
                   "decoding, walsender, network; with the clock difference of the two hosts)",
                   commit_to_receive);
  render_histogram(o, "outbox_relay_receive_to_publish_seconds",
                   "the relay reading an event to publishing it, the last time (waiting for its aggregate's earlier "
                   "event, the window, a retry's backoff, the loop)",
                   receive_to_publish);
  return o.str();
}

}  // namespace outbox
