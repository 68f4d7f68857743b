#include <gtest/gtest.h>

#include <string>

#include "ops/metrics.h"

using namespace outbox;

namespace {
// The value printed for a metric, as text ("" when absent).
std::string value_of(const std::string& text, const std::string& name) {
  auto p = text.find("\n" + name + " ");
  if (p == std::string::npos) return "";
  p += name.size() + 2;
  return text.substr(p, text.find('\n', p) - p);
}
}  // namespace

// Gauges print the true values: whole numbers digit for digit (LSNs beyond 2^53 included) and
// times to the microsecond, not an ostream's six significant digits (1.79615e+09 was 21 minutes
// off a real commit time).
TEST(Metrics, GaugesPrintTheTrueValues) {
  Metrics m;
  m.ack_commit_time_us = 1796151234567891;  // 2026-12-01, to the microsecond
  m.ack_lsn = 0xFFFFFFFF00000123ull;        // beyond a double's exact integers
  m.server_wal_end = 0xFFFFFFFF12345679ull;
  m.in_flight = 1234567;
  m.held = 9876543;
  m.observe_confirm_latency_us(1234567);
  std::string t = m.render_prometheus();
  EXPECT_EQ(value_of(t, "outbox_relay_acknowledged_commit_time_seconds"), "1796151234.567891") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_acknowledged_lsn"), "18446744069414584611") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_replication_lag_bytes"), std::to_string(0x12345679ull - 0x123ull)) << t;
  EXPECT_EQ(value_of(t, "outbox_relay_in_flight"), "1234567") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_held_events"), "9876543") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_confirm_latency_seconds_sum"), "1.234567") << t;
  Metrics zero;
  EXPECT_EQ(value_of(zero.render_prometheus(), "outbox_relay_acknowledged_commit_time_seconds"), "0.000000");
}

// Both latency histograms are rendered from one shape, each under its own name.
TEST(Metrics, CommitToReceiveIsAHistogramOfItsOwn) {
  Metrics m;
  m.commit_to_receive.observe_us(3000);    // 3 ms -> le 0.005
  m.commit_to_receive.observe_us(40000);   // 40 ms -> le 0.05
  m.observe_confirm_latency_us(700);
  std::string t = m.render_prometheus();
  EXPECT_NE(t.find("# TYPE outbox_relay_commit_to_receive_seconds histogram\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_commit_to_receive_seconds_bucket{le=\"0.0025\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_commit_to_receive_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_commit_to_receive_seconds_bucket{le=\"0.05\"} 2\n"), std::string::npos) << t;
  EXPECT_EQ(value_of(t, "outbox_relay_commit_to_receive_seconds_sum"), "0.043000") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_commit_to_receive_seconds_count"), "2") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_confirm_latency_seconds_count"), "1") << t;
}

TEST(Metrics, ReceiveToPublishIsAHistogramOfItsOwn) {
  Metrics m;
  m.receive_to_publish.observe_us(200);    // -> le 0.0005
  m.receive_to_publish.observe_us(12000);  // -> le 0.025
  std::string t = m.render_prometheus();
  EXPECT_NE(t.find("# TYPE outbox_relay_receive_to_publish_seconds histogram\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_receive_to_publish_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_receive_to_publish_seconds_bucket{le=\"0.01\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_receive_to_publish_seconds_bucket{le=\"0.025\"} 2\n"), std::string::npos) << t;
  EXPECT_EQ(value_of(t, "outbox_relay_receive_to_publish_seconds_count"), "2") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_confirm_latency_seconds_count"), "0") << t;
}

TEST(Metrics, SecondsText) {
  EXPECT_EQ(seconds_text(0), "0.000000");
  EXPECT_EQ(seconds_text(1), "0.000001");
  EXPECT_EQ(seconds_text(1796150000000000), "1796150000.000000");
  EXPECT_EQ(seconds_text(-1500000), "-1.500000");
}

TEST(Metrics, PerSinkSeriesForTheSinksInUseOnly) {
  Metrics m;
  m.sinks[m.sink_index("nats")].active = true;
  m.sinks[m.sink_index("nats")].duplicates = 7;
  m.sinks[m.sink_index("redis")].active = true;
  m.sinks[m.sink_index("redis")].connected = true;
  std::string t = m.render_prometheus();
  EXPECT_EQ(value_of(t, "outbox_relay_sink_duplicates_total{sink=\"nats\"}"), "7") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_sink_connected{sink=\"redis\"}"), "1") << t;
  EXPECT_EQ(value_of(t, "outbox_relay_sink_connected{sink=\"nats\"}"), "0") << t;
  EXPECT_EQ(t.find("sink=\"rabbitmq\""), std::string::npos) << "a sink not in use has no series";
  EXPECT_EQ(m.sink_index("redis"), 2u);
}
