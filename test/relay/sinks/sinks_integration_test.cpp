// The same promises on NATS JetStream and Redis Streams as on RabbitMQ, against the real servers
// of scripts/stack: commit order with rollbacks and both storage modes, a broker restart, a relay
// killed with -9 (duplicates counted: the brokers' de-duplication should leave none), a broker
// that stops answering; then one relay feeding three sinks by routing rules, with one of them
// down; TLS and --check per sink. Each test runs once (the plugin is not their subject).
#include <signal.h>

#include <iostream>

#include <map>
#include <regex>
#include <set>
#include <thread>

#include <httplib.h>

#include "sinks/nats/nats_reader.h"
#include "sinks/redis/redis_reader.h"
#include "relay_it.h"

namespace it {

namespace {

// One event as a consumer of either broker sees it.
struct Delivered {
  std::string id, type, payload, where;  // where: the NATS subject or the Redis stream
  std::map<std::string, std::string> meta;
};

}  // namespace

// The tests of this file run once, with the main plugin (their subject is the sink).
class MainPluginIT : public RelayIT {
 protected:
  void SetUp() override {
    RelayIT::SetUp();
    if (IsSkipped()) return;
    SKIP_UNLESS_MAIN_PLUGIN();
  }
};

class SinkIT : public MainPluginIT, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    MainPluginIT::SetUp();
    if (IsSkipped()) return;
    kind_ = GetParam();
    url_ = env_or(kind_ == "nats" ? "OUTBOX_NATS_URL" : "OUTBOX_REDIS_URL", "");
    ctl_ = env_or(kind_ == "nats" ? "OUTBOX_NATS_CTL" : "OUTBOX_REDIS_CTL", "");
    ASSERT_FALSE(url_.empty()) << "the stack env has no " << kind_ << " server (scripts/stack up; . .run/env)";
    stream_ = "IT_" + tok_;              // JetStream stream (no dots allowed)
    redis_stream_ = base_ + ":events";   // one Redis stream: a total order to check
  }

  void TearDown() override {
    if (!ctl_.empty()) {
      sh(ctl_ + " resume");
      sh(ctl_ + " start");
    }
    MainPluginIT::TearDown();
  }

  // A config file with the test's JetStream stream and the routes given.
  std::string config(const std::string& routes = "") {
    std::string path = "/tmp/" + base_ + ".toml";
    std::ofstream f(path);
    f << "[[jetstream.streams]]\nname = \"" << stream_ << "\"\nsubjects = [\"" << base_ << ".>\"]\n"
      << "storage = \"file\"\nduplicate_window_ms = 120000\n" << routes;
    return path;
  }

  // Arguments that send every event to this test's sink.
  std::vector<std::string> sink_args(std::vector<std::string> extra = {}) {
    // Commit order across aggregates, so that one total order can be checked.
    std::vector<std::string> a = {"--config", config(), "--default-sink", kind_, "--ordering", "commit"};
    add_sink_flags(a);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void add_sink_flags(std::vector<std::string>& a) {
    if (kind_ == "nats") a.insert(a.end(), {"--nats", url_, "--nats-subject-prefix", base_ + "."});
    else a.insert(a.end(), {"--redis", url_, "--redis-stream", redis_stream_});
  }

  std::vector<Delivered> read_nats() {
    std::vector<Delivered> out;
    for (auto& m : outbox::test::read_nats_stream(env_or("OUTBOX_NATS_URL", ""), stream_)) {
      Delivered d;
      d.id = m.headers["x-outbox-event-id"];
      d.type = m.headers["x-outbox-event-type"];
      d.payload = m.data;
      d.where = m.subject;
      d.meta = m.headers;
      out.push_back(std::move(d));
    }
    return out;
  }
  std::vector<Delivered> read_redis() {
    std::vector<Delivered> out;
    for (auto& e : outbox::test::RedisReader(env_or("OUTBOX_REDIS_URL", "")).entries(redis_stream_)) {
      Delivered d;
      d.id = e.fields["id"];
      d.type = e.fields["type"];
      d.payload = e.fields["payload"];
      d.where = redis_stream_;
      d.meta = e.fields;
      out.push_back(std::move(d));
    }
    return out;
  }
  std::vector<Delivered> read() { return kind_ == "nats" ? read_nats() : read_redis(); }
  // Waits until `n` distinct events arrived (or the timeout); returns everything read.
  std::vector<Delivered> wait_for(std::size_t n, std::chrono::milliseconds timeout) {
    std::vector<Delivered> got;
    eventually([&] {
      try {
        got = read();
      } catch (const std::exception&) {
        return false;  // a broker still starting (Redis: LOADING) is read again
      }
      std::set<std::string> ids;
      for (auto& d : got) ids.insert(d.id);
      return ids.size() >= n;
    }, timeout);
    return got;
  }

  // Every expected id arrived, in order once duplicates are dropped; returns the duplicates.
  std::size_t check_in_order(const std::vector<std::vector<std::string>>& expected, std::chrono::milliseconds timeout) {
    auto got = wait_for(expected.size(), timeout);
    std::vector<std::string> firsts;
    std::set<std::string> seen;
    for (auto& d : got)
      if (seen.insert(d.id).second) firsts.push_back(d.id);
    EXPECT_EQ(firsts.size(), expected.size()) << "every committed event arrived";
    for (std::size_t i = 0; i < std::min(firsts.size(), expected.size()); ++i) {
      EXPECT_EQ(firsts[i], expected[i][0]) << "commit order at " << i;
      if (firsts[i] != expected[i][0]) break;
    }
    return got.size() - firsts.size();
  }

  // ntx transactions of `per` events. before_first_commit: the WAL insert position just before
  // the first one's COMMIT, a bound the slot must not pass while that transaction is unconfirmed
  // (taken before the transaction, it let the relay's own checkpoints and keepalive
  // acknowledgements in between move the slot legitimately past it).
  void emit_batches(int ntx, int per, int from = 0, std::string* before_first_commit = nullptr) {
    db_->exec("CREATE TABLE IF NOT EXISTS expected (seq bigserial PRIMARY KEY, id uuid NOT NULL)");
    for (int t = from; t < from + ntx; ++t) {
      std::string sql = "BEGIN;";
      for (int e = 0; e < per; ++e)
        sql += "INSERT INTO expected (id) SELECT " +
               emit_expr("k", "{\"t\": " + std::to_string(t) + "}", "aggregate_type => 'acct', aggregate_id => 'a" +
                                                                        std::to_string(t % 7) + "'") + ";";
      if (t == from && before_first_commit) {
        db_->exec(sql);
        *before_first_commit = db_->scalar("SELECT pg_current_wal_insert_lsn()");
        db_->exec("COMMIT");
        continue;
      }
      db_->exec(sql + "COMMIT;");
    }
  }

  RelayProcess& start(std::vector<std::string> extra = {}, bool wait = true) {
    return start_relay(sink_args(std::move(extra)), wait);
  }

  std::string kind_, url_, ctl_, stream_, redis_stream_;
};

