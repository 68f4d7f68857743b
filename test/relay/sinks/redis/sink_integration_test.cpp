// The Redis Streams sink against a real redis-server: confirms in order, the entries and their
// fields, de-duplication, refusals pinned on one event, events that can never be published, a
// server that dies or goes silent, login and TLS failures.
// Needs OUTBOX_REDIS_URL (a redis:// server this test may write to); TLS tests need
// OUTBOX_REDISS_URL, OUTBOX_TLS_CA, OUTBOX_TLS_CLIENT_CERT, OUTBOX_TLS_CLIENT_KEY (skipped without
// OUTBOX_REDISS_URL). Tests that kill or stop a server start their own redis-server (on PATH).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "process_pause.h"
#include "sink_test_support.h"
#include "sinks/redis/redis_reader.h"
#include "sinks/redis/sink.h"

using namespace outbox;
using outbox::test::RedisReader;
using Clock = std::chrono::steady_clock;

namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

std::string redis_url() {
  std::string u = env("OUTBOX_REDIS_URL");
  if (u.empty())
    ADD_FAILURE() << "OUTBOX_REDIS_URL is not set: point it at a redis-server this test may write to, e.g. "
                     "redis://127.0.0.1:16379";
  return u;
}

// A prefix no other test run uses.
std::string unique(const std::string& what) {
  static int n = 0;
  return "t" + std::to_string(getpid()) + "_" +
         std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000) + "_" +
         std::to_string(++n) + "_" + what;
}

using outbox::test::free_port;
using outbox::test::port_open;

