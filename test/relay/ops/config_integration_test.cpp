// Integration tests of the relay's settings and of what each mistake in them gets, against the
// real servers of scripts/stack: definitive mistakes stop the start with exit 2 and the fix,
// credentials are retried loudly until someone fixes them, TLS verification, server errors in
// another language, --check without side effects, signals, the standby's manners.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <thread>

#include <httplib.h>

#include "sinks/rabbitmq/connection.h"
#include "support/build_info.h"
#include "harness.h"
#include "relay_it.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

// How many times `needle` occurs in `text`.
std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// A directory of the test's own, readable by the postgres user, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/outbox-it-XXXXXX";
    path = mkdtemp(t);
    chmod(path.c_str(), 0755);
  }
  ~TempDir() { sh("rm -rf '" + path + "'"); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// A CA, a certificate it signed for localhost/127.0.0.1 (with its key), and another CA that
// signed nothing here. False when openssl is missing.
bool make_certificates(const TempDir& d) {
  std::string out;
  std::string cmd = "cd '" + d.path + "' && "
                    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=it-ca && "
                    "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost && "
                    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
                    "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
                    "-extfile ext && "
                    "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other-ca";
  return sh("(" + cmd + ")", &out) == 0;
}

bool have_command(const std::string& name) { return sh("command -v " + name + " >/dev/null") == 0; }

// A process started in the background by a shell command, killed by its PID at the end.
struct Background {
  pid_t pid = -1;
  explicit Background(const std::string& cmd) {
    std::string out;
    if (sh("setsid " + cmd + " >/dev/null 2>&1 </dev/null & echo $!", &out) == 0) pid = std::atoi(out.c_str());
  }
  ~Background() {
    if (pid > 0) ::kill(pid, SIGTERM);
  }
};

// Sets an environment variable for the relays started while it lives (they inherit it).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const std::string& n, const std::string& v) : name(n) { setenv(n.c_str(), v.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

// ALTER SYSTEM settings of the test, reset (and reloaded) when it ends, even on failure.
struct ServerSettings {
  Db& db;
  std::vector<std::string> names;
  explicit ServerSettings(Db& d) : db(d) {}
  void set(const std::string& name, const std::string& value) {
    db.exec("ALTER SYSTEM SET " + name + " = '" + value + "'");
    names.push_back(name);
  }
  void reload() {
    db.exec("SELECT pg_reload_conf()");
    std::this_thread::sleep_for(300ms);
  }
  ~ServerSettings() {
    try {
      for (auto& n : names) db.exec("ALTER SYSTEM RESET " + n);
      db.exec("SELECT pg_reload_conf()");
      std::this_thread::sleep_for(300ms);
    } catch (...) {
    }
  }
};

std::vector<std::string> with_pg(std::vector<std::string> a, const std::string& extra) {
  for (std::size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == "--pg") a[i + 1] += " " + extra;
  return a;
}

std::string http_get(int port, const std::string& path, int* status = nullptr) {
  httplib::Client cli("127.0.0.1", port);
  auto r = cli.Get(path.c_str());
  if (status) *status = r ? r->status : 0;
  return r ? r->body : "";
}

}  // namespace