// Committed, rolled back and savepoint-rolled-back transactions in both storage modes: every
// committed event exactly once, in commit order, with its payload, type and metadata; the slot
// catches up.
TEST_P(SinkIT, ExactlyOnceInCommitOrderWithRollbacksInBothStorageModes) {
  db_->exec("CREATE TABLE expected (seq bigserial PRIMARY KEY, id uuid NOT NULL, t int)");
  RelayProcess& relay = start();
  int committed = 0;
  for (int t = 0; t < 30; ++t) {
    bool rollback = t % 7 == 3;
    std::string sql = std::string("BEGIN; SET LOCAL outbox.storage = '") + (t % 2 ? "wal" : "table") + "';";
    for (int e = 0; e < 1 + t % 3; ++e) {
      std::string emit = "INSERT INTO expected (id, t) SELECT " +
                         emit_expr("type_" + std::to_string(e), "{\"t\": " + std::to_string(t) + "}",
                                   "aggregate_type => 'agg" + std::to_string(e) + "', aggregate_id => 'id-" +
                                       std::to_string(t) + "', headers => '{\"h\": \"v\"}', correlation_id => 'c-" +
                                       std::to_string(t) + "'") +
                         ", " + std::to_string(t) + ";";
      if (t % 5 == 2 && e == 1) sql += "SAVEPOINT s; " + emit + " ROLLBACK TO SAVEPOINT s;";
      else {
        sql += emit;
        if (!rollback) ++committed;
      }
    }
    db_->exec(sql + (rollback ? "ROLLBACK;" : "COMMIT;"));
  }
  std::string end = current_lsn();
  auto expected = db_->rows("SELECT id, t FROM expected ORDER BY seq");
  ASSERT_EQ(static_cast<int>(expected.size()), committed);
  EXPECT_EQ(check_in_order(expected, 20s), 0u) << "no duplicates without a fault";
  auto got = read();
  ASSERT_EQ(got.size(), expected.size()) << relay.log();
  for (std::size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    EXPECT_EQ(nospace(got[i].payload), "{\"t\":" + expected[i][1] + "}");
    EXPECT_EQ(got[i].meta["x-outbox-aggregate-id"], "id-" + expected[i][1]);
    EXPECT_TRUE(std::regex_match(got[i].meta["x-outbox-lsn"], std::regex("[0-9A-F]+/[0-9A-F]+")));
    EXPECT_EQ(got[i].meta[kind_ == "nats" ? "x-outbox-correlation-id" : "correlation_id"], "c-" + expected[i][1]);
    if (kind_ == "nats") {
      EXPECT_EQ(got[i].meta["Nats-Msg-Id"], expected[i][0]) << "JetStream de-duplicates by the event id";
      EXPECT_EQ(got[i].meta["h"], "v");
      EXPECT_EQ(got[i].where.rfind(base_ + ".agg", 0), 0u) << got[i].where;
    } else {
      EXPECT_EQ(nospace(got[i].meta["headers"]), "{\"h\":\"v\"}");
    }
  }
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(end); }, 15s));
  EXPECT_EQ(relay.stop(), 0);
}