// A redis-server of the test's own (to kill or stop), stopped by its PID.
struct OwnServer {
  pid_t pid = -1;
  int port = 0;
  std::string dir;
  explicit OwnServer(std::vector<std::string> extra = {}) {
    port = free_port();
    dir = "/tmp/redis-sink-test-" + std::to_string(getpid()) + "-" + std::to_string(port);
    std::string mk = "mkdir -p " + dir;
    if (std::system(mk.c_str()) != 0) ADD_FAILURE() << mk;
    std::vector<std::string> args{"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--dir", dir,
                                  "--save", "", "--appendonly", "no", "--logfile", dir + "/log"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid = fork();
    if (pid == 0) {
      std::vector<char*> av;
      for (auto& a : args) av.push_back(a.data());
      av.push_back(nullptr);
      execvp("redis-server", av.data());
      _exit(127);
    }
    for (int i = 0; i < 200 && !port_open(port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!port_open(port)) ADD_FAILURE() << "redis-server did not start on port " << port << " (is it on PATH?)";
  }
  std::string url(const std::string& auth = "") const {
    return "redis://" + auth + "127.0.0.1:" + std::to_string(port);
  }
  void kill_now() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~OwnServer() {
    kill_now();
    std::string rm = "rm -rf " + dir;
    (void)std::system(rm.c_str());
  }
};

Event event(const std::string& id, const std::string& aggregate_type, const std::string& payload = "{\"n\":1}") {
  Event e;
  e.id = id;
  e.aggregate_type = aggregate_type;
  e.aggregate_id = "42";
  e.event_type = "created";
  e.payload = payload;
  e.lsn = 0x16B3748;
  e.xid = 750;
  e.commit_time = "2026-11-23 05:01:53.002315+00";
  return e;
}

RedisSink::Options opts(const std::string& url, const std::string& stream) {
  RedisSink::Options o;
  o.urls = {url};
  o.stream = stream;
  o.connect_timeout_ms = 3000;
  return o;
}

// Runs the loop until `n` outcomes arrived, the sink broke, or the time is up.
std::vector<BrokerOutcome> collect(RedisSink& s, std::size_t n, int ms = 5000) {
  std::vector<BrokerOutcome> out;
  auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (out.size() < n && !s.broken() && Clock::now() < until) {
    s.send_pending();
    pollfd p{s.socket(), s.poll_events(), 0};
    ::poll(&p, 1, s.pending() ? Sink::kRecheckMs : 50);
    s.poll(out);
  }
  return out;
}

}  // namespace

TEST(RedisSink, ConfirmsInOrderAndWritesTheEntries) {
  std::string url = redis_url();
  ASSERT_FALSE(url.empty());
  std::string prefix = unique("conf");
  RedisSink s(opts(url, prefix + ":{aggregate_type}"));
  EXPECT_STREQ(s.name(), "redis");
  EXPECT_STREQ(s.display_name(), "Redis");
  s.open(false);
  ASSERT_TRUE(s.connected());
  const int n = 200;
  s.batch(true);
  for (int i = 0; i < n; ++i) {
    Event e = event(prefix + "-" + std::to_string(i), i % 2 ? "odd" : "even", "{\"i\":" + std::to_string(i) + "}");
    if (i == 3) {
      e.correlation_id = "corr-3";
      Header h;
      h.name = "tenant";
      h.value.kind = HeaderValue::Kind::String;
      h.value.s = "acme";
      e.headers.push_back(h);
    }
    ASSERT_FALSE(s.publish(100 + i, e));
  }
  s.batch(false);
  auto out = collect(s, n);
  ASSERT_EQ(out.size(), static_cast<std::size_t>(n)) << s.broken_reason();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(out[i].kind, BrokerOutcome::Kind::Confirmed) << out[i].reply;
    EXPECT_EQ(out[i].ticket, static_cast<std::uint64_t>(100 + i));
    EXPECT_FALSE(out[i].duplicate);
  }
  EXPECT_EQ(s.in_flight(), 0u);
  RedisReader r(url);
  EXPECT_EQ(r.streams(prefix + ":*"), (std::vector<std::string>{prefix + ":even", prefix + ":odd"}));
  EXPECT_EQ(r.length(prefix + ":even"), n / 2);
  auto odd = r.entries(prefix + ":odd");
  ASSERT_EQ(odd.size(), static_cast<std::size_t>(n / 2));
  const auto& e3 = odd[1];  // i = 3
  EXPECT_EQ(e3.order, (std::vector<std::string>{"id", "type", "payload", "headers", "correlation_id",
                                                "x-outbox-aggregate-type", "x-outbox-aggregate-id", "x-outbox-lsn",
                                                "x-outbox-xid", "x-outbox-commit-time"}));
  EXPECT_EQ(e3.fields.at("id"), prefix + "-3");
  EXPECT_EQ(e3.fields.at("type"), "created");
  EXPECT_EQ(e3.fields.at("payload"), "{\"i\":3}");
  EXPECT_EQ(nlohmann::json::parse(e3.fields.at("headers")), nlohmann::json({{"tenant", "acme"}}));
  EXPECT_EQ(e3.fields.at("correlation_id"), "corr-3");
  EXPECT_EQ(e3.fields.at("x-outbox-aggregate-type"), "odd");
  EXPECT_EQ(e3.fields.at("x-outbox-lsn"), "0/16B3748");
  EXPECT_EQ(e3.fields.at("x-outbox-xid"), "750");
  EXPECT_EQ(odd[0].fields.at("headers"), "{}");
  // Entries in publish order within a stream.
  for (std::size_t k = 0; k < odd.size(); ++k) EXPECT_EQ(odd[k].fields.at("id"), prefix + "-" + std::to_string(2 * k + 1));
  // The de-duplication key holds the entry id.
  EXPECT_EQ(r.command({"GET", "outbox:dedup:" + prefix + "-3"}), e3.id);
  auto ttl = std::stoll(r.command({"PTTL", "outbox:dedup:" + prefix + "-3"}));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 120000);
}

