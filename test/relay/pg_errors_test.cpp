#include <gtest/gtest.h>

#include "metrics.h"
#include "pg_admin.h"
#include "pg_errors.h"
#include "pg_replication.h"

using namespace outbox;

namespace {
PgError cls(const std::string& m) { return classify_pg_error(m, "myslot", "wal2json"); }
bool says(const PgError& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }
}  // namespace

// Real server messages (PostgreSQL 15) and the fix each must name.
TEST(PgErrors, EachNamesTheFix) {
  auto e = cls("ERROR:  logical decoding requires wal_level >= logical");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "wal_level = logical"));
  e = cls("ERROR:  library \"wal2json\" may not be used as an output plugin");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "output_plugin_libraries"));
  e = cls("ERROR:  replication slot \"myslot\" does not exist");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "--create-slot"));
  e = cls("ERROR:  replication slot \"myslot\" is active for PID 4242");
  EXPECT_EQ(e.kind, PgErrorKind::SlotBusy);
  e = cls("ERROR:  can no longer get changes from replication slot \"myslot\"\nDETAIL:  This slot has been invalidated because it exceeded the maximum reserved size.");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "pg_drop_replication_slot('myslot')"));
  e = cls("FATAL:  must be superuser or replication role to start walsender");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "ALTER ROLE"));
  e = cls("ERROR:  could not access file \"wal2json\": No such file or directory");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "postgresql-15-wal2json"));
  e = cls("FATAL:  no pg_hba.conf entry for replication connection from host \"10.0.0.1\", user \"relay\"");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "pg_hba.conf"));
  e = cls("ERROR:  permission denied for table dead_letters");
  EXPECT_EQ(e.kind, PgErrorKind::Fatal);
  EXPECT_TRUE(says(e, "outbox.grant_relay"));
  e = cls("connection to server at \"127.0.0.1\", port 5432 failed: Connection refused");
  EXPECT_EQ(e.kind, PgErrorKind::Retryable);
  e = cls("server closed the connection unexpectedly");
  EXPECT_EQ(e.kind, PgErrorKind::Retryable);
}

TEST(PluginOptions, OutboxPresetPerPlugin) {
  auto d = plugin_options("outbox_decoder");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], (std::pair<std::string, std::string>{"format-version", "2"}));
  EXPECT_EQ(d[1], (std::pair<std::string, std::string>{"outbox", "1"}));
  auto s = plugin_options("outbox_decoder", "2/3");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[2], (std::pair<std::string, std::string>{"shard", "2/3"}));
  auto w = plugin_options("wal2json");
  std::map<std::string, std::string> m(w.begin(), w.end());
  EXPECT_EQ(m["format-version"], "2");
  EXPECT_EQ(m["add-tables"], "outbox.events");
  EXPECT_EQ(m["add-msg-prefixes"], "outbox");
  EXPECT_EQ(m["actions"], "insert");
  EXPECT_EQ(m["include-xids"], "1");
  EXPECT_EQ(m["include-timestamp"], "1");
  EXPECT_EQ(m["include-types"], "0");
}

TEST(DeadLetterJson, EmbedsPayloadAndHeaders) {
  Event ev;
  ev.id = "01a206d6-e9d5-7ec2-94ef-64c6fa8e6933";
  ev.aggregate_type = "order";
  ev.event_type = "created \"x\"";
  ev.payload = R"({"a": [1, 2]})";
  ev.headers.push_back(Header{"s", {HeaderValue::Kind::String, "v\n", 0, 0, false}});
  ev.headers.push_back(Header{"i", {HeaderValue::Kind::Int, "", -5, 0, false}});
  ev.headers.push_back(Header{"b", {HeaderValue::Kind::Bool, "", 0, 0, true}});
  ev.lsn = 0x1000;
  ev.xid = 7;
  EXPECT_EQ(event_to_json(ev),
            R"({"id":"01a206d6-e9d5-7ec2-94ef-64c6fa8e6933","aggregate_type":"order","aggregate_id":null,)"
            R"("event_type":"created \"x\"","payload":{"a": [1, 2]},"headers":{"s":"v\n","i":-5,"b":true},)"
            R"("exchange":null,"routing_key":null,"correlation_id":null,"causation_id":null,"created_at":"",)"
            R"("lsn":"0/1000","xid":7})");
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.events_published = 5;
  m.ack_lsn = 100;
  m.server_wal_end = 150;
  m.observe_confirm_latency_us(700);     // 0.0007 s -> le 0.001
  m.observe_confirm_latency_us(20000);   // 0.02 s -> le 0.025
  m.observe_confirm_latency_us(60000000);  // +Inf
  std::string t = m.render_prometheus();
  EXPECT_NE(t.find("outbox_relay_events_published_total 5\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_replication_lag_bytes 50\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"0.0005\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"0.025\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"10\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("outbox_relay_confirm_latency_seconds_count 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("# TYPE outbox_relay_in_flight gauge"), std::string::npos) << t;
}