// Extension 0.4's fields and the CloudEvents attributes reach a consumer of the broker, in both
// storage modes: a trace id set in SQL arrives unchanged, as traceparent and as ce-traceparent,
// beside the priority, the schema version and the attributes the RabbitMQ mapping sets. NATS
// percent-encodes the ce-* values (the binding's rule), Redis fields hold them as they are.
TEST_P(SinkIT, TraceContextPriorityAndCloudEventsArrive) {
  RelayProcess& relay = start({"--cloudevents-source", "/shop-db"});
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::string row = insert_event("event_type, payload, aggregate_type, aggregate_id, traceparent, tracestate, priority, "
                                 "schema_version",
                                 "'order.placed', '{\"n\": 1}', 'acct', 'o 1', '" + tp +
                                     "', 'congo=t61rcWkgMzE, rojo=1', 7, 3");
  emit_signed(R"({"id":"01a206d6-e9d5-7ec2-94ef-000000000002","aggregate_type":"acct","aggregate_id":"o-2",)"
              R"("event_type":"order.paid","payload":{"n":2},"headers":{},"created_at":"2026-12-06T10:00:00.5+00:00",)"
              R"("traceparent":")" + tp + R"(","priority":0,"schema_version":12})");
  db_->exec(emit_sql("order.shipped", "{}", "aggregate_type => 'acct', aggregate_id => 'o-3'"));
  auto got = wait_for(3, 20s);
  ASSERT_EQ(got.size(), 3u) << relay.log();
  bool nats = kind_ == "nats";
  auto& a = got[0].meta;
  EXPECT_EQ(got[0].id, row);
  EXPECT_EQ(a["traceparent"], tp);
  EXPECT_EQ(a["tracestate"], "congo=t61rcWkgMzE, rojo=1");
  EXPECT_EQ(a["priority"], "7");
  EXPECT_EQ(a["x-outbox-schema-version"], "3");
  EXPECT_EQ(a["ce-specversion"], "1.0");
  EXPECT_EQ(a["ce-id"], row);
  EXPECT_EQ(a["ce-source"], "/shop-db");
  EXPECT_EQ(a["ce-type"], "order.placed");
  EXPECT_EQ(a["ce-subject"], nats ? "o%201" : "o 1");
  EXPECT_TRUE(std::regex_match(a["ce-time"], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"))) << a["ce-time"];
  EXPECT_EQ(a["ce-dataschema"], "/shop-db/schemas/order.placed/3");
  EXPECT_EQ(a["ce-traceparent"], tp);
  EXPECT_EQ(a["ce-tracestate"], nats ? "congo=t61rcWkgMzE,%20rojo=1" : "congo=t61rcWkgMzE, rojo=1");
  EXPECT_EQ(a["ce-datacontenttype"], "application/json");
  if (nats) EXPECT_EQ(a["Content-Type"], "application/json");
  auto& b = got[1].meta;
  EXPECT_EQ(got[1].id, "01a206d6-e9d5-7ec2-94ef-000000000002");
  EXPECT_EQ(b["traceparent"], tp);
  EXPECT_EQ(b.count("tracestate"), 0u);
  EXPECT_EQ(b["priority"], "0");
  EXPECT_EQ(b["x-outbox-schema-version"], "12");
  EXPECT_EQ(b["ce-time"], "2026-12-06T10:00:00.500000Z");
  EXPECT_EQ(b["ce-dataschema"], "/shop-db/schemas/order.paid/12");
  auto& c = got[2].meta;
  for (const char* f : {"traceparent", "tracestate", "priority", "x-outbox-schema-version", "ce-dataschema",
                        "ce-traceparent"})
    EXPECT_EQ(c.count(f), 0u) << f;
  EXPECT_EQ(c["ce-subject"], "o-3");
  EXPECT_EQ(relay.stop(), 0);
}

// The whole way from SQL to a consumer of the broker: SET LOCAL outbox.traceparent and a priority
// passed to outbox_emit, in both storage modes. Needs extension 0.4's outbox_emit.
TEST_P(SinkIT, TraceSetInSqlReachesTheConsumer) {
  if (!emit_takes_trace_context()) GTEST_SKIP() << "this extension's outbox_emit takes no traceparent (0.4 does)";
  RelayProcess& relay = start();
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  emit_with_session_trace(tp, "rojo=00f067aa0ba902b7");
  auto got = wait_for(2, 20s);
  ASSERT_EQ(got.size(), 2u) << relay.log();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(got[i].meta["traceparent"], tp) << i;
    EXPECT_EQ(got[i].meta["tracestate"], "rojo=00f067aa0ba902b7") << i;
    EXPECT_EQ(got[i].meta["priority"], i == 0 ? "4" : "8");
  }
}

// The broker restarts mid-stream: the relay reconnects, nothing is lost, the order holds.
TEST_P(SinkIT, BrokerRestartLosesNothing) {
  RelayProcess& relay = start();
  emit_batches(60, 10);
  ASSERT_EQ(sh(ctl_ + " stop"), 0);
  emit_batches(60, 10, 60);
  ASSERT_EQ(sh(ctl_ + " start"), 0);
  emit_batches(60, 10, 120);
  auto expected = db_->rows("SELECT id FROM expected ORDER BY seq");
  std::size_t dups = check_in_order(expected, 40s);
  std::cout << "[ figures  ] " << kind_ << " broker restart: " << expected.size() << " events, " << dups
            << " duplicates\n";
  EXPECT_NE(relay.log().find("reconnecting"), std::string::npos) << relay.log();
}

// kill -9 of the relay mid-stream: the next relay sends again what was not acknowledged, and the
// broker's de-duplication (Nats-Msg-Id within the duplicate window; the Redis script's key)
// keeps every re-sent event out of the stream.
TEST_P(SinkIT, RelayKill9LosesNothingAndTheBrokerDropsTheResends) {
  RelayProcess& r1 = start();
  int port = free_port();
  std::size_t resent = 0;  // events in the broker that the slot had not passed at the kill
  db_->exec("CREATE TABLE IF NOT EXISTS expected (seq bigserial PRIMARY KEY, id uuid NOT NULL)");
  // A kill that finds the relay caught up re-sends nothing and proves nothing: kill again, a round
  // later, until one lands mid-stream.
  RelayProcess* relay = &r1;
  for (int round = 0; round < 3 || (resent == 0 && round < 8); ++round) {
    emit_batches(80, 10, round * 80);
    if (resent == 0 && round < 7) {
      // Mid-stream: some events confirmed but not yet acknowledged to the slot.
      std::size_t want = round * 800 + 300;
      ASSERT_TRUE(eventually([&] {
        std::set<std::string> ids;
        for (auto& d : read()) ids.insert(d.id);
        return ids.size() >= want;
      }, 10s)) << relay->log();
      relay->kill9();
      // Once its walsender is gone the slot's position is final: every event the broker holds
      // past it is sent again by the next relay, so the re-sends below are known, not hoped for.
      ASSERT_TRUE(eventually([&] {
        return db_->scalar("SELECT active FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'") == "f";
      }, 10s));
      auto at_kill = lsn(db_->slot_confirmed_lsn(slot_));
      for (auto& d : read())
        if (lsn(d.meta["x-outbox-lsn"]) > at_kill) ++resent;
      relay = &start({"--http", "127.0.0.1:" + std::to_string(port)}, false);
    }
  }
  auto expected = db_->rows("SELECT id FROM expected ORDER BY seq");
  std::size_t dups = check_in_order(expected, 40s);
  // How many re-sends the broker recognised (the relay counts confirms marked duplicate; the last
  // ones may still be on their way when the stream is complete, hence eventually).
  std::string metrics, dropped = "?";
  eventually([&] {
    metrics.clear();
    sh("curl -s http://127.0.0.1:" + std::to_string(port) + "/metrics", &metrics);
    std::smatch m;
    dropped = std::regex_search(metrics, m, std::regex("outbox_relay_sink_duplicates_total\\{sink=\"" + kind_ + "\"\\} ([0-9]+)"))
                  ? m[1].str()
                  : "?";
    return dropped != "?" && std::stoull(dropped) >= resent;
  }, 10s);
  std::cout << "[ figures  ] " << kind_ << " relay kill -9: " << expected.size() << " events, " << resent
            << " in the broker past the slot at the kill, " << dropped << " re-sent and dropped by the broker, " << dups
            << " duplicates in the stream\n";
  // "0 duplicates" means something only if events were sent twice: the broker must have had
  // events past the slot (the kill landed mid-stream), and dropped at least those.
  ASSERT_GT(resent, 0u) << "the kill left nothing to re-send: the test proves nothing";
  ASSERT_NE(dropped, "?") << metrics;
  EXPECT_GE(std::stoull(dropped), resent) << "re-sent events the broker did not recognise as duplicates";
  EXPECT_EQ(dups, 0u) << "the broker's de-duplication drops every re-sent event";
}

// The broker stops answering (SIGSTOP) with events in flight, then resumes: the slot does not
// pass what was not confirmed, and everything arrives in order.
TEST_P(SinkIT, SilentBrokerHoldsTheSlotThenCatchesUp) {
  RelayProcess& relay = start();
  emit_batches(5, 2);
  auto before = db_->rows("SELECT id FROM expected ORDER BY seq");
  check_in_order(before, 15s);
  ASSERT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 15s));
  ASSERT_EQ(sh(ctl_ + " pause"), 0);
  std::string held;
  emit_batches(20, 5, 5, &held);
  // The walsender handed the held events over (else the relay had no chance to acknowledge them
  // wrongly), then the slot stays before them for the whole window, not just at its end.
  std::string end = current_lsn();
  EXPECT_TRUE(eventually([&] {
    return lsn(db_->scalar("SELECT coalesce(max(r.sent_lsn), '0/0') FROM pg_stat_replication r JOIN pg_replication_slots s "
                           "ON s.active_pid = r.pid WHERE s.slot_name = '" + slot_ + "'")) >= lsn(end);
  }, 15s)) << relay.log();
  EXPECT_TRUE(throughout([&] { return lsn(db_->slot_confirmed_lsn(slot_)) <= lsn(held); }, 3s))
      << "acknowledged past unconfirmed events";
  ASSERT_EQ(sh(ctl_ + " resume"), 0);
  auto expected = db_->rows("SELECT id FROM expected ORDER BY seq");
  check_in_order(expected, 30s);
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) > lsn(held); }, 20s)) << relay.log();
}