TEST(RedisSink, SameEventIdAgainIsADuplicate) {
  std::string url = redis_url();
  ASSERT_FALSE(url.empty());
  std::string prefix = unique("dup");
  RedisSink s(opts(url, prefix));
  s.open(false);
  Event e = event(prefix + "-id", "order");
  ASSERT_FALSE(s.publish(1, e));
  ASSERT_FALSE(s.publish(2, e));
  auto out = collect(s, 2);
  ASSERT_EQ(out.size(), 2u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_FALSE(out[0].duplicate);
  EXPECT_EQ(out[1].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_TRUE(out[1].duplicate);
  EXPECT_EQ(out[1].ticket, 2u);
  // Another connection (a relay restarted) sees the same key.
  RedisSink s2(opts(url, prefix));
  s2.open(true);
  ASSERT_FALSE(s2.publish(3, e));
  out = collect(s2, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].duplicate);
  RedisReader r(url);
  EXPECT_EQ(r.length(prefix), 1);
}

TEST(RedisSink, DedupOffIsAPlainXadd) {
  std::string url = redis_url();
  ASSERT_FALSE(url.empty());
  std::string prefix = unique("plain");
  auto o = opts(url, prefix);
  o.dedup_window_ms = 0;
  o.maxlen = 5;
  RedisSink s(o);
  s.open(false);
  Event e = event(prefix + "-id", "order");
  ASSERT_FALSE(s.publish(1, e));
  ASSERT_FALSE(s.publish(2, e));
  auto out = collect(s, 2);
  ASSERT_EQ(out.size(), 2u) << s.broken_reason();
  EXPECT_FALSE(out[0].duplicate);
  EXPECT_FALSE(out[1].duplicate);
  RedisReader r(url);
  EXPECT_EQ(r.length(prefix), 2);
  EXPECT_EQ(r.command({"EXISTS", "outbox:dedup:" + prefix + "-id"}), "0");
}

TEST(RedisSink, WrongTypeKeyRefusesThatEventOnly) {
  std::string url = redis_url();
  ASSERT_FALSE(url.empty());
  std::string prefix = unique("wt");
  RedisReader r(url);
  r.command({"SET", prefix + ":bad", "a string"});
  RedisSink s(opts(url, prefix + ":{aggregate_type}"));
  s.open(false);
  s.batch(true);
  ASSERT_FALSE(s.publish(1, event(prefix + "-1", "good")));
  ASSERT_FALSE(s.publish(2, event(prefix + "-2", "bad")));
  ASSERT_FALSE(s.publish(3, event(prefix + "-3", "good")));
  s.batch(false);
  auto out = collect(s, 3);
  ASSERT_EQ(out.size(), 3u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(out[1].kind, BrokerOutcome::Kind::Refused);
  EXPECT_EQ(out[1].ticket, 2u);
  EXPECT_EQ(out[1].why, Refusal::Nacked);
  EXPECT_NE(out[1].reply.find("WRONGTYPE"), std::string::npos) << out[1].reply;
  EXPECT_EQ(out[1].refusal, "Redis: key \"" + prefix + ":bad\" is not a stream (WRONGTYPE)");
  EXPECT_EQ(out[2].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_EQ(out[2].ticket, 3u);
  EXPECT_FALSE(s.broken());
  // The refused event left no de-duplication key behind: once fixed, its retry is added.
  EXPECT_EQ(r.command({"EXISTS", "outbox:dedup:" + prefix + "-2"}), "0");
  r.command({"DEL", prefix + ":bad"});
  ASSERT_FALSE(s.publish(4, event(prefix + "-2", "bad")));
  out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_FALSE(out[0].duplicate);
  EXPECT_EQ(r.length(prefix + ":bad"), 1);
  EXPECT_EQ(r.length(prefix + ":good"), 2);
}

TEST(RedisSink, NeverPublishableEventsAreRefusedBeforeSending) {
  std::string url = redis_url();
  ASSERT_FALSE(url.empty());
  std::string prefix = unique("inv");
  RedisSink s(opts(url, prefix + "{event_type}"));
  s.open(false);
  Event e = event(prefix + "-1", "order");
  Header h;
  h.name = "x-outbox-lsn";
  e.headers.push_back(h);
  auto err = s.publish(1, e);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("x-outbox-lsn"), std::string::npos) << *err;
  EXPECT_EQ(s.in_flight(), 0u);
  EXPECT_FALSE(s.pending());

  RedisSink s2(opts(url, "{event_type}"));
  s2.open(false);
  Event empty = event(prefix + "-2", "order");
  empty.event_type = "";
  err = s2.publish(2, empty);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("stream name is empty"), std::string::npos) << *err;
  EXPECT_EQ(s2.in_flight(), 0u);
  EXPECT_TRUE(collect(s2, 1, 300).empty());
  RedisReader r(url);
  EXPECT_TRUE(r.streams(prefix + "*").empty());
}

TEST(RedisSink, ScriptFlushedFallsBackToEval) {
  std::string url = redis_url();
  ASSERT_FALSE(url.empty());
  std::string prefix = unique("noscript");
  RedisSink s(opts(url, prefix));
  s.open(false);
  RedisReader r(url);
  r.command({"SCRIPT", "FLUSH"});
  s.batch(true);
  ASSERT_FALSE(s.publish(1, event(prefix + "-1", "o")));
  ASSERT_FALSE(s.publish(2, event(prefix + "-2", "o")));
  s.batch(false);
  auto out = collect(s, 2);
  ASSERT_EQ(out.size(), 2u) << s.broken_reason();
  for (auto& o : out) EXPECT_EQ(o.kind, BrokerOutcome::Kind::Confirmed) << o.reply;
  EXPECT_EQ(r.length(prefix), 2);
  // EVAL cached the script again: the next EVALSHA works.
  ASSERT_FALSE(s.publish(3, event(prefix + "-3", "o")));
  out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
}

TEST(RedisSink, CheckReportsDurabilityAndCreatesNothing) {
  OwnServer srv;
  RedisSink s(opts(srv.url(), "outbox:{aggregate_type}"));
  auto lines = s.check();
  std::string all;
  for (auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("appendonly is no"), std::string::npos) << all;
  EXPECT_NE(all.find("outbox:{aggregate_type}"), std::string::npos) << all;
  RedisReader r(srv.url());
  EXPECT_EQ(r.command({"DBSIZE"}), "0");
  EXPECT_EQ(r.command({"SCRIPT", "EXISTS", "x"}), "[0]");
}

TEST(RedisSink, ServerKilledBrokenAfterTheAnswersAlreadyRead) {
  OwnServer srv;
  RedisSink s(opts(srv.url(), "k"));
  s.open(false);
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(s.publish(i, event("a" + std::to_string(i), "o")));
  ASSERT_EQ(collect(s, 100).size(), 100u);
  // Replies to these reach our socket before the server dies; poll() has not read them yet.
  for (int i = 100; i < 150; ++i) ASSERT_FALSE(s.publish(i, event("a" + std::to_string(i), "o")));
  RedisReader r(srv.url());
  for (int k = 0; k < 100 && r.length("k") < 150; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(r.length("k"), 150);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  srv.kill_now();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::vector<BrokerOutcome> out;
  s.poll(out);
  ASSERT_EQ(out.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(out[i].ticket, static_cast<std::uint64_t>(100 + i));
    EXPECT_EQ(out[i].kind, BrokerOutcome::Kind::Confirmed);
  }
  EXPECT_TRUE(s.broken());
  EXPECT_NE(s.broken_reason().find("closed"), std::string::npos) << s.broken_reason();
  EXPECT_THROW(s.publish(200, event("b", "o")), SinkError);
}

TEST(RedisSink, StoppedServerPublishNeverBlocksAndAckTimeoutBreaks) {
  OwnServer srv;
  auto o = opts(srv.url(), "stopped");
  o.ack_timeout_ms = 500;
  RedisSink s(o);
  s.open(false);
  ASSERT_TRUE(outbox::test::pause_process(srv.pid)) << "redis-server did not stop";
  std::string payload = "{\"pad\":\"" + std::string(1000, 'x') + "\"}";
  auto t0 = Clock::now();
  for (int i = 0; i < 10000; ++i) ASSERT_FALSE(s.publish(i, event("s" + std::to_string(i), "o", payload)));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(took, 5000) << "a publish that blocked would wait for the server forever";
  EXPECT_TRUE(s.pending());  // 10 MB do not fit in the socket buffers
  EXPECT_EQ(s.poll_events() & POLLOUT, POLLOUT);
  auto out = collect(s, 1, 3000);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(s.broken());
  EXPECT_NE(s.broken_reason().find("ack timeout"), std::string::npos) << s.broken_reason();
  ::kill(srv.pid, SIGCONT);
}

TEST(RedisSink, BackpressureHintBeyondTheOutputBound) {
  OwnServer srv;
  auto o = opts(srv.url(), "bp");
  o.max_output_bytes = 1 << 20;
  RedisSink s(o);
  s.open(false);
  ASSERT_TRUE(outbox::test::pause_process(srv.pid)) << "redis-server did not stop";
  std::string payload = "{\"pad\":\"" + std::string(10000, 'x') + "\"}";
  EXPECT_TRUE(s.writable());
  for (int i = 0; i < 1000 && s.writable(); ++i) ASSERT_FALSE(s.publish(i, event("b" + std::to_string(i), "o", payload)));
  EXPECT_FALSE(s.writable());
  ASSERT_FALSE(s.publish(5000, event("more", "o", payload)));  // still taken
  ::kill(srv.pid, SIGCONT);
  auto out = collect(s, s.in_flight(), 10000);
  EXPECT_FALSE(s.broken()) << s.broken_reason();
  EXPECT_TRUE(s.writable());
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(out.back().ticket, 5000u);
}

TEST(RedisSink, ClosedPortIsRetryable) {
  RedisSink s(opts("redis://127.0.0.1:" + std::to_string(free_port()), "x"));
  {
    auto e = outbox::test::open_error(s);
    ASSERT_TRUE(e) << "connected to a closed port";
    EXPECT_EQ(e->kind, SinkErrorKind::Retryable) << e->what();
  }
  EXPECT_FALSE(s.connected());
}

TEST(RedisSink, WrongPasswordIsAuthAndMasked) {
  OwnServer srv({"--requirepass", "rightpw"});
  for (std::string auth : {":wrongpw@", "default:wrongpw@"}) {
    RedisSink s(opts(srv.url(auth), "x"));
    {
      auto e = outbox::test::open_error(s);
      ASSERT_TRUE(e) << "logged in with a wrong password";
      EXPECT_EQ(e->kind, SinkErrorKind::Auth) << e->what();
      EXPECT_EQ(std::string(e->what()).find("wrongpw"), std::string::npos) << e->what();
      EXPECT_NE(std::string(e->what()).find("WRONGPASS"), std::string::npos) << e->what();
    }
  }
  {
    RedisSink s(opts(srv.url(), "x"));  // no password at all
    {
      auto e = outbox::test::open_error(s);
      ASSERT_TRUE(e) << "used without a password";
      EXPECT_EQ(e->kind, SinkErrorKind::Auth) << e->what();
    }
  }
  RedisSink ok(opts(srv.url(":rightpw@"), "x"));
  ok.open(false);
  EXPECT_EQ(ok.node().find("rightpw"), std::string::npos);
  ASSERT_FALSE(ok.publish(1, event("p1", "o")));
  auto out = collect(ok, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
}

TEST(RedisSink, SeveralUrlsTriedInOrder) {
  OwnServer srv;
  auto o = opts("redis://127.0.0.1:" + std::to_string(free_port()), "multi");
  o.urls.push_back(srv.url());
  RedisSink s(o);
  s.open(false);
  EXPECT_EQ(s.node(), srv.url());
}

TEST(RedisSink, ReplicaReadonlyBreaksAndTheNextOpenTriesTheNextAddress) {
  OwnServer primary;
  OwnServer replica({"--replicaof", "127.0.0.1", std::to_string(primary.port)});
  auto o = opts(replica.url(), "ro");
  o.urls.push_back(primary.url());
  RedisSink s(o);
  s.open(false);
  ASSERT_EQ(s.node(), replica.url());
  ASSERT_FALSE(s.publish(1, event("ro-1", "o")));
  ASSERT_FALSE(s.publish(2, event("ro-2", "o")));
  auto out = collect(s, 1, 3000);
  EXPECT_TRUE(out.empty());  // READONLY is not a refusal of the event
  ASSERT_TRUE(s.broken());
  EXPECT_NE(s.broken_reason().find("READONLY"), std::string::npos) << s.broken_reason();
  EXPECT_EQ(s.in_flight(), 2u);
  s.close();
  s.open(true);  // the replica failed last: the primary is tried first
  EXPECT_EQ(s.node(), primary.url());
  ASSERT_FALSE(s.publish(3, event("ro-1", "o")));
  out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed);
  EXPECT_FALSE(out[0].duplicate);  // the replica wrote no de-duplication key
}

TEST(RedisSink, MaxlenTrimsThroughTheScript) {
  OwnServer srv;
  auto o = opts(srv.url(), "trim");
  o.maxlen = 10;
  RedisSink s(o);
  s.open(false);
  s.batch(true);
  for (int i = 0; i < 300; ++i) ASSERT_FALSE(s.publish(i, event("m" + std::to_string(i), "o")));
  s.batch(false);
  auto out = collect(s, 300);
  ASSERT_EQ(out.size(), 300u) << s.broken_reason();
  for (auto& x : out) EXPECT_EQ(x.kind, BrokerOutcome::Kind::Confirmed) << x.reply;
  RedisReader r(srv.url());
  auto n = r.length("trim");
  EXPECT_GE(n, 10);
  EXPECT_LT(n, 300);  // MAXLEN ~ trims whole nodes (100 entries by default)
}

TEST(RedisSink, ConfigRefusedByAclStillOpensAndSaysDurabilityIsUnchecked) {
  OwnServer srv;
  RedisReader admin(srv.url());
  admin.command({"ACL", "SETUSER", "relay", "on", ">relaypw", "~*", "+@all", "-@admin", "-config"});
  RedisSink s(opts(srv.url("relay:relaypw@"), "acl"));
  auto lines = s.check();
  std::string all;
  for (auto& l : lines) all += l + "\n";
  EXPECT_NE(all.find("durability could not be checked"), std::string::npos) << all;
  EXPECT_NE(all.find("NOPERM"), std::string::npos) << all;
  s.open(false);
  ASSERT_FALSE(s.publish(1, event("acl-1", "o")));
  auto out = collect(s, 1);
  ASSERT_EQ(out.size(), 1u) << s.broken_reason();
  EXPECT_EQ(out[0].kind, BrokerOutcome::Kind::Confirmed) << out[0].reply;
}

TEST(RedisSink, BadSettingsAreConfig) {
  auto expect_config = [](RedisSink::Options o) {
    try {
      RedisSink s(o);
      s.open(false);
      ADD_FAILURE() << "accepted";
    } catch (const SinkError& e) {
      EXPECT_EQ(e.kind, SinkErrorKind::Config) << e.what();
    }
  };
  expect_config(opts("redis://u:pw@127.0.0.1:1/notadb", "x"));
  expect_config(opts("redis://127.0.0.1:1", "x:{nope}"));
  auto o = opts("rediss://localhost:1", "x");
  o.tls.cacert = "/nonexistent/ca.pem";
  expect_config(o);
  o.tls.cacert.clear();
  o.tls.cert = "/nonexistent/cert.pem";
  o.tls.key = "/nonexistent/key.pem";
  expect_config(o);
}

class RedisSinkTls : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = env("OUTBOX_REDISS_URL");
    if (url_.empty()) GTEST_SKIP() << "OUTBOX_REDISS_URL is not set";
    ca_ = env("OUTBOX_TLS_CA");
    cert_ = env("OUTBOX_TLS_CLIENT_CERT");
    key_ = env("OUTBOX_TLS_CLIENT_KEY");
    ASSERT_FALSE(ca_.empty()) << "OUTBOX_TLS_CA is not set";
  }
  RedisSink::Options tls_opts() {
    auto o = opts(url_, unique("tls"));
    o.tls = RedisTls{ca_, cert_, key_};
    return o;
  }
  std::string url_, ca_, cert_, key_;
};