// Wrong PostgreSQL credentials (here: a role that does not exist yet) are not a reason to give
// up, since a supervisor may be fixing them: every attempt is logged at level error with the fix,
// /readyz says why (503), the metrics count them; once the role exists the relay streams.
TEST_F(RelayIT, PostgresqlLoginRefusedIsRetriedLoudlyUntilFixed) {
  std::string role = base_ + "_late";
  roles_.push_back(role);
  int port = free_port();
  auto a = with_pg(args({"--http", "127.0.0.1:" + std::to_string(port)}), "user=" + role);
  relays_.push_back(std::make_unique<RelayProcess>(a, log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return count_of(relay.log(), "error PostgreSQL refused the login") >= 2; }, 15s))
      << relay.log();
  EXPECT_NE(relay.log().find("SQLSTATE 28000"), std::string::npos) << relay.log();
  EXPECT_NE(relay.log().find("-- fix: check that the role in --pg exists"), std::string::npos) << relay.log();
  int status = 0;
  std::string body = http_get(port, "/readyz", &status);
  EXPECT_EQ(status, 503);
  EXPECT_NE(body.find("SQLSTATE 28000"), std::string::npos) << body;
  std::string metrics = http_get(port, "/metrics");
  EXPECT_NE(metrics.find("outbox_relay_auth_failing{server=\"postgresql\"} 1"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("outbox_relay_auth_failures_total{server=\"postgresql\"} 0\n"), std::string::npos) << metrics;
  EXPECT_TRUE(relay.running());
  db_->exec("CREATE ROLE " + role + " LOGIN REPLICATION");
  db_->exec("SELECT outbox.grant_relay('" + role + "')");
  ASSERT_TRUE(eventually([&] { return streaming(relay); }, 15s)) << relay.log();
  db_->exec(emit_sql("after.fix", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u) << relay.log();
  EXPECT_TRUE(eventually([&] { return http_get(port, "/readyz", &status) == "ready\n"; }, 5s));
  EXPECT_NE(http_get(port, "/metrics").find("outbox_relay_auth_failing{server=\"postgresql\"} 0"), std::string::npos);
  EXPECT_EQ(relay.stop(), 0);
}

// The same for RabbitMQ: a user that does not exist yet (403 ACCESS_REFUSED) is retried at level
// error with the fix, shown on /readyz, and the relay streams once the user is added.
TEST_F(RelayIT, RabbitmqLoginRefusedIsRetriedLoudlyUntilFixed) {
  SKIP_UNLESS_MAIN_PLUGIN();  // the broker side and the walsender: the plugin is not its subject
  std::string ctl = env_or("RABBITMQCTL", "");
  if (ctl.empty()) GTEST_SKIP() << "RABBITMQCTL not set";
  std::string user = base_ + "_mq", port_s = env_or("AMQP_PORT", "5672");
  struct DropUser {
    std::string ctl, user;
    ~DropUser() { sh(ctl + " delete_user '" + user + "'"); }
  } drop{ctl, user};
  int port = free_port();
  auto a = with(args({"--http", "127.0.0.1:" + std::to_string(port)}), "--amqp",
                "amqp://" + user + ":S3cretMq@127.0.0.1:" + port_s + "/");
  relays_.push_back(std::make_unique<RelayProcess>(a, log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return count_of(relay.log(), "error RabbitMQ: RabbitMQ refused the login") >= 2; }, 15s))
      << relay.log();
  EXPECT_NE(relay.log().find("403 ACCESS_REFUSED"), std::string::npos) << relay.log();
  EXPECT_NE(relay.log().find("-- fix: check user and password in --amqp"), std::string::npos) << relay.log();
  EXPECT_EQ(relay.log().find("S3cretMq"), std::string::npos) << relay.log();
  int status = 0;
  EXPECT_NE(http_get(port, "/readyz", &status).find("refused the login"), std::string::npos);
  EXPECT_EQ(status, 503);
  EXPECT_NE(http_get(port, "/metrics").find("outbox_relay_auth_failing{server=\"rabbitmq\"} 1"), std::string::npos);
  std::string out;
  ASSERT_EQ(sh(ctl + " add_user '" + user + "' S3cretMq", &out), 0) << out;
  ASSERT_EQ(sh(ctl + " set_permissions -p / '" + user + "' '.*' '.*' '.*'", &out), 0) << out;
  ASSERT_TRUE(eventually([&] { return db_->slot_active(slot_); }, 20s)) << relay.log();
  db_->exec(emit_sql("after.fix", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u) << relay.log();
  EXPECT_EQ(relay.stop(), 0);
}

// amqps:// through a TLS front (socat) to the stack's RabbitMQ. A certificate that does not
// verify stops the start with exit 2 and the fix (it was retried as a connection error). Without
// --amqp-cacert the system's trust store is used (rabbitmq-c 0.11 has none by itself): with the
// CA in SSL_CERT_FILE, the relay connects and publishes.
TEST_F(RelayIT, AmqpsCertificateIsVerifiedWithTheSystemStoreOrTheGivenCa) {
  if (!have_command("socat") || !have_command("openssl")) GTEST_SKIP() << "needs socat and openssl";
  TempDir d;
  ASSERT_TRUE(make_certificates(d));
  int tls_port = free_port();
  Background front("socat OPENSSL-LISTEN:" + std::to_string(tls_port) + ",bind=127.0.0.1,reuseaddr,fork,cert=" +
                   d.file("srv.pem") + ",key=" + d.file("srv.key") + ",verify=0 TCP:127.0.0.1:" +
                   env_or("AMQP_PORT", "5672"));
  ASSERT_GT(front.pid, 0);
  std::this_thread::sleep_for(300ms);
  std::string url = "amqps://guest:guest@localhost:" + std::to_string(tls_port) + "/";
  {
    ScopedEnv no_store("SSL_CERT_FILE", d.file("other.pem"));  // a system store without our CA
    RelayProcess r(with(args(), "--amqp", url), log_);
    auto rc = r.wait_exit(15s);
    ASSERT_TRUE(rc.has_value()) << r.log();
    EXPECT_EQ(*rc, 2);
    EXPECT_NE(r.log().find("does not verify"), std::string::npos) << r.log();
    EXPECT_NE(r.log().find("--amqp-cacert"), std::string::npos) << r.log();
  }
  {
    RelayProcess r(with(with(args(), "--amqp", url), "--amqp-cacert", d.file("other.pem")), log_);
    auto rc = r.wait_exit(15s);
    ASSERT_TRUE(rc.has_value()) << r.log();
    EXPECT_EQ(*rc, 2) << "a CA that did not sign the certificate";
  }
  ScopedEnv store("SSL_CERT_FILE", d.file("ca.pem"));
  RelayProcess& relay = start_relay({"--amqp", url});
  db_->exec(emit_sql("over.tls", "{}"));
  auto msgs = broker_->collect(1, 10s);
  ASSERT_EQ(msgs.size(), 1u) << relay.log();
  EXPECT_EQ(msgs[0].type, "over.tls");
  EXPECT_EQ(relay.stop(), 0);
}

// sslmode=verify-full with a CA that did not sign the server's certificate: see
// TlsIT.PostgresqlCertificateFromAnotherCaStopsTheStart (tls_integration_test.cpp), against the
// stack's own TLS.

// A server whose lc_messages is another language (German here, when the machine has such a locale
// and PostgreSQL's translation): errors are classified by SQLSTATE, so a role without REPLICATION
// still stops the start with exit 2 and the fix (its German message was taken for a connection
// problem and retried forever), and a role that does not exist is an authentication failure.
TEST_F(RelayIT, ServerErrorsInAnotherLanguageAreClassifiedTheSame) {
  std::string chosen;
  std::string locales;
  sh("locale -a", &locales);
  std::istringstream in(locales);
  for (std::string loc; std::getline(in, loc) && chosen.empty();) {
    if (loc.empty() || loc == "C" || loc == "POSIX" || loc.rfind("C.", 0) == 0 || loc.rfind("en", 0) == 0) continue;
    try {
      // Valid for the server, and translated (PostgreSQL has a catalog for that language).
      std::string msg = db_->scalar("SET lc_messages = '" + loc + "'; SELECT 1");
      (void)msg;
      db_->exec("SELECT * FROM it_no_such_table_for_language");
    } catch (const std::exception& e) {
      std::string what = e.what();
      if (what.find("invalid value") == std::string::npos && what.find("does not exist") == std::string::npos)
        chosen = loc;
    }
    try {
      db_->exec("RESET lc_messages");
    } catch (...) {
    }
  }
  // A failure, not a skip: skipped, it passed on every fresh machine without ever running.
  ASSERT_FALSE(chosen.empty()) << "no locale with a PostgreSQL translation installed: run scripts/install-deps "
                                  "(it generates de_DE.UTF-8)";
  ServerSettings s(*db_);
  s.set("lc_messages", chosen);
  s.reload();
  std::string role = make_role(base_ + "_norepl");
  db_->exec("SELECT outbox.grant_relay('" + role + "')");  // REPLICATION is what it lacks
  {
    RelayProcess r(with_pg(args(), "user=" + role), log_);
    auto rc = r.wait_exit(15s);
    ASSERT_TRUE(rc.has_value()) << "retried instead of stopping (lc_messages " << chosen << "):\n" << r.log();
    EXPECT_EQ(*rc, 2);
    EXPECT_NE(r.log().find("SQLSTATE 42501"), std::string::npos) << r.log();
    EXPECT_NE(r.log().find("ALTER ROLE <relay role> REPLICATION"), std::string::npos) << r.log();
    EXPECT_EQ(r.log().find("must be superuser"), std::string::npos) << "the server's message is not English:\n" << r.log();
  }
  RelayProcess r(with_pg(args(), "user=" + base_ + "_nobody"), log_);
  EXPECT_TRUE(eventually([&] { return r.log().find("refused the login") != std::string::npos; }, 10s)) << r.log();
  EXPECT_NE(r.log().find("SQLSTATE 28000"), std::string::npos) << r.log();
  EXPECT_TRUE(r.running());
  EXPECT_EQ(r.stop(), 0);
}

// --check declared the topology of the config file on the broker. It must create nothing: each
// exchange and queue is checked with a passive declare, the log says which exist and which the
// relay would create (bindings: "would be bound"), and it exits 0 because the relay could start.
TEST_F(RelayIT, CheckCreatesNoTopology) {
  std::string fresh_ex = base_ + ".new", fresh_q = base_ + ".newq";
  std::string cfg = env_or("OUTBOX_IT_LOG_DIR", "/tmp") + "/" + base_ + ".toml";
  {
    std::ofstream f(cfg);
    f << "[[topology.exchanges]]\nname = \"" << exchange_ << "\"\n"          // exists (the fixture's)
      << "[[topology.exchanges]]\nname = \"" << fresh_ex << "\"\ntype = \"fanout\"\n"
      << "[[topology.queues]]\nname = \"" << queue_ << "\"\n"                // exists
      << "[[topology.queues]]\nname = \"" << fresh_q << "\"\n"
      << "[[topology.bindings]]\nqueue = \"" << fresh_q << "\"\nexchange = \"" << fresh_ex << "\"\n";
  }
  auto a = args({"--config", cfg, "--check"});
  RelayProcess r(with(a, "--exchange", fresh_ex), log_);  // the default exchange comes from [topology]
  auto rc = r.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << r.log();
  EXPECT_EQ(*rc, 0) << r.log();
  std::string log = r.log();
  EXPECT_NE(log.find("exchange \"" + exchange_ + "\" exists"), std::string::npos) << log;
  EXPECT_NE(log.find("exchange \"" + fresh_ex + "\" does not exist: the relay would create it (type fanout"),
            std::string::npos) << log;
  EXPECT_NE(log.find("queue \"" + queue_ + "\" exists"), std::string::npos) << log;
  EXPECT_NE(log.find("queue \"" + fresh_q + "\" does not exist: the relay would create it"), std::string::npos) << log;
  EXPECT_NE(log.find("would be bound to exchange \"" + fresh_ex + "\""), std::string::npos) << log;
  EXPECT_NE(log.find("check passed"), std::string::npos) << log;
  EXPECT_EQ(log.find("declared topology"), std::string::npos) << log;
  outbox::AmqpPublisher probe;
  probe.connect(env_or("OUTBOX_AMQP_URL", ""), 0, "it probe");
  EXPECT_FALSE(probe.exchange_exists(fresh_ex)) << "--check created the exchange";
  EXPECT_FALSE(probe.queue_exists(fresh_q)) << "--check created the queue";
  EXPECT_TRUE(probe.queue_exists(queue_));
  EXPECT_EQ(db_->slot_confirmed_lsn(slot_), "") << "--check must not create the slot";
  std::remove(cfg.c_str());
}

// SIGHUP killed the relay (exit 129) without draining. It is a stop like SIGTERM: the relay
// finishes, acknowledges what the broker confirmed and exits 0; the log says how it was taken.
TEST_F(RelayIT, SighupStopsLikeSigterm) {
  RelayProcess& relay = start_relay();
  std::string before = current_lsn();
  db_->exec(emit_sql("before.hup", "{}"));
  ASSERT_EQ(broker_->collect(1, 10s).size(), 1u);
  ASSERT_EQ(::kill(relay.pid(), SIGHUP), 0);
  auto rc = relay.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << relay.log();
  EXPECT_EQ(*rc, 0) << "killed by the signal instead of stopping:\n" << relay.log();
  EXPECT_NE(relay.log().find("stopping: no more reading from the slot"), std::string::npos) << relay.log();
  EXPECT_NE(relay.log().find("SIGHUP, which outbox-relay handles like SIGTERM"), std::string::npos) << relay.log();
  EXPECT_GT(lsn(db_->slot_confirmed_lsn(slot_)), lsn(before)) << "the final acknowledgement was sent";
  // A standby (not streaming) stops the same way.
  RelayProcess& a = start_relay();
  RelayProcess& b = start_relay({}, false);
  ASSERT_TRUE(eventually([&] { return b.log().find("waiting as a hot standby") != std::string::npos; }, 10s)) << b.log();
  ASSERT_EQ(::kill(b.pid(), SIGHUP), 0);
  rc = b.wait_exit(10s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(a.stop(), 0);
}

// A standby (slot busy in another relay) opened a broker connection every second and logged three
// lines a second. It now checks the slot on the database side only, says so once (then once a
// minute), opens no broker connection, keeps /healthz fresh and says "standby" on /readyz.
TEST_F(RelayIT, StandbyWaitsWithoutChurningTheBroker) {
  std::string ctl = env_or("RABBITMQCTL", "");
  RelayProcess& a = start_relay();
  int port = free_port();
  std::string log_b = log_ + ".standby";
  std::remove(log_b.c_str());
  struct RemoveLog {
    std::string path;
    ~RemoveLog() { std::remove(path.c_str()); }
  } remove_b{log_b};
  relays_.push_back(std::make_unique<RelayProcess>(args({"--http", "127.0.0.1:" + std::to_string(port)}), log_b));
  RelayProcess& b = *relays_.back();
  ASSERT_TRUE(eventually([&] { return b.log().find("waiting as a hot standby") != std::string::npos; }, 10s)) << b.log();
  std::this_thread::sleep_for(4s);
  std::string lb = b.log();
  EXPECT_EQ(count_of(lb, "waiting as a hot standby") + count_of(lb, "still waiting"), 1u) << "logged once:\n" << lb;
  EXPECT_EQ(count_of(lb, "connected to RabbitMQ"), 0u) << lb;
  EXPECT_EQ(count_of(lb, "replication connection"), 0u) << lb;
  std::string metrics = http_get(port, "/metrics");
  EXPECT_NE(metrics.find("outbox_relay_standby 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("outbox_relay_reconnects_total{server=\"rabbitmq\"} 0"), std::string::npos) << metrics;
  int status = 0;
  EXPECT_EQ(http_get(port, "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  EXPECT_NE(http_get(port, "/readyz", &status).find("standby"), std::string::npos);
  EXPECT_EQ(status, 503);
  if (!ctl.empty()) {
    std::string out;
    ASSERT_EQ(sh(ctl + " list_connections client_properties", &out), 0) << out;
    EXPECT_EQ(count_of(out, "slot=" + slot_ + "\""), 1u) << "only the active relay is connected to the broker:\n" << out;
  }
  // It still takes over when the active relay goes.
  EXPECT_EQ(a.stop(), 0);
  db_->exec(emit_sql("after.takeover", "{}"));
  auto msgs = broker_->collect(1, 15s);
  ASSERT_EQ(msgs.size(), 1u) << b.log();
  EXPECT_NE(b.log().find("took over slot"), std::string::npos) << b.log();
  EXPECT_EQ(b.stop(), 0);
}

// --status-interval-ms above a third of the server's wal_sender_timeout let the server drop a
// relay that the broker holds back (it reads no keepalives then). The relay reads the timeout at
// connect (SHOW wal_sender_timeout), caps the interval with a warning that says so, and keeps
// its walsender through a blocked broker.
TEST_F(RelayIT, StatusIntervalIsCappedToAThirdOfWalSenderTimeout) {
  SKIP_UNLESS_MAIN_PLUGIN();  // the broker side and the walsender: the plugin is not its subject
  std::string ctl = env_or("RABBITMQCTL", "");
  if (ctl.empty()) GTEST_SKIP() << "RABBITMQCTL not set";
  auto a = with(with(args(), "--status-interval-ms", "10000"), "--pg",
                db_->conninfo() + " options='-c wal_sender_timeout=2s'");
  relays_.push_back(std::make_unique<RelayProcess>(a, log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return streaming(relay); }, 15s)) << relay.log();
  EXPECT_NE(relay.log().find("--status-interval-ms 10000 is more than a third of the server's wal_sender_timeout (2s): "
                             "sending status updates every 666 ms"),
            std::string::npos)
      << relay.log();
  std::string pid = db_->scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'");
  BrokerAlarm alarm{ctl};
  ASSERT_TRUE(raise_memory_alarm(ctl)) << "RabbitMQ raised no memory alarm";
  db_->exec("BEGIN");
  db_->exec("SELECT count(" + emit_expr("bp", "{}") + ") FROM generate_series(1, 3000)");
  std::string before_commit = db_->scalar("SELECT pg_current_wal_insert_lsn()");
  db_->exec("COMMIT");
  // The broker did block: nothing confirmed, so the slot stays before the commit all along.
  EXPECT_TRUE(throughout([&] { return lsn(db_->slot_confirmed_lsn(slot_)) <= lsn(before_commit); }, 6s))
      << "the slot passed events the blocked broker cannot have confirmed:\n" << relay.log();
  ASSERT_EQ(sh(ctl + " set_vm_memory_high_watermark 0.4"), 0);
  EXPECT_EQ(broker_->collect(3000, 30s).size(), 3000u);
  EXPECT_EQ(db_->scalar("SELECT active_pid FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'"), pid)
      << "the server dropped the relay:\n" << relay.log();
  EXPECT_EQ(relay.stop(), 0);
}

// Definitive mistakes in the settings stop the relay before it connects anywhere (exit 2, the
// setting and the fix named); --create-slot=false means false; secrets stay masked.
TEST_F(RelayIT, BadSettingsStopTheStartWithTheFix) {
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  const Case cases[] = {
      {{"--http", "127.0.0.1:99999"}, "setting http"},
      {{"--heartbeat", "70000"}, "setting heartbeat"},
      {{"--slot", "Bad-Name"}, "setting slot"},
      {{"--amqp", "amqp://guest:guest@127.0.0.1:99999/"}, "setting amqp"},
      {{"--pg", "hots=127.0.0.1 dbname=x"}, "setting pg"},
      {{"--pg", "postgresql://127.0.0.1/x?hots=y"}, "setting pg"},
      {{"--retry-base-ms", "500", "--retry-max-ms", "100"}, "setting retry-max-ms"},
      {{"--reconnect-min-ms", "5000", "--reconnect-max-ms", "1000"}, "setting reconnect-min-ms"},
  };
  for (const Case& c : cases) {
    auto a = args();
    for (std::size_t i = 0; i + 1 < c.args.size(); i += 2) a = with(a, c.args[i], c.args[i + 1]);
    RelayProcess r(a, log_ + ".bad");
    auto rc = r.wait_exit(10s);
    ASSERT_TRUE(rc.has_value()) << c.says << ": retried instead of stopping\n" << r.log();
    EXPECT_EQ(*rc, 2) << c.says;
    EXPECT_NE(r.log().find(c.says), std::string::npos) << r.log();
    EXPECT_EQ(r.log().find("connected to RabbitMQ"), std::string::npos) << "before connecting:\n" << r.log();
    std::remove((log_ + ".bad").c_str());
  }
  // --create-slot=false: the slot is not created, and the relay says how to create it.
  auto a = args({"--create-slot=false"});
  RelayProcess r(a, log_);
  auto rc = r.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << r.log();
  EXPECT_EQ(*rc, 2);
  EXPECT_NE(r.log().find("does not exist -- fix: start with --create-slot"), std::string::npos) << r.log();
  EXPECT_EQ(db_->slot_confirmed_lsn(slot_), "") << "--create-slot=false created the slot";
}

// sslpassword (and every other secret libpq keyword) is masked on the start line and in errors,
// in key=value and URI form.
TEST_F(RelayIT, SslpasswordIsMaskedInLogs) {
  for (const std::string& pg : {db_->conninfo() + " sslpassword=KeyPassw0rd password=Sup3rSecret",
                                "postgresql://" + env_or("PGUSER", "postgres") + ":Sup3rSecret@127.0.0.1:" +
                                    env_or("PGPORT", "5432") + "/" + db_->name() + "?sslpassword=KeyPassw0rd"}) {
    auto a = with(with(args(), "--pg", pg), "--amqp", "amqp://guest:guest@127.0.0.1:1/");  // unreachable: errors logged
    RelayProcess r(a, log_);
    ASSERT_TRUE(eventually([&] { return r.log().find("cannot connect to RabbitMQ") != std::string::npos; }, 10s)) << r.log();
    r.stop();
    std::string log = r.log();
    EXPECT_NE(log.find("sslpassword=***"), std::string::npos) << log;
    EXPECT_EQ(log.find("KeyPassw0rd"), std::string::npos) << log;
    EXPECT_EQ(log.find("Sup3rSecret"), std::string::npos) << log;
    std::remove(log_.c_str());
  }
}

// The start refuses what --check refuses, before any slot exists: a LOGIN REPLICATION role
// without outbox.grant_relay() streamed (and skipped every wal-storage event as unverifiable,
// acknowledging past it) where --check said exit 2. Both now exit 2 naming the role's grant.
TEST_F(RelayIT, RoleWithoutGrantRelayIsRefusedBeforeASlotExists) {
  std::string role = make_role(base_ + "_nogrant");
  db_->exec("ALTER ROLE " + role + " REPLICATION");
  for (bool check : {true, false}) {
    auto a = with_pg(args(check ? std::vector<std::string>{"--check"} : std::vector<std::string>{}), "user=" + role);
    RelayProcess r(a, log_);
    auto rc = r.wait_exit(15s);
    ASSERT_TRUE(rc.has_value()) << (check ? "--check" : "the start") << " did not stop:\n" << r.log();
    EXPECT_EQ(*rc, 2) << r.log();
    // Once read "the relay role lacks cannot check privileges: ERROR: ...": the role and what it lacks.
    EXPECT_NE(r.log().find("the relay role \"" + role + "\" lacks USAGE on schema outbox"), std::string::npos)
        << r.log();
    EXPECT_EQ(r.log().find("cannot check"), std::string::npos) << r.log();
    EXPECT_NE(r.log().find("fix: SELECT outbox.grant_relay('" + role + "')"), std::string::npos) << r.log();
    EXPECT_EQ(r.log().find("streaming from slot"), std::string::npos) << r.log();
    EXPECT_EQ(db_->slot_confirmed_lsn(slot_), "") << "a slot was created for a relay that cannot run:\n" << r.log();
  }
}

// A database without the extension (or with one too old for this relay): the start made a slot
// and streamed; --check refused it with the fix for a missing grant. Both now exit 2 before any
// slot exists, naming CREATE EXTENSION (ALTER EXTENSION ... UPDATE for an old version).
TEST_F(RelayIT, DatabaseWithoutTheExtensionIsRefusedBeforeASlotExists) {
  db_->exec("DROP EXTENSION outbox CASCADE");
  for (bool check : {true, false}) {
    RelayProcess r(args(check ? std::vector<std::string>{"--check"} : std::vector<std::string>{}), log_);
    auto rc = r.wait_exit(15s);
    ASSERT_TRUE(rc.has_value()) << (check ? "--check" : "the start") << " did not stop:\n" << r.log();
    EXPECT_EQ(*rc, 2) << r.log();
    EXPECT_NE(r.log().find("the outbox extension is not installed in database \"" + db_->name() + "\""),
              std::string::npos) << r.log();
    EXPECT_NE(r.log().find("fix: CREATE EXTENSION outbox"), std::string::npos) << r.log();
    EXPECT_EQ(db_->slot_confirmed_lsn(slot_), "") << "a slot was created without the extension:\n" << r.log();
  }
  db_->exec("CREATE EXTENSION outbox VERSION '0.1'");
  RelayProcess r(args(), log_);
  auto rc = r.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << r.log();
  EXPECT_EQ(*rc, 2) << r.log();
  // Both versions named: the extension's and the relay's, with the range it reads.
  EXPECT_NE(r.log().find("is version 0.1, outbox-relay " + std::string(outbox::kRelayVersion) +
                         " reads extension versions 0.2 to " + outbox::kMaxExtensionVersion +
                         " -- fix: ALTER EXTENSION outbox UPDATE"),
            std::string::npos) << r.log();
  EXPECT_EQ(db_->slot_confirmed_lsn(slot_), "");
  // An older extension within the range (events of 0.3 carry no trace context) is read.
  db_->exec("ALTER EXTENSION outbox UPDATE TO '0.3'");
  RelayProcess older(args({"--check"}), log_);
  rc = older.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << older.log();
  EXPECT_EQ(*rc, 0) << older.log();
}

// A role that may not read output_plugin_libraries (Debian's list of the plugins a REPLICATION
// role may decode with; superusers and pg_read_all_settings only): --check said "check passed"
// and the start could then fail creating the slot. It now says what it could not check, and how
// to let it; with pg_read_all_settings it reads the setting and finds the plugin there.
TEST_F(RelayIT, CheckSaysItCannotReadOutputPluginLibraries) {
  if (db_->scalar("SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'") == "0")
    GTEST_SKIP() << "this server has no output_plugin_libraries";
  std::string role = make_role(base_ + "_least");
  db_->exec("ALTER ROLE " + role + " REPLICATION; SELECT outbox.grant_relay('" + role + "')");
  auto a = with_pg(args({"--check"}), "user=" + role);
  RelayProcess r(a, log_);
  auto rc = r.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << r.log();
  EXPECT_EQ(*rc, 0) << r.log();
  EXPECT_NE(r.log().find("cannot read output_plugin_libraries (role \"" + role + "\" may not)"), std::string::npos)
      << r.log();
  EXPECT_NE(r.log().find("fix: GRANT pg_read_all_settings TO " + role), std::string::npos) << r.log();
  EXPECT_EQ(r.log().find("check passed: outbox-relay can start"), std::string::npos) << r.log();
  db_->exec("GRANT pg_read_all_settings TO " + role);
  RelayProcess ok(a, log_ + ".2");
  rc = ok.wait_exit(15s);
  ASSERT_TRUE(rc.has_value()) << ok.log();
  EXPECT_EQ(*rc, 0) << ok.log();
  EXPECT_EQ(ok.log().find("cannot read output_plugin_libraries"), std::string::npos) << ok.log();
  EXPECT_NE(ok.log().find("check passed: outbox-relay can start"), std::string::npos) << ok.log();
  db_->exec("REVOKE pg_read_all_settings FROM " + role);
}