// A burst of big events fills the sink's unwritten bytes past its high-water mark (writable()
// false: the relay stops reading). It must read again once the sink wrote them: the NATS
// sink's descriptor is a pipe that never reports POLLOUT, which once left the relay stalled.
TEST_P(SinkIT, ABurstOfBigEventsDoesNotStallTheStream) {
  RelayProcess& relay = start();
  // A broker that stops reading for a moment (shorter than the sinks' write deadlines) lets the
  // unwritten bytes pile up.
  ASSERT_EQ(sh(ctl_ + " pause"), 0);
  std::string big = "SET outbox.max_payload_bytes = 16000000; BEGIN;";
  for (int i = 0; i < 20; ++i)
    big += "SELECT outbox_emit('big', jsonb_build_object('b', repeat('x', 900000), 'i', " + std::to_string(i) + "));";
  db_->exec(big + "COMMIT;");
  db_->exec(emit_sql("after", "{}"));
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(sh(ctl_ + " resume"), 0);
  auto got = wait_for(21, 30s);
  EXPECT_EQ(got.size(), 21u) << relay.log();
  if (!got.empty()) EXPECT_EQ(got.back().type, "after");
}

// An event the broker can never take is a dead letter naming the sink and the reason; the
// stream goes on. NATS: a subject with a space (refused before sending). Redis: its stream's key
// holds a string (WRONGTYPE, retried, then a dead letter).
TEST_P(SinkIT, WhatTheBrokerCannotTakeIsADeadLetter) {
  std::string bad = "routing_key => 'has space'";
  std::vector<std::string> extra = {"--max-attempts", "2", "--retry-base-ms", "50"};
  if (kind_ == "redis") {
    bad = "routing_key => 'bad'";
    outbox::test::RedisReader(url_).command({"SET", base_ + ":bad", "not a stream"});
    redis_stream_ = base_ + ":good";
  }
  auto a = sink_args(extra);
  if (kind_ == "redis") a = with(a, "--redis-stream", base_ + ":{routing_key}");
  RelayProcess& relay = start_relay(a);
  std::string id = db_->scalar(emit_sql("bad", "{}", bad));
  db_->exec(emit_sql("good", "{}", "routing_key => 'good'"));
  auto got = wait_for(1, 10s);
  ASSERT_EQ(got.size(), 1u) << relay.log();
  EXPECT_EQ(got[0].type, "good");
  ASSERT_TRUE(eventually([&] { return db_->scalar("SELECT count(*) FROM outbox.dead_letters") == "1"; }, 10s))
      << relay.log();
  std::string reason = db_->scalar("SELECT reason || ' ' || coalesce(broker_reply, '') FROM outbox.dead_letters");
  EXPECT_NE(reason.find(kind_ == "nats" ? "NATS" : "WRONGTYPE"), std::string::npos) << reason;
  if (kind_ == "redis")
    EXPECT_EQ(db_->scalar("SELECT reason FROM outbox.dead_letters"),
              "Redis: key \"" + base_ + ":bad\" is not a stream (WRONGTYPE), 2 times");
  EXPECT_EQ(db_->scalar("SELECT event_id FROM outbox.dead_letters"), id);
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 15s));
}

