// AmqpPublisher never blocks on a broker that reads nothing: publish() writes a message only when
// the socket's send buffer has room for all of it, and keeps the rest until there is room
// (rabbitmq-c writes with no deadline, so a message that did not fit stalled the relay's loop
// until the broker read again, forever if it never did). Against a real RabbitMQ node paused with
// SIGSTOP: node 3 of the cluster of scripts/rabbitmq-cluster (started when not up), never the
// stack's broker that the other tests use.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include "sinks/rabbitmq/connection.h"
#include "harness.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

std::map<std::string, std::string> read_env_file(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream f(path);
  std::string line;
  std::regex re("^export ([A-Z0-9_]+)='?([^']*)'?$");
  std::smatch m;
  while (std::getline(f, line))
    if (std::regex_match(line, m, re)) out[m[1]] = m[2];
  return out;
}

}  // namespace

TEST(AmqpPublisherRoom, PublishNeverBlocksOnABrokerThatReadsNothing) {
  SKIP_UNLESS_MAIN_PLUGIN();
  std::string run = env_or("OUTBOX_RUN_DIR", "");
  if (!have_stack() || run.empty()) GTEST_SKIP() << "no stack environment (scripts/stack up; . .run/env)";
  std::string cluster = std::string(OUTBOX_SOURCE_DIR) + "/scripts/rabbitmq-cluster";
  std::string out;
  // The run's one cluster: reused when up, started once, and not tried again after a failure.
  ASSERT_EQ(sh(cluster + " need 2>&1", &out), 0) << out;
  auto env = read_env_file(run + "/cluster/env");
  std::string url = env["OUTBOX_CLUSTER_NODE3_URL"];
  ASSERT_FALSE(url.empty()) << "no OUTBOX_CLUSTER_NODE3_URL in " << run << "/cluster/env";

  outbox::AmqpPublisher pub;
  pub.connect(url, 10, "it publisher room");
  ASSERT_TRUE(pub.exchange_exists("amq.topic"));  // known: publishes go out at once, no check
  std::string body(1 << 20, 'x');                 // 40 x 1 MiB: far more than the socket buffers
  outbox::AmqpMessage m;
  m.exchange = "amq.topic";
  m.routing_key = "it.publisher.room.nobody";
  m.type = "room";
  m.app_id = "it";
  m.body = &body;

  ASSERT_EQ(sh(cluster + " pause 3", &out), 0) << out;
  struct Resume {
    std::string cmd;
    ~Resume() { sh(cmd); }
  } resume{cluster + " resume 3"};
  constexpr int kMessages = 40;
  std::atomic<int> done{0};
  std::thread t([&] {
    for (int i = 0; i < kMessages; ++i) {
      pub.publish(static_cast<std::uint64_t>(i + 1), m);
      done++;
    }
  });
  bool returned = eventually([&] { return done.load() == kMessages; }, 5s);
  int done_in_time = done.load();
  if (!returned) sh(resume.cmd);  // lets the blocked write finish, so that the thread ends
  t.join();
  ASSERT_TRUE(returned) << "publish() blocked on the paused broker after " << done_in_time << " of " << kMessages
                        << " messages";
  EXPECT_TRUE(pub.pending()) << "what did not fit waits in the publisher";

  // Resumed, the broker takes everything: each message is answered (returned unroutable + ack).
  sh(resume.cmd);
  std::vector<outbox::BrokerOutcome> outcomes;
  std::size_t answered = 0;
  EXPECT_TRUE(eventually(
      [&] {
        pub.poll(outcomes);
        for (auto& o : outcomes)
          if (o.kind == outbox::BrokerOutcome::Kind::Confirmed || o.kind == outbox::BrokerOutcome::Kind::Refused)
            ++answered;
        outcomes.clear();
        return answered == kMessages || pub.broken();
      },
      30s))
      << answered << " of " << kMessages << " answered";
  EXPECT_FALSE(pub.broken()) << pub.broken_reason();
  EXPECT_FALSE(pub.pending());
}

// A batch of publishes (one turn of the relay's loop) leaves in one write instead of one per
// frame (three per message), over plain TCP and over TLS, and every message is confirmed.
namespace {

void publish_one_batch(outbox::AmqpPublisher& pub) {
  ASSERT_TRUE(pub.exchange_exists("amq.topic"));
  std::string body(300, 'x');
  outbox::AmqpMessage m;
  m.exchange = "amq.topic";
  m.routing_key = "it.publisher.batch.nobody";
  m.type = "batch";
  m.app_id = "it";
  m.message_id = "m";
  m.has_message_id = true;
  m.body = &body;
  constexpr int kMessages = 20;  // about 10 KiB: under AmqpWriteBuffer::kFlushAt and one TLS record
  std::uint64_t before = pub.writes();
  pub.batch(true);
  for (int i = 0; i < kMessages; ++i) ASSERT_FALSE(pub.publish(static_cast<std::uint64_t>(i + 1), m));
  EXPECT_EQ(pub.writes(), before) << "nothing is written while the batch is open";
  pub.batch(false);
  EXPECT_EQ(pub.writes(), before + 1) << "the batch leaves in one write";
  std::vector<outbox::BrokerOutcome> outcomes;
  std::size_t answered = 0;
  EXPECT_TRUE(eventually(
      [&] {
        pub.poll(outcomes);
        answered += outcomes.size();
        outcomes.clear();
        return answered == kMessages || pub.broken();
      },
      10s))
      << answered << " of " << kMessages << " answered";
  EXPECT_FALSE(pub.broken()) << pub.broken_reason();
}

}  // namespace

TEST(AmqpPublisherBatch, ABatchOfPublishesIsOneWrite) {
  if (!have_stack()) GTEST_SKIP() << "no stack environment (scripts/stack up; . .run/env)";
  outbox::AmqpPublisher pub;
  pub.connect(env_or("OUTBOX_AMQP_URL", ""), 10, "it publisher batch");
  publish_one_batch(pub);
}

TEST(AmqpPublisherBatch, ABatchOfPublishesIsOneWriteOverTls) {
  std::string url = env_or("OUTBOX_AMQPS_URL", "");
  if (!have_stack() || url.empty()) GTEST_SKIP() << "no stack environment (scripts/stack up; . .run/env)";
  outbox::AmqpPublisher pub;
  outbox::AmqpPublisher::Tls tls{env_or("OUTBOX_TLS_CA", ""), env_or("OUTBOX_TLS_CLIENT_CERT", ""),
                                 env_or("OUTBOX_TLS_CLIENT_KEY", "")};
  pub.connect(url, 10, "it publisher batch tls", tls);
  publish_one_batch(pub);
}
