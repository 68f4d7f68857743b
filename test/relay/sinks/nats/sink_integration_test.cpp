// NatsSink against a real nats-server with JetStream: confirms by ticket, the message as stored
// (headers, Nats-Msg-Id), de-duplication, refusals, what publish() refuses and never sends, a
// killed or paused (SIGSTOP) server, open() errors by kind, streams created and left alone.
// OUTBOX_NATS_URL: a shared server (nats-server -js); the kill, pause and credential tests start
// their own nats-server processes. TLS: OUTBOX_NATS_TLS_URL, OUTBOX_TLS_CA (skipped when unset).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process_pause.h"
#include "sink_test_support.h"
#include "sinks/nats/nats_reader.h"
#include "sinks/nats/sink.h"

using namespace std::chrono_literals;
using outbox::BrokerOutcome;
using outbox::Event;
using outbox::NatsSink;
using outbox::SinkError;
using outbox::SinkErrorKind;
namespace t = outbox::test;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Names unique to this run and test: JetStream refuses streams whose subjects overlap.
std::string unique(const std::string& what) {
  static int n = 0;
  return what + std::to_string(::getpid()) + "x" + std::to_string(++n);
}

Event make_event(const std::string& id, const std::string& type = "order_created") {
  Event ev;
  ev.id = id;
  ev.aggregate_type = "order";
  ev.aggregate_id = "42";
  ev.event_type = type;
  ev.payload = R"({"n":1})";
  ev.lsn = 0x1A2B3C4D;
  ev.xid = 777;
  ev.commit_time = "2026-12-02 02:40:00+00";
  return ev;
}

std::string uuid_like(int i) {
  char b[64];
  std::snprintf(b, sizeof b, "01a206d6-e9d5-7ec2-94ef-%06d%06d", static_cast<int>(::getpid() % 1000000), i);
  return b;
}

// Polls the sink until `want` outcomes arrived, broken(), or the deadline.
std::vector<BrokerOutcome> collect(NatsSink& s, std::size_t want, std::chrono::milliseconds limit = 10s) {
  std::vector<BrokerOutcome> out;
  auto end = std::chrono::steady_clock::now() + limit;
  while (out.size() < want && !s.broken() && std::chrono::steady_clock::now() < end) {
    pollfd p{s.socket(), POLLIN, 0};
    ::poll(&p, 1, s.tick_ms());
    s.poll(out);
  }
  return out;
}

std::string hv(const t::NatsStoredMessage& m, const std::string& k) {
  auto it = m.headers.find(k);
  return it == m.headers.end() ? "<no header " + k + ">" : it->second;
}

using outbox::test::free_port;
using outbox::test::port_open;

// A nats-server of this test alone (killed, paused), stopped by its PID.
struct OwnServer {
  pid_t pid = -1;
  int port = 0;
  std::string dir;
  explicit OwnServer(std::vector<std::string> extra = {}, bool jetstream = true) {
    port = free_port();
    dir = "/tmp/nats-sink-test-" + std::to_string(::getpid()) + "-" + std::to_string(port);
    std::vector<std::string> args = {"nats-server", "-sd", dir, "-a", "127.0.0.1", "-p", std::to_string(port)};
    if (jetstream) args.insert(args.begin() + 1, "-js");
    for (auto& e : extra) args.push_back(e);
    pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::string log = dir + ".log";
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      ::execvp("nats-server", argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 100 && !port_open(port); ++i) std::this_thread::sleep_for(50ms);
  }
  std::string url(const std::string& auth = "") const {
    return "nats://" + auth + "127.0.0.1:" + std::to_string(port);
  }
  void signal(int sig) const {
    if (pid > 0) ::kill(pid, sig);
  }
  // SIGKILL, and gone once this returns (kill() alone does not wait).
  void kill_and_reap() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  void stop() {
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
    if (dir.empty()) return;
    std::string rm = "rm -rf '" + dir + "' '" + dir + ".log'";
    int r = std::system(rm.c_str());
    (void)r;
    dir.clear();
  }
  ~OwnServer() { stop(); }
};

NatsSink::Options options_for(const std::string& url, const std::string& prefix, const std::string& stream) {
  NatsSink::Options o;
  o.urls = {url};
  o.subject_prefix = prefix;
  o.streams = {NatsSink::Stream{stream, {prefix + ">"}, "file", 1, 120000}};
  o.connect_timeout_ms = 3000;
  o.name = "nats sink test";
  return o;
}

class NatsSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = env("OUTBOX_NATS_URL");
    if (url_.empty()) FAIL() << "OUTBOX_NATS_URL is not set: start nats-server -js and export its nats:// URL";
    stream_ = unique("T");
    prefix_ = unique("t") + ".";
  }
  void TearDown() override {
    if (!url_.empty()) {
      try {
        t::delete_nats_stream(url_, stream_);
      } catch (...) {
      }
    }
  }
  std::string url_, stream_, prefix_;
};

}  // namespace