// rediss:// and tls:// with the stack's CA and client certificate; a CA that did not sign the
// server's certificate stops the relay at start (exit 2) with the reason.
TEST_P(SinkIT, TlsWithClientCertificates) {
  std::string tls_url = env_or(kind_ == "nats" ? "OUTBOX_NATS_TLS_URL" : "OUTBOX_REDISS_URL", "");
  ASSERT_FALSE(tls_url.empty());
  auto tls_args = [&](const std::string& ca) {
    auto a = with(sink_args(), "--" + kind_, tls_url);
    a.insert(a.end(), {"--" + kind_ + "-cacert", ca, "--" + kind_ + "-cert", env_or("OUTBOX_TLS_CLIENT_CERT", ""),
                       "--" + kind_ + "-key", env_or("OUTBOX_TLS_CLIENT_KEY", "")});
    return a;
  };
  {
    relays_.push_back(std::make_unique<RelayProcess>(args(tls_args(env_or("OUTBOX_TLS_OTHER_CA", ""))), log_));
    auto rc = relays_.back()->wait_exit(20s);
    ASSERT_TRUE(rc.has_value()) << relays_.back()->log();
    EXPECT_EQ(*rc, 2);
    EXPECT_NE(relays_.back()->log().find("certificate"), std::string::npos) << relays_.back()->log();
  }
  // The TLS servers are other processes with stores of their own: read there.
  relays_.push_back(std::make_unique<RelayProcess>(args(tls_args(env_or("OUTBOX_TLS_CA", ""))), log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return streaming(relay) || !relay.running(); }, 15s) && relay.running()) << relay.log();
  db_->exec(emit_sql("over_tls", "{}"));
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 15s))
      << "the event was confirmed over TLS: " << relay.log();
  EXPECT_EQ(relay.stop(), 0);
  EXPECT_EQ(relay.log().find("dead letter"), std::string::npos) << relay.log();
}

