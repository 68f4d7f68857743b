// --amqp with several addresses, against the stack's RabbitMQ and loopback ports where nothing
// listens: the relay moves past a dead address to a live one, names each node in its log with
// the password masked, and while no address works /readyz says why for every node.
#include <gtest/gtest.h>

#include <httplib.h>

#include <string>

#include "harness.h"
#include "relay_it.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

// A loopback port where nothing listens (connection refused), with a password to be masked.
class AddressesIT : public RelayIT {
 protected:
  static std::string dead_url() { return "amqp://guest:Sekr3t@127.0.0.1:" + std::to_string(free_port()) + "/"; }
};

}  // namespace

TEST_F(AddressesIT, DeadBrokerAddressIsPassedForTheNextOne) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string list = dead_url() + "," + env_or("OUTBOX_AMQP_URL", "");
  RelayProcess& relay = start_relay({"--amqp", list});
  db_->exec(emit_sql("two.addresses", "{}"));
  auto msgs = broker_->collect(1, 10s);
  ASSERT_EQ(msgs.size(), 1u) << relay.log();
  std::string log = relay.log();
  EXPECT_NE(log.find("RabbitMQ node 1 of 2: cannot connect"), std::string::npos) << log;
  EXPECT_NE(log.find("trying the next one"), std::string::npos) << log;
  EXPECT_NE(log.find("connected to RabbitMQ node 2 of 2"), std::string::npos) << log;
  EXPECT_EQ(log.find("Sekr3t"), std::string::npos) << "password masked: " << log;
  EXPECT_EQ(relay.stop(), 0);
}

TEST_F(AddressesIT, NoBrokerAddressWorkingIsRetriedAndReadyzNamesEveryNode) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string a = dead_url(), b = dead_url();
  int port = free_port();
  RelayProcess& relay =
      start_relay({"--amqp", a + "," + b, "--http", "127.0.0.1:" + std::to_string(port)}, /*wait_active=*/false);
  std::string body;
  ASSERT_TRUE(eventually(
      [&] {
        httplib::Client cli("127.0.0.1", port);
        auto r = cli.Get("/readyz");
        body = r ? r->body : "";
        return r && r->status == 503 && body.find("no RabbitMQ node of 2") != std::string::npos;
      },
      10s))
      << body << relay.log();
  EXPECT_NE(body.find(a.substr(a.find('@'))), std::string::npos) << body;
  EXPECT_NE(body.find(b.substr(b.find('@'))), std::string::npos) << body;
  EXPECT_EQ(body.find("Sekr3t"), std::string::npos) << body;
  EXPECT_TRUE(relay.running()) << "connection failures are retried, not fatal";
  EXPECT_EQ(relay.stop(), 0);
}
