// The relay's PostgreSQL side under faults, against the real servers of scripts/stack: a slot
// that lags the relay's own checkpoint (PostgreSQL 15 saves a slot's position only at
// checkpoints), a slot lost as in a failover, and connections that go silent (a backend
// stopped with SIGSTOP keeps its socket open and answers nothing, as a partition does).
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iterator>
#include <sstream>
#include <set>
#include <thread>

#include <libpq-fe.h>

#include "harness.h"
#include "process_pause.h"
#include "relay_it.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

// SIGCONT for a stopped backend whatever happens to the test.
struct Stopped {
  int pid;
  explicit Stopped(int p) : pid(p) { outbox::test::pause_process(pid); }
  ~Stopped() { ::kill(pid, SIGCONT); }
};

// utime + stime of a process, in clock ticks.
long cpu_ticks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// A second connection that holds a lock until released (or destroyed).
struct Locker {
  PGconn* c;
  Locker(const std::string& conninfo, const std::string& sql) : c(PQconnectdb(conninfo.c_str())) {
    PQclear(PQexec(c, sql.c_str()));
  }
  void release() {
    if (c) PQfinish(c);
    c = nullptr;
  }
  ~Locker() { release(); }
};

}  // namespace

class PgFaultsIT : public RelayIT {
 protected:
  // Waits until every event of outbox.events is visible in the relay's acked_snapshot: the
  // relay has acknowledged them and passed a fence, so a recovery will not republish them.
  bool all_known_published(std::chrono::milliseconds timeout) {
    return eventually([&] {
      return db_->scalar("SELECT count(*) FROM outbox.events e, outbox.relay_checkpoints c WHERE c.slot_name = '" +
                         slot_ + "' AND NOT coalesce(pg_visible_in_snapshot(outbox.full_xid(e.xmin), "
                                 "c.acked_snapshot), false)") == "0";
    }, timeout);
  }
  int walsender_pid() { return std::stoi(db_->scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'")); }
};

// The slot's saved position lags what the relay acknowledged (here: the checkpoint claims the
// events after the slot's position; after a real restart of PostgreSQL 15 that is what happens
// to every event acknowledged since the last server checkpoint): the relay starts at its own
// checkpoint and does not send them again. A checkpoint ahead of the server's WAL, or written on
// another cluster, is not trusted.
TEST_F(PgFaultsIT, StartsFromItsOwnCheckpointWhenTheSlotLags) {
  SKIP_UNLESS_MAIN_PLUGIN();
  RelayProcess& r1 = start_relay();
  db_->exec(emit_sql("before", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u);
  ASSERT_EQ(r1.stop(), 0);
  for (int i = 0; i < 5; ++i) db_->exec(emit_sql("acknowledged.elsewhere", "{}"));
  db_->exec("UPDATE outbox.relay_checkpoints SET acknowledged_lsn = pg_current_wal_lsn() WHERE slot_name = '" + slot_ + "'");
  RelayProcess& r2 = start_relay();
  db_->exec(emit_sql("after", "{}"));
  auto msgs = broker_->collect(1, 10s);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "after") << "events before the relay's checkpoint were sent again";
  EXPECT_TRUE(broker_->collect(1, 500ms).empty());
  EXPECT_NE(r2.log().find("starting at the relay's checkpoint"), std::string::npos) << r2.log();
  ASSERT_EQ(r2.stop(), 0);

  // Not trusted: ahead of the server's WAL, or from another cluster. The slot decides then.
  for (const char* bad : {"acknowledged_lsn = 'FFFF/0'", "system_identifier = 1, acknowledged_lsn = pg_current_wal_lsn()"}) {
    std::string slot_before = db_->slot_confirmed_lsn(slot_);
    db_->exec(emit_sql("published", "{}"));
    db_->exec(std::string("UPDATE outbox.relay_checkpoints SET ") + bad + " WHERE slot_name = '" + slot_ + "'");
    RelayProcess& r = start_relay();
    auto got = broker_->collect(1, 10s);
    ASSERT_EQ(got.size(), 1u) << bad << "\n" << r.log();
    EXPECT_EQ(got[0].type, "published");
    ASSERT_EQ(r.stop(), 0);
  }
}

// A failover on PostgreSQL 15 leaves the new primary without the slot, but with outbox.events
// and the relay's checkpoint. The relay creates the slot again and, before its first line,
// republishes (original ids) what the old slot had not delivered: nothing is lost, the order
// per aggregate holds, and what the broker had confirmed before is not sent again.
TEST_F(PgFaultsIT, LostSlotIsRecreatedAndWhatItMissedIsRepublished) {
  RelayProcess& r1 = start_relay();
  for (int i = 0; i < 3; ++i) db_->exec(emit_sql("delivered", "{}", "aggregate_type => 'order', aggregate_id => 'o1'"));
  ASSERT_EQ(broker_->collect(3, 10s).size(), 3u);
  ASSERT_TRUE(all_known_published(15s)) << "the relay's checkpoints never passed a fence";
  ASSERT_EQ(r1.stop(), 0);
  std::vector<std::string> missed;
  for (int i = 0; i < 4; ++i)
    missed.push_back(db_->scalar(emit_sql("missed", "{\"i\": " + std::to_string(i) + "}",
                                          "aggregate_type => 'order', aggregate_id => 'o1'")));
  db_->exec("BEGIN; SELECT " + emit_expr("rolled.back", "{}") + "; ROLLBACK;");
  db_->drop_slot(slot_);  // what a promotion does to it
  RelayProcess& r2 = start_relay();
  std::string later = db_->scalar(emit_sql("later", "{}", "aggregate_type => 'order', aggregate_id => 'o1'"));
  auto msgs = broker_->collect(5, 15s);
  ASSERT_EQ(msgs.size(), 5u) << r2.log();
  for (std::size_t i = 0; i < missed.size(); ++i) EXPECT_EQ(msgs[i].message_id, missed[i]) << "order at " << i;
  EXPECT_EQ(msgs[4].message_id, later);
  // `later` may come twice (committed while the new slot was being created: republished, and
  // decoded); nothing the broker had confirmed before the slot was lost comes again.
  for (auto& m : broker_->collect(3, 1500ms))
    EXPECT_EQ(m.message_id, later) << "an event confirmed before the failover was sent again: " << m.type;
  EXPECT_NE(r2.log().find("outbox.storage = wal"), std::string::npos) << "the wal-storage loss is not reported";
  ASSERT_TRUE(eventually([&] {
    return db_->scalar("SELECT recovery_snapshot IS NULL AND last_recovery_at IS NOT NULL FROM outbox.relay_checkpoints "
                       "WHERE slot_name = '" + slot_ + "'") == "t";
  }, 10s)) << "the recovery was not recorded as finished";
  ASSERT_EQ(r2.stop(), 0);
  // Finished: the next start republishes nothing.
  start_relay();
  EXPECT_TRUE(broker_->collect(1, 1500ms).empty());
}

// A relay killed in the middle of a recovery does it again at the next start: the lost slot's
// events arrive (twice at most), none is lost.
TEST_F(PgFaultsIT, RecoveryInterruptedByACrashIsDoneAgain) {
  SKIP_UNLESS_MAIN_PLUGIN();
  RelayProcess& r1 = start_relay();
  db_->exec(emit_sql("delivered", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u);
  ASSERT_TRUE(all_known_published(15s));
  ASSERT_EQ(r1.stop(), 0);
  std::set<std::string> missed;
  for (int i = 0; i < 3000; ++i) missed.insert(db_->scalar(emit_sql("missed", "{}")));
  db_->drop_slot(slot_);
  RelayProcess& r2 = start_relay({"--max-in-flight", "10"});
  r2.kill9();
  EXPECT_EQ(db_->scalar("SELECT recovery_snapshot IS NOT NULL FROM outbox.relay_checkpoints WHERE slot_name = '" + slot_ + "'"), "t");
  start_relay();
  std::set<std::string> got;
  auto until = std::chrono::steady_clock::now() + 40s;
  while (got.size() < missed.size() && std::chrono::steady_clock::now() < until)
    for (auto& m : broker_->collect(missed.size(), 1s)) got.insert(m.message_id);
  for (auto& m : early_) got.insert(m.message_id);
  std::size_t lost = 0;
  for (auto& id : missed) lost += got.count(id) ? 0 : 1;
  EXPECT_EQ(lost, 0u);
}

// The walsender goes silent (stopped, its socket open): the relay notices within
// --pg-timeout-ms (here also 3/4 of wal_sender_timeout), though nothing closes the connection,
// reconnects once the server can give the slot back, and loses nothing.
TEST_F(PgFaultsIT, SilentReplicationConnectionIsGivenUp) {
  SKIP_UNLESS_MAIN_PLUGIN();
  relays_.push_back(std::make_unique<RelayProcess>(
      with(with(args(), "--pg-timeout-ms", "3000"), "--pg", db_->conninfo() + " options='-c wal_sender_timeout=4s'"),
      log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return streaming(relay); }, 15s)) << relay.log();
  db_->exec(emit_sql("first", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u);
  auto t0 = std::chrono::steady_clock::now();
  long cpu0 = cpu_ticks(relay.pid());
  {
    Stopped walsender(walsender_pid());
    for (int i = 0; i < 5; ++i) db_->exec(emit_sql("during", "{}"));
    ASSERT_TRUE(eventually([&] { return relay.log().find("sent nothing for") != std::string::npos; }, 15s)) << relay.log();
    auto detected = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "silent replication connection noticed after " << detected << " ms (--pg-timeout-ms 3000)\n";
    EXPECT_LT(detected, 8000);
    // Waiting for the answer to its ping, the relay sleeps in poll() (it used to spin).
    EXPECT_LT(cpu_ticks(relay.pid()) - cpu0, sysconf(_SC_CLK_TCK)) << "more than 1 s of CPU while waiting";
  }
  auto msgs = broker_->collect(5, 30s);
  EXPECT_EQ(msgs.size(), 5u) << relay.log();
  EXPECT_TRUE(relay.running());
}

// The database connection gives no answer to a checkpoint write (here: a lock someone holds on
// outbox.relay_checkpoints; to the relay it looks like a silent network, which the fault suite
// makes with its TCP proxy): the loop does not wait for it, events keep flowing to the broker
// meanwhile, and the connection is given up after --pg-timeout-ms. (Stopping the backend with
// SIGSTOP is no model here: it may be stopped holding WALWriteLock, which stops every commit.)
TEST_F(PgFaultsIT, UnansweredDatabaseWriteDoesNotStopTheLoop) {
  SKIP_UNLESS_MAIN_PLUGIN();
  relays_.push_back(std::make_unique<RelayProcess>(
      with(with(args(), "--checkpoint-interval-ms", "50"), "--pg-timeout-ms", "6000"), log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return streaming(relay); }, 15s)) << relay.log();
  db_->exec(emit_sql("first", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u);
  Locker locker(db_->conninfo(), "BEGIN; LOCK TABLE outbox.relay_checkpoints IN ACCESS EXCLUSIVE MODE");
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) db_->exec(emit_sql("during", "{}"));
  auto msgs = broker_->collect(5, 4s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(msgs.size(), 5u) << "the loop waited for the database connection\n" << relay.log();
  // Delivered before the relay gave the connection up, while its write was still unanswered (a
  // bound on `took` could not fail: collect() gives up after 4 s).
  EXPECT_EQ(relay.log().find("gave no answer"), std::string::npos) << "took " << took << " ms\n" << relay.log();
  EXPECT_TRUE(eventually([&] {
    return db_->scalar("SELECT count(*) FROM pg_locks WHERE relation = 'outbox.relay_checkpoints'::regclass "
                       "AND NOT granted") != "0";
  }, 5s)) << "no checkpoint write was waiting: the test did not hold the relay's write up";
  // Given up by the relay's own deadline (the server's statement and lock timeouts come later).
  EXPECT_TRUE(eventually([&] { return relay.log().find("gave no answer") != std::string::npos; }, 15s))
      << relay.log();
  locker.release();
  db_->exec(emit_sql("after", "{}"));
  bool after = false;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (!after && std::chrono::steady_clock::now() < until)
    for (auto& m : broker_->collect(1, 1s)) after = after || m.type == "after";
  EXPECT_TRUE(after) << relay.log();
  EXPECT_TRUE(relay.running());
}

// An idle relay sleeps in poll(): between its checkpoints (every 10 s when idle) it used to spin
// at 100 % CPU once the checkpoint interval had passed without news.
TEST_F(PgFaultsIT, IdleRelaySleeps) {
  SKIP_UNLESS_MAIN_PLUGIN();
  RelayProcess& relay = start_relay();  // --checkpoint-interval-ms 1000
  db_->exec(emit_sql("one", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u);
  std::this_thread::sleep_for(1500ms);  // past the interval: no news, nothing to write
  long cpu0 = cpu_ticks(relay.pid());
  std::this_thread::sleep_for(3s);
  EXPECT_LT(cpu_ticks(relay.pid()) - cpu0, sysconf(_SC_CLK_TCK) / 2) << "more than 0.5 s of CPU in 3 idle seconds";
}