// --check connects to the sink and passes; with the broker down it fails naming the sink.
TEST_P(SinkIT, CheckCoversTheSink) {
  auto a = sink_args({"--check"});
  {
    RelayProcess check(args(a), log_);
    auto rc = check.wait_exit(20s);
    ASSERT_TRUE(rc.has_value());
    EXPECT_EQ(*rc, 0) << check.log();
  }
  ASSERT_EQ(sh(ctl_ + " stop"), 0);
  RelayProcess check(args(a), log_);
  auto rc = check.wait_exit(30s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 2) << check.log();
  EXPECT_NE(check.log().find(std::string("check failed: ") + (kind_ == "nats" ? "NATS" : "Redis")), std::string::npos)
      << check.log();
}

INSTANTIATE_TEST_SUITE_P(Sinks, SinkIT, ::testing::Values("nats", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// One relay, three sinks: "n.*" events to NATS, aggregate type "Ledger" to Redis, the rest to
// RabbitMQ. Each gets its own, in order. With Redis stopped, RabbitMQ and NATS go on while the
// slot stays before the first Redis event; when Redis is back its events arrive and the slot
// catches up.
TEST_F(RelayIT, RoutesEventsToSeveralSinksAndADownSinkHoldsBackOnlyItsOwn) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string nats = env_or("OUTBOX_NATS_URL", ""), redis = env_or("OUTBOX_REDIS_URL", ""),
              redis_ctl = env_or("OUTBOX_REDIS_CTL", "");
  ASSERT_FALSE(nats.empty() || redis.empty());
  struct Restart {
    std::string ctl;
    ~Restart() { sh(ctl + " start"); }
  } restart{redis_ctl};
  std::string stream = "IT_" + tok_, rstream = base_ + ":ledger";
  std::string cfg = "/tmp/" + base_ + ".toml";
  std::ofstream(cfg) << "[[jetstream.streams]]\nname = \"" << stream << "\"\nsubjects = [\"" << base_ << ".>\"]\n"
                     << "[[routes]]\nmatch = \"n.*\"\nsink = \"nats\"\n"
                     << "[[routes]]\naggregate_type = \"Ledger\"\nsink = \"redis\"\n";
  RelayProcess& relay = start_relay({"--config", cfg, "--nats", nats, "--nats-subject-prefix", base_ + ".", "--redis",
                                     redis, "--redis-stream", rstream});
  db_->exec("CREATE TABLE expected (seq bigserial PRIMARY KEY, id uuid NOT NULL, sink text)");
  // before_commit: the WAL insert position just before COMMIT (a bound for the slot).
  auto emit = [&](int t, std::string* before_commit = nullptr) {
    std::string sql = "BEGIN;";
    sql += "INSERT INTO expected (id, sink) SELECT " + emit_expr("r.x", "{}") + ", 'rabbitmq';";
    sql += "INSERT INTO expected (id, sink) SELECT " + emit_expr("n.x", "{}") + ", 'nats';";
    sql += "INSERT INTO expected (id, sink) SELECT " +
           emit_expr("entry", "{}", "aggregate_type => 'Ledger', aggregate_id => 'L" + std::to_string(t % 3) + "'") +
           ", 'redis';";
    db_->exec(sql);
    if (before_commit) *before_commit = db_->scalar("SELECT pg_current_wal_insert_lsn()");
    db_->exec("COMMIT");
  };
  auto ids = [&](const std::string& sink) {
    std::vector<std::string> out;
    for (auto& r : db_->rows("SELECT id FROM expected WHERE sink = '" + sink + "' ORDER BY seq")) out.push_back(r[0]);
    return out;
  };
  auto nats_ids = [&] {
    std::vector<std::string> out;
    for (auto& m : outbox::test::read_nats_stream(nats, stream)) out.push_back(m.headers["x-outbox-event-id"]);
    return out;
  };
  auto redis_ids = [&] {
    std::vector<std::string> out;
    try {
      for (auto& e : outbox::test::RedisReader(redis).entries(rstream)) out.push_back(e.fields["id"]);
    } catch (const std::exception&) {
      out.push_back("(Redis not ready)");  // still loading after its restart: read again
    }
    return out;
  };
  std::vector<std::string> rabbit;
  auto rabbit_ids = [&](std::size_t n, std::chrono::milliseconds t) {
    for (auto& m : broker_->collect(n - std::min(n, rabbit.size()), t)) rabbit.push_back(m.message_id);
    return rabbit;
  };
  for (int t = 0; t < 5; ++t) emit(t);
  EXPECT_EQ(rabbit_ids(5, 10s), ids("rabbitmq"));
  EXPECT_TRUE(eventually([&] { return nats_ids() == ids("nats"); }, 10s));
  EXPECT_TRUE(eventually([&] { return redis_ids() == ids("redis"); }, 10s));
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 15s));

  ASSERT_EQ(sh(redis_ctl + " stop"), 0);
  std::string held;
  for (int t = 5; t < 15; ++t) emit(t, t == 5 ? &held : nullptr);
  EXPECT_EQ(rabbit_ids(15, 15s), ids("rabbitmq")) << "RabbitMQ goes on while Redis is down: " << relay.log();
  EXPECT_TRUE(eventually([&] { return nats_ids() == ids("nats"); }, 15s)) << "NATS goes on too";
  EXPECT_TRUE(throughout([&] { return lsn(db_->slot_confirmed_lsn(slot_)) <= lsn(held); }, 1500ms))
      << "the slot waits for the Redis events";
  EXPECT_NE(relay.log().find("Redis: "), std::string::npos) << relay.log();

  ASSERT_EQ(sh(redis_ctl + " start"), 0);
  EXPECT_TRUE(eventually([&] { return redis_ids() == ids("redis"); }, 30s)) << relay.log();
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 20s));
  EXPECT_TRUE(broker_->collect(1, 300ms).empty()) << "nothing sent twice to RabbitMQ";
  EXPECT_EQ(relay.stop(), 0);
}

