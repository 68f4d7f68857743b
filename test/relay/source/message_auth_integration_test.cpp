// The message keys of wal storage (docs/design.md section 4): rotation while events flow, a
// transaction that signed with the old key and commits after the rotation, messages copied into
// another transaction, and a relay that cannot read the keys.
#include "relay_it.h"

namespace it {

namespace {

// psql in the background: a transaction held open while the test goes on.
struct HeldTransaction {
  std::string done_file;
  HeldTransaction(const std::string& conninfo, const std::string& sql, const std::string& tag) {
    done_file = env_or("OUTBOX_IT_LOG_DIR", "/tmp") + "/" + tag + ".held";
    std::remove(done_file.c_str());
    sh("(psql -X -q -v ON_ERROR_STOP=1 \"" + conninfo + "\" -c \"" + sql + "\" > " + done_file +
       ".out 2>&1; echo $? > " + done_file + ") >/dev/null 2>&1 &");
  }
  std::string result() {
    std::ifstream f(done_file);
    std::string rc;
    std::getline(f, rc);
    return rc;
  }
  ~HeldTransaction() {
    std::remove(done_file.c_str());
    std::remove((done_file + ".out").c_str());
  }
};

}  // namespace

// The reproduction: a key replaced under a streaming relay made it call every later
// wal-storage event forged and acknowledge past it. Rotated three times under load, with a
// transaction that signed with the first key committing after all three: every event arrives,
// nothing is rejected, and the old keys are retired once the relay acknowledged past them.
TEST_F(RelayIT, MessageKeyRotationUnderLoadLosesNothing) {
  RelayProcess& relay = start_relay();
  db_->exec("CREATE TABLE expected (id uuid PRIMARY KEY)");
  // Signs with the current key now, commits in about 4 s.
  HeldTransaction held(db_->conninfo(),
                       "BEGIN; SET LOCAL outbox.storage = 'wal'; INSERT INTO expected SELECT " +
                           emit_expr("held.old_key", "{}", "aggregate_id => 'held'") +
                           "; SELECT pg_sleep(4); COMMIT;",
                       base_);
  ASSERT_TRUE(eventually([&] { return db_->scalar("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND state = 'active' AND pid <> pg_backend_pid()") == "1"; }, 10s));
  int n = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 30; ++i, ++n)
      db_->exec("SET outbox.storage = 'wal'; INSERT INTO expected SELECT " +
                emit_expr("load", "{\"n\": " + std::to_string(n) + "}", "aggregate_id => '" + std::to_string(n % 7) + "'"));
    db_->exec("SELECT outbox.rotate_message_key()");
  }
  ASSERT_TRUE(eventually([&] { return !held.result().empty(); }, 20s));
  ASSERT_EQ(held.result(), "0") << "the held transaction failed";
  for (int i = 0; i < 30; ++i, ++n)
    db_->exec("SET outbox.storage = 'wal'; INSERT INTO expected SELECT " + emit_expr("after", "{}"));
  std::set<std::string> want;
  for (auto& r : db_->rows("SELECT id FROM expected")) want.insert(r[0]);
  ASSERT_EQ(want.size(), 121u);
  std::set<std::string> got;
  auto until = std::chrono::steady_clock::now() + 30s;
  while (got.size() < want.size() && std::chrono::steady_clock::now() < until)
    for (auto& m : broker_->collect(want.size() - got.size(), 1s)) got.insert(m.message_id);
  EXPECT_EQ(got, want) << relay.log();
  EXPECT_EQ(relay.log().find("not a genuine outbox event"), std::string::npos) << relay.log();
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM outbox.rejected_messages"), "0");
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM outbox.message_key_store"), "4") << "no key retired too early";

  // Retirement: three steps, the last one waiting for the relay's checkpoint past the rotation.
  bool retired = eventually([&] {
    db_->scalar("SELECT count(*) FROM outbox.retire_message_keys()");
    db_->exec(emit_sql("tick", "{}"));  // acknowledged events make the relay checkpoint
    return db_->scalar("SELECT count(*) FROM outbox.message_key_store") == "1";
  }, 30s);
  EXPECT_TRUE(retired) << db_->rows("SELECT key_id::text || ': ' || state FROM outbox.retire_message_keys()").size();
  EXPECT_EQ(relay.stop(), 0);
}