TEST_F(RedisSinkTls, RightCaWorks) {
  RedisSink s(tls_opts());
  s.open(false);
  ASSERT_TRUE(s.connected());
  s.batch(true);
  for (int i = 0; i < 500; ++i) ASSERT_FALSE(s.publish(i, event(unique("tlsev"), "o", std::string(300, 'p'))));
  s.batch(false);
  auto out = collect(s, 500);
  ASSERT_EQ(out.size(), 500u) << s.broken_reason();
  for (auto& o : out) EXPECT_EQ(o.kind, BrokerOutcome::Kind::Confirmed) << o.reply;
  EXPECT_EQ(out.back().ticket, 499u);
}

TEST_F(RedisSinkTls, WrongCaIsTls) {
  std::string dir = "/tmp/redis-sink-wrong-ca-" + std::to_string(getpid());
  std::string cmd = "mkdir -p " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout " + dir +
                    "/k.pem -out " + dir + "/ca.pem -subj /CN=wrong-ca -days 1 >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto o = tls_opts();
  o.tls.cacert = dir + "/ca.pem";
  RedisSink s(o);
  {
    auto e = outbox::test::open_error(s);
    ASSERT_TRUE(e) << "a server certificate from another CA verified";
    EXPECT_EQ(e->kind, SinkErrorKind::Tls) << e->what();
    EXPECT_NE(std::string(e->what()).find("does not verify"), std::string::npos) << e->what();
  }
  (void)std::system(("rm -rf " + dir).c_str());
}