// Two sinks: aggregate type "Ledger" to the stack's Redis (paused by the test), the rest to
// RabbitMQ. The server is resumed whatever happens to the test.
class LedgerToRedisIT : public MainPluginIT {
 protected:
  void SetUp() override {
    MainPluginIT::SetUp();
    if (IsSkipped()) return;
    redis_ = env_or("OUTBOX_REDIS_URL", "");
    ctl_ = env_or("OUTBOX_REDIS_CTL", "");
    ASSERT_FALSE(redis_.empty() || ctl_.empty()) << "the stack env has no Redis (scripts/stack up; . .run/env)";
    stream_ = base_ + ":ledger";
    cfg_ = "/tmp/" + base_ + ".toml";
    std::ofstream(cfg_) << "[[routes]]\naggregate_type = \"Ledger\"\nsink = \"redis\"\n";
  }
  void TearDown() override {
    if (!ctl_.empty()) sh(ctl_ + " resume");
    MainPluginIT::TearDown();
  }
  RelayProcess& start(std::vector<std::string> extra) {
    std::vector<std::string> a = {"--config", cfg_, "--redis", redis_, "--redis-stream", stream_};
    a.insert(a.end(), extra.begin(), extra.end());
    return start_relay(a);
  }
  std::string ledger_sql(int aggregate) {
    return "SELECT " + emit_expr("entry", "{}", "aggregate_type => 'Ledger', aggregate_id => 'L" +
                                                    std::to_string(aggregate) + "'") + ";";
  }
  std::size_t redis_count() {
    try {
      return outbox::test::RedisReader(redis_).entries(stream_).size();
    } catch (const std::exception&) {
      return 0;  // still loading, or paused
    }
  }
  std::string redis_, ctl_, stream_, cfg_;
};

// A sink whose server accepts connections and then says nothing (paused: the kernel still
// completes the TCP handshake) holds each reconnect for the connect timeout. That wait is the
// reconnecting sink's alone: RabbitMQ's events go on arriving meanwhile, and the silent sink's
// events arrive once its server answers again. (Run on the loop, each reconnect stopped every
// sink for the whole connect timeout.)
TEST_F(LedgerToRedisIT, ASilentSinksReconnectsDoNotHoldTheOtherSinks) {
  RelayProcess& relay = start({"--redis-ack-timeout-ms", "800", "--amqp-connect-timeout-ms", "6000"});
  db_->exec(ledger_sql(0));
  ASSERT_TRUE(eventually([&] { return redis_count() == 1; }, 10s)) << relay.log();

  ASSERT_EQ(sh(ctl_ + " pause"), 0);
  db_->exec(ledger_sql(0));  // unanswered: the ack timeout takes the sink down, its reconnects (every 100 ms to 1 s) wait 6 s each
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::milliseconds worst{0};
  int sent = 0;
  while (std::chrono::steady_clock::now() - t0 < 7s) {
    auto e0 = std::chrono::steady_clock::now();  // commit to delivery
    db_->exec("SELECT " + emit_expr("r.x", "{}"));
    ++sent;
    auto got = broker_->collect(1, 10s);
    ASSERT_EQ(got.size(), 1u) << "RabbitMQ event " << sent << " did not arrive:\n" << relay.log();
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - e0));
    std::this_thread::sleep_for(100ms);
  }
  std::string log = relay.log();
  EXPECT_NE(log.find("ack timeout"), std::string::npos) << "the paused Redis was noticed:\n" << log;
  std::cout << "slowest of " << sent << " RabbitMQ events while Redis was paused: " << worst.count() << " ms\n";
  EXPECT_LT(worst.count(), 3000) << "a RabbitMQ event waited for Redis's reconnect (6 s):\n" << log;

  ASSERT_EQ(sh(ctl_ + " resume"), 0);
  EXPECT_TRUE(eventually([&] { return redis_count() == 2; }, 20s)) << relay.log();
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 20s));
  EXPECT_EQ(relay.stop(), 0);
}