TEST_F(NatsSinkTest, ConfirmsEveryEventByTicketAndStoresHeadersAndMsgId) {
  NatsSink s(options_for(url_, prefix_, stream_));
  s.open(false);
  ASSERT_TRUE(s.connected());
  EXPECT_NE(s.socket(), -1);
  EXPECT_STREQ(s.name(), "nats");
  const int n = 50;
  for (int i = 0; i < n; ++i) {
    Event ev = make_event(uuid_like(i));
    ev.headers.push_back({"tenant", {outbox::HeaderValue::Kind::String, "acme", 0, 0, false}});
    ev.headers.push_back({"attempt", {outbox::HeaderValue::Kind::Int, "", 3, 0, false}});
    ev.headers.push_back({"urgent", {outbox::HeaderValue::Kind::Bool, "", 0, 0, true}});
    ev.headers.push_back({"note", {outbox::HeaderValue::Kind::Null, "", 0, 0, false}});
    if (i == 0) ev.correlation_id = "corr-1";
    if (i == 1) ev.routing_key = "custom.key";
    ASSERT_EQ(s.publish(1000 + i, ev), std::nullopt);
  }
  auto out = collect(s, n);
  ASSERT_FALSE(s.broken()) << s.broken_reason();
  ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
  std::set<std::uint64_t> tickets;
  for (const auto& o : out) {
    EXPECT_EQ(o.kind, BrokerOutcome::Kind::Confirmed);
    EXPECT_FALSE(o.duplicate);
    tickets.insert(o.ticket);
  }
  ASSERT_EQ(tickets.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(*tickets.begin(), 1000u);
  EXPECT_EQ(*tickets.rbegin(), 1000u + n - 1);
  EXPECT_EQ(s.in_flight(), 0u);

  auto msgs = t::read_nats_stream(url_, stream_);
  ASSERT_EQ(msgs.size(), static_cast<std::size_t>(n));
  const auto& m0 = msgs[0];
  EXPECT_EQ(m0.subject, prefix_ + "order.order_created");
  EXPECT_EQ(m0.data, R"({"n":1})");
  EXPECT_EQ(m0.seq, 1u);
  EXPECT_EQ(hv(m0, "Nats-Msg-Id"), uuid_like(0));
  EXPECT_EQ(hv(m0, "x-outbox-event-id"), uuid_like(0));
  EXPECT_EQ(hv(m0, "x-outbox-event-type"), "order_created");
  EXPECT_EQ(hv(m0, "x-outbox-correlation-id"), "corr-1");
  EXPECT_EQ(hv(m0, "x-outbox-aggregate-type"), "order");
  EXPECT_EQ(hv(m0, "x-outbox-aggregate-id"), "42");
  EXPECT_EQ(hv(m0, "x-outbox-lsn"), "0/1A2B3C4D");
  EXPECT_EQ(hv(m0, "x-outbox-xid"), "777");
  EXPECT_EQ(hv(m0, "x-outbox-commit-time"), "2026-12-02 02:40:00+00");
  EXPECT_EQ(hv(m0, "tenant"), "acme");
  EXPECT_EQ(hv(m0, "attempt"), "3");
  EXPECT_EQ(hv(m0, "urgent"), "true");
  EXPECT_EQ(hv(m0, "note"), "");
  EXPECT_EQ(msgs[1].subject, prefix_ + "custom.key");
  EXPECT_EQ(msgs[1].headers.count("x-outbox-correlation-id"), 0u);
  EXPECT_EQ(t::count_nats_stream(url_, stream_), static_cast<std::uint64_t>(n));
}

// A loop turn's publishes are handed to the writer together at batch(false), and the acks of a
// whole batch leave one byte in the loop's pipe, not one each (it was a write and a wake-up of
// the loop per event).
TEST_F(NatsSinkTest, ABatchIsHandedOverAtItsEndAndItsAcksWakeTheLoopOnce) {
  NatsSink s(options_for(url_, prefix_, stream_));
  s.open(false);
  const int n = 200;
  s.batch(true);
  for (int i = 0; i < n; ++i) ASSERT_EQ(s.publish(i, make_event(uuid_like(i))), std::nullopt);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(t::count_nats_stream(url_, stream_), 0u) << "nothing is written inside the batch";
  EXPECT_EQ(s.in_flight(), static_cast<std::size_t>(n));
  s.batch(false);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (s.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(s.in_flight(), 0u) << "every ack arrived";
  int queued = -1;
  ASSERT_EQ(::ioctl(s.socket(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 1) << "bytes in the loop's pipe for " << n << " acks";
  auto out = collect(s, n);
  ASSERT_EQ(out.size(), static_cast<std::size_t>(n));
  for (const auto& o : out) EXPECT_EQ(o.kind, BrokerOutcome::Kind::Confirmed);
  // After a poll() the next ack writes a byte again: no answer is left without one.
  ASSERT_EQ(::ioctl(s.socket(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 0);
  ASSERT_EQ(s.publish(n, make_event(uuid_like(n))), std::nullopt);
  deadline = std::chrono::steady_clock::now() + 10s;
  while (s.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(::ioctl(s.socket(), FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 1);
  EXPECT_EQ(collect(s, 1).size(), 1u);
}

TEST_F(NatsSinkTest, RepublishOfAnEventIdWithinTheWindowIsADuplicateConfirm) {
  NatsSink s(options_for(url_, prefix_, stream_));
  s.open(false);
  Event ev = make_event(uuid_like(1));
  ASSERT_EQ(s.publish(1, ev), std::nullopt);
  auto a = collect(s, 1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_FALSE(a[0].duplicate);
  // As after a relay crash: the same event again, on a new connection, under another ticket.
  s.close();
  s.open(true);
  ASSERT_EQ(s.publish(2, ev), std::nullopt);
  auto b = collect(s, 1);
  ASSERT_EQ(b.size(), 1u) << s.broken_reason();
  EXPECT_EQ(b[0].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(b[0].ticket, 2u);
  EXPECT_TRUE(b[0].duplicate);
  EXPECT_EQ(t::count_nats_stream(url_, stream_), 1u);
}

TEST_F(NatsSinkTest, SubjectNoStreamCapturesIsRefusedAsReturned) {
  auto o = options_for(url_, prefix_, stream_);
  o.streams[0].subjects = {prefix_ + "captured.>"};
  NatsSink s(o);
  s.open(false);
  Event ev = make_event(uuid_like(2));
  ev.routing_key = "nobody.takes.this";
  ASSERT_EQ(s.publish(7, ev), std::nullopt);
  auto out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(out[0].why, outbox::Refusal::Returned);
  EXPECT_EQ(out[0].ticket, 7u);
  EXPECT_NE(out[0].reply.find(prefix_ + "nobody.takes.this"), std::string::npos) << out[0].reply;
  EXPECT_EQ(out[0].refusal, "NATS: no JetStream stream captures subject \"" + prefix_ + "nobody.takes.this\"");
  EXPECT_FALSE(s.broken());
  // The connection still works.
  ev.routing_key = "captured.x";
  ASSERT_EQ(s.publish(8, ev), std::nullopt);
  auto ok = collect(s, 1);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].kind, BrokerOutcome::Kind::Confirmed);
}

TEST_F(NatsSinkTest, AJetStreamErrorForAMessageIsRefusedAsNacked) {
  t::create_nats_stream(url_, stream_, {prefix_ + ">"}, 120000, /*max_msgs=*/1);
  NatsSink s(options_for(url_, prefix_, stream_));
  s.open(false);
  ASSERT_EQ(s.publish(1, make_event(uuid_like(1))), std::nullopt);
  ASSERT_EQ(s.publish(2, make_event(uuid_like(2))), std::nullopt);
  auto out = collect(s, 2);
  ASSERT_EQ(out.size(), 2u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(out[1].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(out[1].why, outbox::Refusal::Nacked);
  EXPECT_EQ(out[1].ticket, 2u);
  EXPECT_NE(out[1].reply.find("JetStream error"), std::string::npos) << out[1].reply;
  EXPECT_EQ(out[1].refusal.rfind("NATS: JetStream refused subject \"" + prefix_, 0), 0u) << out[1].refusal;
  EXPECT_FALSE(s.broken());
}

TEST_F(NatsSinkTest, InvalidSubjectsAndHeadersAreRefusedByPublishAndNeverSent) {
  NatsSink s(options_for(url_, prefix_, stream_));
  s.open(false);
  struct Case {
    std::string what;
    std::function<void(Event&)> edit;
    std::string expect;  // in the error text
  };
  auto hdr = [](const std::string& name, const std::string& value) {
    return outbox::Header{name, {outbox::HeaderValue::Kind::String, value, 0, 0, false}};
  };
  std::vector<Case> cases = {
      {"empty token", [](Event& e) { e.routing_key = "a..b"; }, "routing_key"},
      {"trailing dot", [](Event& e) { e.routing_key = "a."; }, "empty token"},
      {"empty routing key", [](Event& e) { e.routing_key = ""; }, "empty token"},
      {"space", [](Event& e) { e.routing_key = "a b"; }, "whitespace"},
      {"tab", [](Event& e) { e.routing_key = "a\tb"; }, "whitespace"},
      {"control", [](Event& e) { e.routing_key = std::string("a\x01") + "b"; }, "control"},
      {"wildcard *", [](Event& e) { e.routing_key = "a.*"; }, "wildcard"},
      {"wildcard >", [](Event& e) { e.routing_key = "a.>"; }, "wildcard"},
      {"default key with a space", [](Event& e) { e.event_type = "order created"; }, "aggregate_type/event_type"},
      {"over-long", [](Event& e) { e.routing_key = std::string(2000, 'a'); }, "more than"},
      {"Nats- header", [&](Event& e) { e.headers.push_back(hdr("Nats-Msg-Id", "x")); }, "Nats-"},
      {"nats- header any case", [&](Event& e) { e.headers.push_back(hdr("nAtS-Rollup", "all")); }, "Nats-"},
      {"reserved header", [&](Event& e) { e.headers.push_back(hdr("X-Outbox-Lsn", "0/0")); }, "reserved"},
      {"empty header name", [&](Event& e) { e.headers.push_back(hdr("", "v")); }, "empty"},
      {"colon in name", [&](Event& e) { e.headers.push_back(hdr("a:b", "v")); }, "a:b"},
      {"space in name", [&](Event& e) { e.headers.push_back(hdr("a b", "v")); }, "a b"},
      {"CR in value", [&](Event& e) { e.headers.push_back(hdr("k", "v\r\nNats-Rollup: all")); }, "CR or LF"},
      {"LF in correlation id", [](Event& e) { e.correlation_id = "c\nd"; }, "x-outbox-correlation-id"},
      {"too large", [](Event& e) { e.payload = std::string(2 << 20, 'x'); }, "max_payload"},
  };
  std::uint64_t ticket = 1;
  for (auto& c : cases) {
    Event ev = make_event(uuid_like(100 + static_cast<int>(ticket)));
    c.edit(ev);
    auto r = s.publish(ticket++, ev);
    ASSERT_TRUE(r.has_value()) << c.what;
    EXPECT_NE(r->find(c.expect), std::string::npos) << c.what << ": " << *r;
    EXPECT_EQ(s.in_flight(), 0u) << c.what;
  }
  // A valid one goes through, and it is the only message in the stream.
  ASSERT_EQ(s.publish(999, make_event(uuid_like(999))), std::nullopt);
  auto out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ticket, 999u);
  std::vector<BrokerOutcome> more;
  std::this_thread::sleep_for(200ms);
  s.poll(more);
  EXPECT_TRUE(more.empty());
  EXPECT_EQ(t::count_nats_stream(url_, stream_), 1u);
}

TEST_F(NatsSinkTest, StreamsAreCreatedFromOptionsAndAnExistingOneIsLeftAlone) {
  std::string existing = unique("E");
  t::create_nats_stream(url_, existing, {prefix_ + "old.>"}, 60000);
  auto o = options_for(url_, prefix_, stream_);
  o.streams[0].subjects = {prefix_ + "new.>"};
  o.streams.push_back(NatsSink::Stream{existing, {prefix_ + "old.>", prefix_ + "extra.>"}, "memory", 1, 120000});
  NatsSink s(o);
  // --check creates nothing.
  auto lines = s.check();
  std::string all;
  for (auto& l : lines) all += l + "\n";
  EXPECT_FALSE(t::nats_stream_exists(url_, stream_)) << all;
  EXPECT_NE(all.find(stream_ + " does not exist: would be created"), std::string::npos) << all;
  EXPECT_NE(all.find(existing + " exists"), std::string::npos) << all;
  EXPECT_NE(all.find("storage file (settings: memory)"), std::string::npos) << all;
  EXPECT_NE(all.find("captured only in part"), std::string::npos) << all;
  // What an ack is worth on these streams: one replica on file syncs to disk every 2 minutes.
  EXPECT_NE(all.find("NATS stream " + stream_ + ": file storage, 1 replica: a crash of nats-server loses nothing, "
                     "a crash of its machine can lose"),
            std::string::npos)
      << all;

  s.open(false);
  EXPECT_TRUE(t::nats_stream_exists(url_, stream_));
  // The existing stream kept its subjects: extra.* is not captured.
  Event ev = make_event(uuid_like(3));
  ev.routing_key = "extra.x";
  ASSERT_EQ(s.publish(1, ev), std::nullopt);
  ev.routing_key = "new.x";
  ASSERT_EQ(s.publish(2, ev), std::nullopt);
  ev.id = uuid_like(4);
  ev.routing_key = "old.x";
  ASSERT_EQ(s.publish(3, ev), std::nullopt);
  auto out = collect(s, 3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(out[1].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(out[2].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(t::count_nats_stream(url_, existing), 1u);
  s.close();
  t::delete_nats_stream(url_, existing);

  // A prefix captured by a stream as a whole.
  NatsSink whole(options_for(url_, prefix_ + "w.", stream_ + "W"));
  auto wl = whole.check();
  std::string w;
  for (auto& l : wl) w += l + "\n";
  EXPECT_NE(w.find("are captured by stream " + stream_ + "W"), std::string::npos) << w;

  auto mo = options_for(url_, prefix_ + "m.", stream_ + "M");
  mo.streams[0].storage = "memory";
  auto ml = NatsSink(mo).check();
  std::string m;
  for (auto& l : ml) m += l + "\n";
  EXPECT_NE(m.find("NATS stream " + stream_ + "M: memory storage: its confirmed events are lost when nats-server "
                   "restarts"),
            std::string::npos)
      << m;
}

TEST_F(NatsSinkTest, OpenAgainstAClosedPortIsRetryable) {
  auto o = options_for("nats://127.0.0.1:" + std::to_string(free_port()), prefix_, stream_);
  NatsSink s(o);
  {
    auto e = outbox::test::open_error(s);
    ASSERT_TRUE(e) << "open() succeeded";
    EXPECT_EQ(e->kind, SinkErrorKind::Retryable) << e->what();
  }
  EXPECT_FALSE(s.connected());
}

TEST_F(NatsSinkTest, BadUrlsAndMissingTlsFilesAreConfig) {
  for (std::string bad : {"http://127.0.0.1:4222", "nats://", "nats://127.0.0.1:99999", "127.0.0.1:4222"}) {
    NatsSink s(options_for(bad, prefix_, stream_));
    {
      auto e = outbox::test::open_error(s);
      ASSERT_TRUE(e) << bad;
      EXPECT_EQ(e->kind, SinkErrorKind::Config) << bad << ": " << e->what();
    }
  }
  for (auto edit : std::vector<std::function<void(NatsSink::Options&)>>{
           [](NatsSink::Options& o) { o.streams[0].storage = "disk"; },
           [](NatsSink::Options& o) { o.streams[0].name = "a.b"; },
           [](NatsSink::Options& o) { o.streams[0].subjects.clear(); },
           [](NatsSink::Options& o) { o.streams[0].replicas = 0; }}) {
    auto o = options_for(url_, prefix_, stream_);
    edit(o);
    NatsSink s(o);
    try {
      s.check();
      FAIL() << "check() accepted a bad stream setting";
    } catch (const SinkError& e) {
      EXPECT_EQ(e.kind, SinkErrorKind::Config) << e.what();
    }
  }
  auto o = options_for(url_, prefix_, stream_);
  o.tls.cacert = "/nonexistent/ca.pem";
  NatsSink s(o);
  {
    auto e = outbox::test::open_error(s);
    ASSERT_TRUE(e) << "open() succeeded";
    EXPECT_EQ(e->kind, SinkErrorKind::Config) << e->what();
    EXPECT_NE(std::string(e->what()).find("/nonexistent/ca.pem"), std::string::npos) << e->what();
  }
}

TEST_F(NatsSinkTest, BadCredentialsAreAuthWithThePasswordMasked) {
  OwnServer srv({"--user", "relay", "--pass", "right-secret"});
  ASSERT_TRUE(port_open(srv.port));
  NatsSink bad(options_for(srv.url("relay:wrong-secret@"), prefix_, stream_));
  {
    auto e = outbox::test::open_error(bad);
    ASSERT_TRUE(e) << "open() succeeded";
    EXPECT_EQ(e->kind, SinkErrorKind::Auth) << e->what();
    EXPECT_EQ(std::string(e->what()).find("wrong-secret"), std::string::npos) << e->what();
  }
  NatsSink good(options_for(srv.url("relay:right-secret@"), prefix_, stream_));
  good.open(false);
  EXPECT_EQ(good.node().find("right-secret"), std::string::npos) << good.node();
  ASSERT_EQ(good.publish(1, make_event(uuid_like(5))), std::nullopt);
  EXPECT_EQ(collect(good, 1).size(), 1u);
}

TEST_F(NatsSinkTest, ABadTokenIsAuthWithTheTokenMasked) {
  OwnServer srv({"--auth", "right-token"});
  NatsSink bad(options_for(srv.url("wrong-token@"), prefix_, stream_));
  {
    auto e = outbox::test::open_error(bad);
    ASSERT_TRUE(e) << "open() succeeded";
    EXPECT_EQ(e->kind, SinkErrorKind::Auth) << e->what();
    EXPECT_EQ(std::string(e->what()).find("wrong-token"), std::string::npos) << e->what();
  }
  NatsSink good(options_for(srv.url("right-token@"), prefix_, stream_));
  good.open(false);
  EXPECT_EQ(good.node().find("right-token"), std::string::npos) << good.node();
}

// The server answers a publish it denies with -ERR and no ack: that message is refused (not an
// ack timeout 30 s later, with the whole window re-sent after a reconnect).
TEST_F(NatsSinkTest, APublishTheServerDeniesIsRefusedAsNacked) {
  std::string conf = "/tmp/nats-sink-test-perm-" + std::to_string(::getpid()) + ".conf";
  FILE* f = std::fopen(conf.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fprintf(f,
               "authorization { users = [ { user: relay, password: pw, permissions: {"
               " publish: { allow: [\">\"], deny: [\"%sdenied.>\"] } } } ] }\n",
               prefix_.c_str());
  std::fclose(f);
  OwnServer srv({"-c", conf});
  auto o = options_for(srv.url("relay:pw@"), prefix_, stream_);
  NatsSink s(o);
  s.open(false);
  Event ok = make_event(uuid_like(1));
  Event denied = make_event(uuid_like(2));
  denied.routing_key = "denied.x";
  ASSERT_EQ(s.publish(1, ok), std::nullopt);
  ASSERT_EQ(s.publish(2, denied), std::nullopt);
  ok.id = uuid_like(3);
  ASSERT_EQ(s.publish(3, ok), std::nullopt);
  auto out = collect(s, 3, 5s);
  ::unlink(conf.c_str());
  ASSERT_EQ(out.size(), 3u) << s.broken_reason();
  std::map<std::uint64_t, BrokerOutcome> by;
  for (auto& x : out) by[x.ticket] = x;
  EXPECT_EQ(by[1].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(by[3].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(by[2].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(by[2].why, outbox::Refusal::Nacked);
  EXPECT_NE(by[2].reply.find("Permissions Violation"), std::string::npos) << by[2].reply;
  EXPECT_EQ(by[2].refusal.rfind("NATS: publishing to subject \"", 0), 0u) << by[2].refusal;
  EXPECT_NE(by[2].refusal.find("\" is not permitted"), std::string::npos) << by[2].refusal;
  EXPECT_FALSE(s.broken());
  EXPECT_EQ(s.in_flight(), 0u);
}

// Servers are tried in order; one that connects but has no JetStream is closed and the next is
// used. Its closing must not reach the connection that is used (the callbacks of both carried one
// id, and the closed one's made the good one broken at its first poll).
TEST_F(NatsSinkTest, AServerWithoutJetStreamTriedFirstLeavesTheNextOneUnbroken) {
  OwnServer plain({}, false);
  auto o = options_for(plain.url(), prefix_, stream_);
  o.urls = {plain.url(), url_};
  NatsSink s(o);
  s.open(false);
  std::this_thread::sleep_for(500ms);  // the closed server's callbacks have run by now
  std::vector<BrokerOutcome> none;
  s.poll(none);
  ASSERT_FALSE(s.broken()) << s.broken_reason();
  ASSERT_EQ(s.publish(1, make_event(uuid_like(1))), std::nullopt);
  auto out = collect(s, 1);
  EXPECT_FALSE(s.broken()) << s.broken_reason();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
}

TEST_F(NatsSinkTest, KilledServerIsBrokenAfterTheOutcomesReadBeforeIt) {
  OwnServer srv;
  NatsSink s(options_for(srv.url(), prefix_, stream_));
  s.open(false);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(s.publish(i + 1, make_event(uuid_like(i))), std::nullopt);
  // The acks are queued; the server dies before poll() reads them.
  for (int i = 0; i < 1000 && s.in_flight() > 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(s.in_flight(), 0u);
  srv.kill_and_reap();
  // nats.c reports the loss on a thread of its own, some time after the server is gone.
  std::vector<BrokerOutcome> out;
  auto until = std::chrono::steady_clock::now() + 10s;
  s.poll(out);
  while (!s.broken() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
    s.poll(out);
  }
  ASSERT_TRUE(s.broken());
  ASSERT_EQ(out.size(), 20u) << "answers read before the loss come first";
  for (auto& o : out) EXPECT_EQ(o.kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_NE(s.broken_reason().find("NATS connection"), std::string::npos) << s.broken_reason();
  EXPECT_THROW(s.publish(99, make_event(uuid_like(99))), SinkError);
  s.close();
  EXPECT_FALSE(s.connected());
}

TEST_F(NatsSinkTest, PausedServerNeverBlocksPublishAndTheAckTimeoutBreaks) {
  OwnServer srv;
  auto o = options_for(srv.url(), prefix_, stream_);
  o.ack_timeout_ms = 500;
  NatsSink s(o);
  s.open(false);
  ASSERT_EQ(s.publish(1, make_event(uuid_like(1))), std::nullopt);
  ASSERT_EQ(collect(s, 1).size(), 1u);
  EXPECT_LE(s.tick_ms(), 500);
  ASSERT_TRUE(outbox::test::pause_process(srv.pid)) << "nats-server did not stop";
  const int n = 2000;
  // A publish that blocked would wait for the write deadline (2 s); a busy host stalls for less.
  std::chrono::steady_clock::duration slowest{};
  for (int i = 0; i < n; ++i) {
    Event ev = make_event(uuid_like(10 + i));
    ev.payload = std::string(200, 'x');
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(s.publish(100 + i, ev), std::nullopt);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
  }
  EXPECT_LT(slowest, 500ms) << "the slowest of " << n << " publishes to a paused server took "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count() << " ms";
  auto out = collect(s, 1, 5s);
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(s.broken());
  EXPECT_NE(s.broken_reason().find("no JetStream ack"), std::string::npos) << s.broken_reason();
  auto c0 = std::chrono::steady_clock::now();
  s.close();  // with the server still paused: up to the write deadline; a hang lasts until SIGCONT
  EXPECT_LT(std::chrono::steady_clock::now() - c0, 10s);
  srv.signal(SIGCONT);
}

TEST_F(NatsSinkTest, CloseWhileAcksArriveIsSafe) {
  NatsSink s(options_for(url_, prefix_, stream_));
  for (int round = 0; round < 5; ++round) {
    s.open(round > 0);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(s.publish(i, make_event(uuid_like(round * 1000 + i))), std::nullopt);
    std::this_thread::sleep_for(std::chrono::milliseconds(round));
    s.close();
    std::vector<BrokerOutcome> out;
    EXPECT_EQ(s.socket(), -1);
    EXPECT_EQ(s.in_flight(), 0u);
  }
  s.open(true);
  ASSERT_EQ(s.publish(1, make_event(uuid_like(99999))), std::nullopt);
  auto out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u) << "no stale answer of an earlier connection";
  EXPECT_EQ(out[0].ticket, 1u);
}

TEST_F(NatsSinkTest, TlsConnectsWithTheCaAndAnUnknownCaIsTls) {
  std::string tls_url = env("OUTBOX_NATS_TLS_URL");
  if (tls_url.empty()) GTEST_SKIP() << "OUTBOX_NATS_TLS_URL is not set";
  auto o = options_for(tls_url, prefix_, stream_);
  o.tls.cacert = env("OUTBOX_TLS_CA");
  o.tls.cert = env("OUTBOX_TLS_CLIENT_CERT");
  o.tls.key = env("OUTBOX_TLS_CLIENT_KEY");
  NatsSink s(o);
  s.open(false);
  ASSERT_EQ(s.publish(1, make_event(uuid_like(7))), std::nullopt);
  auto out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
  s.close();

  // Trusting only a certificate that did not sign the server's: the verification fails.
  auto u = o;
  u.tls.cacert = o.tls.cert.empty() ? "/etc/ssl/certs/ca-certificates.crt" : o.tls.cert;
  NatsSink bad(u);
  {
    auto e = outbox::test::open_error(bad);
    ASSERT_TRUE(e) << "open() succeeded";
    EXPECT_EQ(e->kind, SinkErrorKind::Tls) << e->what();
  }
}

// 40 MiB to a paused server: far more than the socket buffers take, so nats.c's writes block;
// they block the sink's writer thread (until the write deadline shuts the socket), not publish().
TEST_F(NatsSinkTest, PublishesBeyondTheSocketBuffersToAPausedServerNeverBlock) {
  OwnServer srv;
  auto o = options_for(srv.url(), prefix_, stream_);
  o.ack_timeout_ms = 1000;
  NatsSink s(o);
  s.open(false);
  ASSERT_TRUE(outbox::test::pause_process(srv.pid)) << "nats-server did not stop";
  std::string body(512 << 10, 'x');
  std::chrono::steady_clock::duration slowest{};
  for (int i = 0; i < 80; ++i) {
    Event ev = make_event(uuid_like(i));
    ev.payload = body;
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(s.publish(i, ev), std::nullopt);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
  }
  EXPECT_LT(slowest, 500ms) << "slowest publish: "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count() << " ms";
  EXPECT_FALSE(s.writable()) << "40 MiB accepted and not written";
  auto out = collect(s, 1, 5s);
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(s.broken());
  auto c0 = std::chrono::steady_clock::now();
  s.close();  // the writer is blocked in a write: closing waits for the write deadline at most
  EXPECT_LT(std::chrono::steady_clock::now() - c0, std::chrono::milliseconds(NatsSink::kWriteDeadlineMs + 8000))
      << "a hang would last until SIGCONT";
  srv.signal(SIGCONT);
}

// Without a prefix (the relay's settings refuse one, a sink built by other code may not), an
// event's routing key must still not reach the server's API or someone's reply inbox.
TEST_F(NatsSinkTest, NoEventReachesTheServersApiOrAnInbox) {
  auto o = options_for(url_, prefix_, stream_);  // the stream takes the prefix's subjects
  o.subject_prefix.clear();
  NatsSink s(o);
  s.open(false);
  for (const char* rk : {"$JS.API.STREAM.PURGE.ORDERS", "$KV.bucket.key", "$SYS.REQ.SERVER.PING", "_INBOX.abc"}) {
    Event ev = make_event(uuid_like(1));
    ev.routing_key = rk;
    auto err = s.publish(1, ev);
    ASSERT_TRUE(err.has_value()) << rk;
    EXPECT_NE(err->find("server's API"), std::string::npos) << *err;
  }
  EXPECT_EQ(s.in_flight(), 0u);
}

// No stream captures any subject of the prefix: a mistake in the settings. At start open() and
// check() refuse it naming the prefix and the fix; once the relay has streamed (the stream was
// deleted before a reconnect) open() goes on and every publish is DestinationMissing (the
// event waits, uncharged), not Returned (charged, then a dead letter).
TEST_F(NatsSinkTest, NoStreamForThePrefixIsAConfigErrorAtStartAndWaitsAtRuntime) {
  auto o = options_for(url_, prefix_, stream_);
  o.streams.clear();
  {
    NatsSink s(o);
    try {
      s.open(false);
      FAIL() << "open(false) accepted a prefix no stream captures";
    } catch (const SinkError& e) {
      EXPECT_EQ(e.kind, SinkErrorKind::Config) << e.what();
      std::string what = e.what();
      EXPECT_NE(what.find("no JetStream stream captures the subjects of --nats-subject-prefix \"" + prefix_ + "\""),
                std::string::npos) << what;
      EXPECT_NE(what.find("[[jetstream.streams]]"), std::string::npos) << what;
      EXPECT_NE(what.find(prefix_ + ">"), std::string::npos) << what;
    }
    EXPECT_FALSE(s.connected());
    try {
      s.check();
      FAIL() << "check() accepted a prefix no stream captures";
    } catch (const SinkError& e) {
      EXPECT_EQ(e.kind, SinkErrorKind::Config) << e.what();
    }
  }
  NatsSink s(o);
  s.open(true);
  ASSERT_TRUE(s.connected());
  ASSERT_EQ(s.publish(3, make_event(uuid_like(3))), std::nullopt);
  auto out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(out[0].why, outbox::Refusal::DestinationMissing) << out[0].reply;
  EXPECT_NE(out[0].reply.find(prefix_ + "order.order_created"), std::string::npos) << out[0].reply;
  EXPECT_FALSE(s.broken());
}

// A stream deleted while the sink is connected: its subjects are DestinationMissing (the stream
// captured them at the connect); a subject no stream ever captured stays Returned; once the
// stream exists again the same event is confirmed.
TEST_F(NatsSinkTest, ADeletedStreamIsDestinationMissingUntilItExistsAgain) {
  auto o = options_for(url_, prefix_, stream_);
  o.streams[0].subjects = {prefix_ + "order.>"};
  NatsSink s(o);
  s.open(false);
  ASSERT_EQ(s.publish(1, make_event(uuid_like(1))), std::nullopt);
  auto first = collect(s, 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0].kind, BrokerOutcome::Kind::Confirmed);
  t::delete_nats_stream(url_, stream_);
  Event gone = make_event(uuid_like(2));
  Event never = make_event(uuid_like(3));
  never.routing_key = "never.captured";
  ASSERT_EQ(s.publish(2, gone), std::nullopt);
  ASSERT_EQ(s.publish(3, never), std::nullopt);
  auto out = collect(s, 2);
  ASSERT_EQ(out.size(), 2u) << s.broken_reason();
  std::map<std::uint64_t, BrokerOutcome> by;
  for (auto& x : out) by[x.ticket] = x;
  EXPECT_EQ(by[2].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(by[2].why, outbox::Refusal::DestinationMissing) << by[2].reply;
  EXPECT_NE(by[2].reply.find("any more"), std::string::npos) << by[2].reply;
  EXPECT_EQ(by[3].why, outbox::Refusal::Returned) << by[3].reply;
  t::create_nats_stream(url_, stream_, {prefix_ + "order.>"});
  ASSERT_EQ(s.publish(4, gone), std::nullopt);
  auto again = collect(s, 1);
  ASSERT_EQ(again.size(), 1u) << s.broken_reason();
  EXPECT_EQ(again[0].kind, BrokerOutcome::Kind::Confirmed);
}