TEST_F(RedisSinkTls, WithoutTheClientCertificateIsTls) {
  // A client certificate given in the environment means the server requires one (tls-auth-clients
  // yes, Redis's default): without it the handshake (or, with TLS 1.3, the first reply) is
  // refused, a Tls error naming the fix.
  if (cert_.empty()) GTEST_SKIP() << "no client certificate given (OUTBOX_TLS_CLIENT_CERT)";
  auto o = tls_opts();
  o.tls.cert.clear();
  o.tls.key.clear();
  RedisSink s(o);
  {
    auto e = outbox::test::open_error(s);
    ASSERT_TRUE(e) << "connected without the client certificate";
    EXPECT_EQ(e->kind, SinkErrorKind::Tls) << e->what();
    EXPECT_NE(std::string(e->what()).find("certificate"), std::string::npos) << e->what();
  }
}

TEST_F(RedisSinkTls, PlainUrlOnTheTlsPortIsRetryable) {
  std::string plain = "redis://" + url_.substr(std::string("rediss://").size());
  auto o = opts(plain, "x");
  o.connect_timeout_ms = 1000;
  RedisSink s(o);
  {
    auto e = outbox::test::open_error(s);
    ASSERT_TRUE(e) << "spoke plain RESP to a TLS port";
    EXPECT_EQ(e->kind, SinkErrorKind::Retryable) << e->what();
  }
}
