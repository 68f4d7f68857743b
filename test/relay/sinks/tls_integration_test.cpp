// TLS on both sides, against the stack's own TLS (scripts/stack up makes the certificates in
// $OUTBOX_TLS_DIR, runs PostgreSQL with ssl=on and RabbitMQ with a TLS listener that requires a
// client certificate): the relay streams with sslmode=verify-full and amqps:// with CA, client
// certificate and key; a server certificate that does not verify (a CA that signed nothing of
// ours) stops the start with exit 2 and the fix, on each side.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <string>

#include "harness.h"
#include "relay_it.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

class TlsIT : public RelayIT {
 protected:
  void SetUp() override {
    RelayIT::SetUp();
    if (IsSkipped()) return;
    if (env_or("OUTBOX_AMQPS_URL", "").empty() || env_or("OUTBOX_TLS_CA", "").empty())
      GTEST_SKIP() << "the stack has no TLS settings (an older scripts/stack: run scripts/stack down && scripts/stack up)";
  }

  // --pg over TLS: localhost is a name the server's certificate carries.
  std::string tls_pg(const std::string& rootcert) const {
    return "host=localhost port=" + env_or("PGPORT", "5432") + " user=" + env_or("PGUSER", "postgres") +
           " dbname=" + db_->name() + " sslmode=verify-full sslrootcert=" + rootcert;
  }

  std::vector<std::string> tls_args(const std::string& pg_ca, const std::string& amqp_ca) {
    auto a = with(args(), "--pg", tls_pg(pg_ca));
    a = with(a, "--amqp", env_or("OUTBOX_AMQPS_URL", ""));
    a = with(a, "--amqp-cacert", amqp_ca);
    a = with(a, "--amqp-cert", env_or("OUTBOX_TLS_CLIENT_CERT", ""));
    return with(a, "--amqp-key", env_or("OUTBOX_TLS_CLIENT_KEY", ""));
  }
};

}  // namespace

TEST_F(TlsIT, StreamsOverTlsToBothServers) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string ca = env_or("OUTBOX_TLS_CA", "");
  relays_.push_back(std::make_unique<RelayProcess>(tls_args(ca, ca), log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return db_->slot_active(slot_) || !relay.running(); }, 15s) && relay.running())
      << relay.log();
  db_->exec(emit_sql("over.tls", "{\"n\": 1}", "aggregate_id => 'a1'"));
  auto msgs = broker_->collect(1, 10s);
  ASSERT_EQ(msgs.size(), 1u) << relay.log();
  EXPECT_EQ(msgs[0].type, "over.tls");
  // Both connections really are TLS: the walsender of the slot, and the broker's view.
  EXPECT_EQ(db_->scalar("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_replication_slots r ON r.active_pid = s.pid "
                        "WHERE r.slot_name = '" + slot_ + "'"),
            "t");
  std::string ctl = env_or("RABBITMQCTL", ""), out;
  if (!ctl.empty()) {
    ASSERT_EQ(sh(ctl + " list_connections ssl client_properties", &out), 0) << out;
    std::istringstream lines(out);
    std::string line, mine;
    while (std::getline(lines, line))
      if (line.find("slot=" + slot_) != std::string::npos) mine = line;
    EXPECT_EQ(mine.rfind("true", 0), 0u) << "the relay's AMQP connection is not TLS: " << mine;
  }
  EXPECT_NE(relay.log().find("connected to RabbitMQ at amqps://guest:***@localhost:"), std::string::npos) << relay.log();
  EXPECT_EQ(relay.stop(), 0);
}

TEST_F(TlsIT, PostgresqlCertificateFromAnotherCaStopsTheStart) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string ca = env_or("OUTBOX_TLS_CA", ""), other = env_or("OUTBOX_TLS_OTHER_CA", "");
  RelayProcess r(tls_args(other, ca), log_);
  auto rc = r.wait_exit(20s);
  ASSERT_TRUE(rc.has_value()) << "still running: " << r.log();
  EXPECT_EQ(*rc, 2) << r.log();
  EXPECT_NE(r.log().find("certificate verify failed"), std::string::npos) << r.log();
  EXPECT_NE(r.log().find("-- fix: give --pg an sslrootcert"), std::string::npos) << r.log();
  EXPECT_FALSE(db_->slot_active(slot_));
}

TEST_F(TlsIT, RabbitmqCertificateFromAnotherCaStopsTheStart) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string ca = env_or("OUTBOX_TLS_CA", ""), other = env_or("OUTBOX_TLS_OTHER_CA", "");
  RelayProcess r(tls_args(ca, other), log_);
  auto rc = r.wait_exit(20s);
  ASSERT_TRUE(rc.has_value()) << "still running: " << r.log();
  EXPECT_EQ(*rc, 2) << r.log();
  EXPECT_NE(r.log().find("does not verify"), std::string::npos) << r.log();
  EXPECT_NE(r.log().find("--amqp-cacert"), std::string::npos) << r.log();
}

// The broker's TLS listener requires a client certificate (fail_if_no_peer_cert): without
// --amqp-cert the handshake is refused by the broker, which is a setting to fix, not a network
// problem to retry.
TEST_F(TlsIT, RabbitmqRequiringAClientCertificateNamesTheFix) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string ca = env_or("OUTBOX_TLS_CA", "");
  auto a = with(with(with(args(), "--pg", tls_pg(ca)), "--amqp", env_or("OUTBOX_AMQPS_URL", "")), "--amqp-cacert", ca);
  RelayProcess r(a, log_);
  auto rc = r.wait_exit(20s);
  ASSERT_TRUE(rc.has_value()) << "still running: " << r.log();
  EXPECT_EQ(*rc, 2) << r.log();
  EXPECT_NE(r.log().find("--amqp-cert"), std::string::npos) << r.log();
}
