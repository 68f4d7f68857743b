// The integration tests' fixture (RelayIT): a database, slot, exchanges and queue of the test's
// own, the relay's arguments for them, and relays run as child processes that are killed when
// the test ends. Shared by integration_test.cpp and settings_integration_test.cpp.
#pragma once
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "source/message_auth.h"

namespace it {

using namespace std::chrono_literals;

inline std::string nospace(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
  return s;
}

class RelayIT : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_stack()) GTEST_SKIP() << "no stack environment (scripts/stack up; . .run/env)";
    if (!have_plugin(g_plugin)) GTEST_SKIP() << g_plugin << ".so is not installed";
    tok_ = unique_token();
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string lower;
    // Parameterized tests are named "Name/param": a database name takes letters, digits and _.
    for (char c : test)
      lower += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '_';
    base_ = "it_" + lower.substr(0, 24) + "_" + (g_plugin == "wal2json" ? "w" : "d") + "_" + tok_;
    db_ = std::make_unique<Db>(base_);
    slot_ = base_;
    exchange_ = base_ + ".ex";
    exchange2_ = base_ + ".ex2";
    queue_ = base_ + ".q";
    broker_ = std::make_unique<Broker>();
    broker_->declare_exchange(exchange_);
    broker_->declare_exchange(exchange2_);
    broker_->declare_queue(queue_);
    broker_->bind(queue_, exchange_, "#");
    broker_->bind(queue_, exchange2_, "#");
    broker_->consume(queue_);
    log_ = env_or("OUTBOX_IT_LOG_DIR", "/tmp") + "/" + base_ + ".log";
    std::remove(log_.c_str());
  }

  void TearDown() override {
    relays_.clear();  // SIGKILL whatever still runs
    for (const auto& r : roles_) {
      try {
        db_->exec("DROP OWNED BY " + r + "; DROP ROLE " + r);
      } catch (...) {
      }
    }
    if (HasFailure() && !log_.empty()) {
      std::ifstream f(log_);
      std::stringstream ss;
      ss << f.rdbuf();
      std::cerr << "---- relay log " << log_ << " ----\n" << ss.str() << "---- end of relay log ----\n";
    } else if (!log_.empty()) {
      std::remove(log_.c_str());  // kept only when the test failed
    }
    if (broker_) {
      try {
        broker_->delete_queue(queue_);
        broker_->delete_exchange(exchange_);
        broker_->delete_exchange(exchange2_);
      } catch (...) {
      }
    }
    broker_.reset();
    db_.reset();
  }

  std::vector<std::string> args(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"--pg",       db_->conninfo(), "--slot", slot_, "--create-slot", "--plugin",
                                  g_plugin,     "--exchange",    exchange_,
                                  "--reconnect-min-ms", "100", "--reconnect-max-ms", "1000", "--status-interval-ms",
                                  "1000",       "--checkpoint-interval-ms", "1000"};
    if (std::find(extra.begin(), extra.end(), "--http") == extra.end()) {
      a.push_back("--http");
      a.push_back("");
    }
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // Replaces the value of `flag` in an argument list.
  static std::vector<std::string> with(std::vector<std::string> a, const std::string& flag, const std::string& value) {
    auto it = std::find(a.begin(), a.end(), flag);
    if (it == a.end()) {
      a.push_back(flag);
      a.push_back(value);
    } else {
      *(it + 1) = value;
    }
    return a;
  }

  // The relay streams: START_REPLICATION succeeded (the slot is also active, with another
  // walsender PID, while CREATE_REPLICATION_SLOT runs).
  bool streaming(RelayProcess& r) {
    return db_->slot_active(slot_) && r.log().find("streaming from slot") != std::string::npos;
  }

  RelayProcess& start_relay(std::vector<std::string> extra = {}, bool wait_active = true) {
    relays_.push_back(std::make_unique<RelayProcess>(args(extra), log_));
    RelayProcess& r = *relays_.back();
    if (wait_active) {
      bool ok = eventually([&] { return streaming(r) || !r.running(); }, 15s);
      EXPECT_TRUE(ok && r.running()) << "relay did not start streaming";
    }
    return r;
  }

  // One relay per shard (--shard i/n, slot <slot>_i), each streaming: not just the slot active,
  // which it is from CREATE_REPLICATION_SLOT on, while events committed before the slot's
  // snapshot are never decoded by it.
  std::vector<RelayProcess*> start_shards(int n) {
    std::vector<RelayProcess*> rs;
    for (int i = 0; i < n; ++i) {
      auto a = with(with(args(), "--slot", slot_ + "_" + std::to_string(i)), "--shard",
                    std::to_string(i) + "/" + std::to_string(n));
      relays_.push_back(std::make_unique<RelayProcess>(a, log_));
      rs.push_back(relays_.back().get());
    }
    for (int i = 0; i < n; ++i) {
      std::string slot = slot_ + "_" + std::to_string(i);
      bool ok = eventually([&] {
        return db_->slot_active(slot) && rs[i]->log().find("streaming from slot \"" + slot + "\"") != std::string::npos;
      }, 15s);
      EXPECT_TRUE(ok) << rs[i]->log();
    }
    return rs;
  }

  static std::string emit_expr(const std::string& type, const std::string& payload, const std::string& named = "") {
    return "outbox_emit('" + type + "', '" + payload + "'::jsonb" + (named.empty() ? "" : ", " + named) + ")";
  }
  static std::string emit_sql(const std::string& type, const std::string& payload, const std::string& named = "") {
    return "SELECT " + emit_expr(type, payload, named);
  }

  std::string current_lsn() { return db_->scalar("SELECT pg_current_wal_lsn()"); }

  // Extension 0.4's columns of outbox.events, added to this test's database when its extension
  // has not got them yet: the tests of the fields keep working once 0.4 has them.
  void add_contract_columns() {
    db_->exec("ALTER TABLE outbox.events ADD COLUMN IF NOT EXISTS traceparent text, "
              "ADD COLUMN IF NOT EXISTS tracestate text, ADD COLUMN IF NOT EXISTS priority smallint, "
              "ADD COLUMN IF NOT EXISTS schema_version integer");
  }

  // Whether this database's outbox_emit takes 0.4's trace context and priority (the tests of what
  // it writes skip before the extension has them).
  bool emit_takes_trace_context() {
    return db_->scalar("SELECT count(*) FROM pg_proc WHERE proname = 'outbox_emit' AND pronamespace = "
                       "'public'::regnamespace AND 'traceparent' = ANY (proargnames)") != "0";
  }

  // Emits, through outbox_emit in one transaction per storage mode, an event whose trace context
  // comes from SET LOCAL outbox.traceparent/tracestate, as tracing middleware sets it, and whose
  // priority is passed: first in table storage (priority 4), then in wal storage (priority 8).
  void emit_with_session_trace(const std::string& traceparent, const std::string& tracestate) {
    for (const char* storage : {"table", "wal"})
      db_->exec(std::string("BEGIN; SET LOCAL outbox.storage = '") + storage + "'; SET LOCAL outbox.traceparent = '" +
                traceparent + "'; SET LOCAL outbox.tracestate = '" + tracestate + "'; " +
                emit_sql("traced", "{}", std::string("aggregate_id => 'a', priority => ") +
                                             (std::string(storage) == "table" ? "4" : "8")) +
                "; COMMIT;");
  }

  // A table-storage event as outbox_emit writes it: a row of outbox.events with the columns given
  // (SQL values); its id.
  std::string insert_event(const std::string& columns, const std::string& values) {
    add_contract_columns();
    return db_->scalar("INSERT INTO outbox.events (" + columns + ") VALUES (" + values + ") RETURNING id");
  }

  // A wal-storage event as outbox_emit writes it: `body` (one JSON object, the event) signed with
  // the database's current key, bound to its own transaction (common/outbox_wire.h).
  void emit_signed(const std::string& body) {
    auto key = db_->rows("SELECT k.key_id::text, encode(k.key, 'hex') FROM outbox.message_keys() k "
                         "JOIN outbox.message_key_store s USING (key_id) WHERE s.superseded_at IS NULL");
    ASSERT_EQ(key.size(), 1u);
    std::string raw;
    for (std::size_t i = 0; i + 1 < key[0][1].size(); i += 2) raw += static_cast<char>(std::stoi(key[0][1].substr(i, 2), nullptr, 16));
    db_->exec("BEGIN");
    std::string xid = db_->scalar("SELECT pg_current_xact_id()");
    std::string content = "{\"mac\":\"" + outbox::hmac_sha256_hex(raw, xid + ":" + body) + "\",\"kid\":" + key[0][0] +
                          "," + body.substr(1);
    db_->exec("SELECT pg_logical_emit_message(true, 'outbox', $body$" + content + "$body$)");
    db_->exec("COMMIT");
  }

  // A LOGIN role with no privileges, dropped (with what it owns) when the test ends.
  std::string make_role(const std::string& name) {
    db_->exec("CREATE ROLE " + name + " LOGIN");
    roles_.push_back(name);
    return name;
  }

  // Emits `ntx` transactions of `per` events (recorded in table expected), calls `disrupt` after
  // a third of them, then checks that every committed event arrived, in commit order once
  // duplicates (allowed only around the disruption) are removed.
  template <typename F>
  void emit_disrupt_and_check(int ntx, int per, F disrupt) {
    db_->exec("CREATE TABLE IF NOT EXISTS expected (seq bigserial PRIMARY KEY, id uuid NOT NULL)");
    for (int t = 0; t < ntx; ++t) {
      std::string sql = "BEGIN;";
      for (int e = 0; e < per; ++e)
        sql += "INSERT INTO expected (id) SELECT " + emit_expr("k", "{\"t\": " + std::to_string(t) + "}") + ";";
      db_->exec(sql + "COMMIT;");
      if (t == ntx / 3) disrupt();
    }
    auto expected = db_->rows("SELECT id FROM expected ORDER BY seq");
    std::vector<std::string> got;
    std::set<std::string> seen;
    for (auto& m : early_)
      if (seen.insert(m.message_id).second) got.push_back(m.message_id);
    auto until = std::chrono::steady_clock::now() + 40s;
    while (seen.size() < expected.size() && std::chrono::steady_clock::now() < until)
      for (auto& m : broker_->collect(expected.size(), 1s))
        if (seen.insert(m.message_id).second) got.push_back(m.message_id);
    if (got.size() != expected.size()) {
      std::string missing;
      for (std::size_t i = 0; i < expected.size(); ++i)
        if (!seen.count(expected[i][0])) missing += " " + std::to_string(i);
      ADD_FAILURE() << "missing (by commit position):" << missing;
    }
    ASSERT_EQ(got.size(), expected.size()) << "every committed event arrived";
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i][0]) << "order at " << i;
  }

  // A loopback TCP port nothing listens on: bound and released.
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }

  // Restores RabbitMQ's memory watermark when a test that blocked publishers ends, even on failure.
  struct BrokerAlarm {
    std::string ctl;
    ~BrokerAlarm() { sh(ctl + " set_vm_memory_high_watermark 0.4"); }
  };

  // Sets the watermark to 0 and waits until the broker reports its memory alarm (publishers are
  // blocked from then on): a fixed sleep let a test assume a block that was not there yet.
  static bool raise_memory_alarm(const std::string& ctl) {
    if (sh(ctl + " set_vm_memory_high_watermark 0") != 0) return false;
    return eventually([&] {
      std::string out;
      return sh(ctl + " eval 'rabbit_alarm:get_alarms().'", &out) == 0 && out.find("memory") != std::string::npos;
    }, std::chrono::seconds(15));
  }

  std::string tok_, base_, slot_, exchange_, exchange2_, queue_, log_;
  // Deliveries collected by a disruption before it drops the consumer's connection (the test
  // consumer acknowledges on delivery, so what it was sent but had not read would be gone).
  std::vector<Message> early_;
  std::vector<std::string> roles_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<Broker> broker_;
  std::vector<std::unique_ptr<RelayProcess>> relays_;
};

}  // namespace it