// A role with REPLICATION can read a genuine signed message from a slot of its own and write it
// again with pg_logical_emit_message: the copy is bound to another transaction and does not
// verify. It is recorded for operators (position and reason, no content), and never published.
TEST_F(RelayIT, GenuineMessageCopiedIntoAnotherTransactionIsNotPublished) {
  std::string peek = slot_ + "_peek";
  db_->exec("SELECT pg_create_logical_replication_slot('" + peek + "', 'test_decoding')");
  std::string id = db_->scalar("SET outbox.storage = 'wal'; " + emit_sql("payment.approved", "{\"amount\": 1000}"));
  std::string line = db_->scalar("SELECT data FROM pg_logical_slot_get_changes('" + peek +
                                 "', NULL, NULL) WHERE data LIKE 'message:%prefix: outbox%'");
  db_->exec("SELECT pg_drop_replication_slot('" + peek + "')");
  std::string content = line.substr(line.find("content:") + 8);
  ASSERT_EQ(content.rfind("{\"mac\":", 0), 0u) << line;
  RelayProcess& relay = start_relay();
  // the original is not in this slot (it committed before the slot existed): only the copy is
  std::string role = make_role(base_ + "_r");
  std::string file = env_or("OUTBOX_IT_LOG_DIR", "/tmp") + "/" + base_ + ".copy.sql";
  {
    std::ofstream f(file);
    f << "SELECT pg_logical_emit_message(true, 'outbox', $copy$" << content << "$copy$);\n";
  }
  std::string out;
  int rc = sh("psql -X -q -v ON_ERROR_STOP=1 \"" + db_->conninfo() + " user=" + role + "\" -f " + file + " 2>&1", &out);
  std::remove(file.c_str());
  ASSERT_EQ(rc, 0) << out;
  db_->exec(emit_sql("after.copy", "{}"));
  auto msgs = broker_->collect(1, 15s);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, "after.copy");
  EXPECT_TRUE(broker_->collect(1, 500ms).empty());
  EXPECT_NE(id, msgs[0].message_id);
  ASSERT_TRUE(eventually([&] { return db_->scalar("SELECT count(*) FROM outbox.rejected_messages") == "1"; }, 10s))
      << relay.log();
  EXPECT_NE(db_->scalar("SELECT reason FROM outbox.rejected_messages").find("another transaction"), std::string::npos);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM outbox.dead_letters"), "0");
  EXPECT_EQ(relay.stop(), 0);
}

// A relay that cannot read the keys would skip every wal-storage event and acknowledge past it:
// it does not stream (exit 2, naming the fix), and creates no slot.
TEST_F(RelayIT, RelayThatCannotReadTheKeysDoesNotStream) {
  std::string role = make_role(base_ + "_k");
  db_->exec("ALTER ROLE " + role + " REPLICATION");
  db_->exec("SELECT outbox.grant_relay('" + role + "')");
  db_->exec("REVOKE EXECUTE ON FUNCTION outbox.message_keys() FROM " + role);
  std::vector<std::string> a = args();
  for (std::size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == "--pg") a[i + 1] += " user=" + role;
  RelayProcess r(a, log_);
  auto rc = r.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << r.log();
  EXPECT_EQ(*rc, 2) << r.log();
  EXPECT_NE(r.log().find("cannot read the message keys"), std::string::npos) << r.log();
  EXPECT_NE(r.log().find("outbox.grant_relay"), std::string::npos) << r.log();
  EXPECT_EQ(r.log().find("streaming from slot"), std::string::npos) << r.log();
}

// A rotation's notice names no aggregate, so with --shard every shard's relay gets it: two
// rotations in a row, each followed by events of every shard, reach every relay (before, only
// shard 0 saw the notice, and the others had to discover each key by a rate-limited reload).
TEST_F(RelayIT, KeyRotationReachesEveryShard) {
  if (g_plugin != "outbox_decoder") GTEST_SKIP() << "sharding is an outbox_decoder option";
  std::vector<RelayProcess*> rs = start_shards(2);
  if (HasFailure()) return;
  db_->exec("CREATE TABLE expected (id uuid PRIMARY KEY)");
  for (int round = 0; round < 2; ++round) {
    db_->exec("SELECT outbox.rotate_message_key()");
    std::string sql = "BEGIN; SET LOCAL outbox.storage = 'wal';";
    for (int e = 0; e < 10; ++e)
      sql += "INSERT INTO expected SELECT " + emit_expr("r", "{}", "aggregate_id => 'a" + std::to_string(e) + "'") + ";";
    db_->exec(sql + "COMMIT;");
  }
  std::set<std::string> want, got;
  for (auto& r : db_->rows("SELECT id FROM expected")) want.insert(r[0]);
  auto until = std::chrono::steady_clock::now() + 20s;
  while (got.size() < want.size() && std::chrono::steady_clock::now() < until)
    for (auto& m : broker_->collect(want.size() - got.size(), 1s)) got.insert(m.message_id);
  EXPECT_EQ(got, want);
  for (RelayProcess* r : rs) {
    EXPECT_NE(r->log().find("the message key was rotated"), std::string::npos) << r->log();
    EXPECT_EQ(r->log().find("not a genuine outbox event"), std::string::npos) << r->log();
  }
}

}  // namespace it