// A broker that stops answering, before its ack timeout, fills its own window: RabbitMQ's events
// go on (a shared window held them until Redis's ack timeout).
TEST_F(LedgerToRedisIT, ASilentSinkFillsOnlyItsOwnWindow) {
  RelayProcess& relay = start({"--max-in-flight", "5", "--redis-ack-timeout-ms", "30000"});
  ASSERT_EQ(sh(ctl_ + " pause"), 0);
  std::string sql = "BEGIN;";
  for (int i = 0; i < 8; ++i) sql += ledger_sql(i);
  db_->exec(sql + "COMMIT;");
  std::this_thread::sleep_for(300ms);  // Redis's window fills (5 of the 8 go out, unanswered)
  for (int i = 0; i < 3; ++i) db_->exec("SELECT " + emit_expr("r.x", "{}"));
  EXPECT_EQ(broker_->collect(3, 5s).size(), 3u) << "RabbitMQ waited for Redis's window:\n" << relay.log();
  ASSERT_EQ(sh(ctl_ + " resume"), 0);
  EXPECT_TRUE(eventually([&] { return redis_count() == 8; }, 20s)) << relay.log();
  EXPECT_TRUE(eventually([&] { return lsn(db_->slot_confirmed_lsn(slot_)) >= lsn(current_lsn()); }, 20s));
  EXPECT_EQ(relay.stop(), 0);
}

// NATS as the default sink with a subject prefix of the test's own.
class NatsStreamIT : public MainPluginIT {
 protected:
  void SetUp() override {
    MainPluginIT::SetUp();
    if (IsSkipped()) return;
    nats_ = env_or("OUTBOX_NATS_URL", "");
    ASSERT_FALSE(nats_.empty()) << "the stack env has no NATS server (scripts/stack up; . .run/env)";
    stream_ = "IT_" + tok_;
  }
  void TearDown() override {
    try {
      if (!nats_.empty()) outbox::test::delete_nats_stream(nats_, stream_);
    } catch (...) {
    }
    MainPluginIT::TearDown();
  }
  std::vector<std::string> nats_args(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"--default-sink", "nats", "--nats", nats_, "--nats-subject-prefix", base_ + "."};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::size_t stored() {
    try {
      return outbox::test::read_nats_stream(nats_, stream_).size();
    } catch (const std::exception&) {
      return 0;  // no stream (yet)
    }
  }
  std::string nats_, stream_;
};

// No stream captures the sink's subjects: the relay started without a word and every event
// became a dead letter within seconds; --check said so at level info and passed. Both now exit
// 2 naming the prefix and the fix, before a slot exists.
TEST_F(NatsStreamIT, NoStreamForTheSubjectsStopsTheStartAndTheCheck) {
  for (bool check : {true, false}) {
    RelayProcess r(args(nats_args(check ? std::vector<std::string>{"--check"} : std::vector<std::string>{})), log_);
    auto rc = r.wait_exit(20s);
    ASSERT_TRUE(rc.has_value()) << (check ? "--check" : "the start") << " did not stop:\n" << r.log();
    EXPECT_EQ(*rc, 2) << r.log();
    EXPECT_NE(r.log().find("no JetStream stream captures the subjects of --nats-subject-prefix \"" + base_ + ".\""),
              std::string::npos) << r.log();
    EXPECT_NE(r.log().find("[[jetstream.streams]]"), std::string::npos) << r.log();
    EXPECT_EQ(db_->slot_confirmed_lsn(slot_), "") << r.log();
  }
}

// The stream deleted while the relay runs: its events wait (no attempt charged, never a dead
// letter, /readyz 503 saying why, a log line naming the subject) and go out once the stream
// exists again. Before, each became a dead letter after --max-attempts refusals.
TEST_F(NatsStreamIT, AStreamDeletedWhileRunningMakesEventsWaitUntilItIsBack) {
  outbox::test::create_nats_stream(nats_, stream_, {base_ + ".>"});
  int port = free_port();
  RelayProcess& relay = start_relay(nats_args({"--max-attempts", "2", "--retry-base-ms", "50", "--retry-max-ms", "500",
                                               "--http", "127.0.0.1:" + std::to_string(port)}));
  db_->exec(emit_sql("before", "{}"));
  ASSERT_TRUE(eventually([&] { return stored() == 1; }, 10s)) << relay.log();
  outbox::test::delete_nats_stream(nats_, stream_);
  for (int i = 0; i < 3; ++i)
    db_->exec(emit_sql("while.gone", "{}", "aggregate_type => 'acct', aggregate_id => '" + std::to_string(i) + "'"));
  ASSERT_TRUE(eventually([&] { return relay.log().find("its events wait") != std::string::npos; }, 10s)) << relay.log();
  EXPECT_NE(relay.log().find("no JetStream stream captures subject " + base_ + ".acct.while.gone any more"), std::string::npos)
      << relay.log();
  httplib::Client http("127.0.0.1", port);
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("paused: NATS: no JetStream stream captures subject"), std::string::npos) << ready->body;
  // Far more than --max-attempts refusals' worth of time (each retry 500 ms apart at most).
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM outbox.dead_letters"), "0") << relay.log();
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("outbox_relay_sink_destination_missing{sink=\"nats\"} 1"), std::string::npos);
  outbox::test::create_nats_stream(nats_, stream_, {base_ + ".>"});
  EXPECT_TRUE(eventually([&] { return stored() == 3; }, 15s)) << relay.log();
  EXPECT_TRUE(eventually([&] { return relay.log().find("resuming") != std::string::npos; }, 5s)) << relay.log();
  EXPECT_TRUE(eventually([&] { auto r = http.Get("/readyz"); return r && r->status == 200; }, 5s));
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM outbox.dead_letters"), "0") << relay.log();
  EXPECT_EQ(relay.stop(), 0);
}

}  // namespace it
