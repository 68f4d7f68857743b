// Issue 15 items 4 and 6, run from outside against the real servers of scripts/stack: no secret
// (passwords, tokens, sslpassword, a key's contents) in anything the relay prints, whatever path
// it takes (start, --check, every exit-2 mistake in the settings, lost connections, wrong
// credentials, closed ports); and a second relay given a --http port in use stops (exit 2).
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "harness.h"
#include "relay_it.h"

using namespace it;
using namespace std::chrono_literals;

namespace {

// Every secret below is made of these pieces, so that a fragment of one (what a parser quotes
// when it splits a password at '/', '?', ',' or a space) is still found.
const char* const kPieces[] = {"TokQ7x", "paQ7x", "ssQ7x", "w0rdQ7x", "PgQ7x", "KeyQ7x", "RbQ7x", "RdQ7x", "WrongQ7x"};

// The first secret piece `out` contains ("" when none).
std::string leaked(const std::string& out) {
  for (const char* p : kPieces)
    if (out.find(p) != std::string::npos) return p;
  return "";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// Sets (or, with nullptr, unsets) an environment variable for the relays started while it lives.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, const char* v) : name(std::move(n)) {
    if (const char* o = std::getenv(name.c_str())) old = o;
    if (v) setenv(name.c_str(), v, 1);
    else unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    if (old) setenv(name.c_str(), old->c_str(), 1);
    else unsetenv(name.c_str());
  }
};

// host:port of a URL of the stack env (amqp://guest:guest@127.0.0.1:5672/ -> 127.0.0.1:5672).
std::string host_port(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  return rest.substr(rest.rfind('@') == std::string::npos ? 0 : rest.rfind('@') + 1);
}

}  // namespace

class SecretsIT : public RelayIT {
 protected:
  void SetUp() override {
    RelayIT::SetUp();
    if (IsSkipped()) return;
    SKIP_UNLESS_MAIN_PLUGIN();  // the subject is what the relay prints, not the plugin
    amqp_hp_ = host_port(env_or("OUTBOX_AMQP_URL", ""));
    nats_hp_ = host_port(env_or("OUTBOX_NATS_URL", ""));
    redis_hp_ = host_port(env_or("OUTBOX_REDIS_URL", ""));
  }

  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
    RelayIT::TearDown();
  }

  std::string write_file(const std::string& suffix, const std::string& text) {
    std::string path = "/tmp/" + base_ + suffix;
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }

  // Runs the relay until it exits by itself (within 15 s) and returns its whole output.
  std::string run_to_exit(const std::vector<std::string>& a, int* rc) {
    std::string log = log_ + ".run";
    std::remove(log.c_str());
    RelayProcess r(a, log);
    auto code = r.wait_exit(15s);
    std::string out = slurp(log);
    std::remove(log.c_str());
    *rc = code ? *code : -100;  // -100: still running
    return out;
  }

  std::string amqp_hp_, nats_hp_, redis_hp_;
  std::vector<std::string> files_;
};

// Every exit-2 path of the settings (the URLs, --pg, positional arguments, the config file, the
// environment, a key's contents) with secrets in every URL and conninfo: exit 2, the setting
// named, and no piece of a secret in the output. Before the fix, "nats://TOKEN@host" was printed
// whole, and a password with an unencoded '/' or '?' in clear.
TEST_F(SecretsIT, SettingsMistakesNeverEchoASecret) {
  const std::string pg_secret = db_->conninfo() + " password=PgQ7x sslpassword=KeyQ7x";
  const std::string amqp = "amqp://guest:paQ7x@" + amqp_hp_ + "/";
  const std::string nats = "nats://TokQ7x@" + nats_hp_;
  const std::string redis = "redis://u:RdQ7x@" + redis_hp_;
  // A relay given every sink, all with secrets.
  auto all = [&](std::vector<std::string> extra) {
    auto a = with(with(with(with(args(), "--pg", pg_secret), "--amqp", amqp), "--nats", nats), "--redis", redis);
    for (std::size_t i = 0; i + 1 < extra.size(); i += 2) a = with(a, extra[i], extra[i + 1]);
    if (extra.size() % 2) a.push_back(extra.back());  // a positional argument
    return a;
  };
  const std::string pem = "-----BEGIN PRIVATE KEY-----\nKeyQ7xKeyQ7x\n-----END PRIVATE KEY-----\n";
  std::string bad_toml = write_file(".bad.toml", "nats = \"nats://TokQ7x@" + nats_hp_ + "\nslot = \"x\"\n");
  std::string amqp_toml = write_file(".amqp.toml", "amqp = [\"amqp://u:paQ7x/ssQ7x@h/\"]\n");
  std::string entry_toml = write_file(".entry.toml", "amqp = [\"amqp://u:paQ7x@h/\", 5]\n");
  struct Case {
    std::vector<std::string> extra;
    std::string says;
    std::vector<std::pair<std::string, const char*>> env = {};
  };
  const std::vector<Case> cases = {
      {{"--amqp", "amqp://u:paQ7x/ssQ7x?w0rdQ7x@" + amqp_hp_ + "/"}, "setting amqp"},
      {{"--amqp", "amqp://u:paQ7x,ssQ7x@" + amqp_hp_ + "/"}, "setting amqp"},
      {{"--amqp", "u:paQ7x@" + amqp_hp_}, "setting amqp"},
      {{"--amqp", "amqp://u:paQ7x@127.0.0.1:99999/"}, "setting amqp"},
      {{"--amqp", "amqp://u:paQ7x#ssQ7x@" + amqp_hp_ + "/"}, "setting amqp"},
      {{"--nats", "natz://TokQ7x@" + nats_hp_}, "setting nats"},
      {{"--nats", "nats://u:paQ7x,ssQ7x@" + nats_hp_}, "setting nats"},
      {{"--nats", "nats://TokQ7x@127.0.0.1:notaport", "--default-sink", "nats"}, "NATS URL"},
      {{"--nats", "nats://TokQ7x@" + nats_hp_ + ",tls://TokQ7x@" + nats_hp_, "--default-sink", "nats"}, "mix tls://"},
      {{"--default-sink", "nats", "--nats-subject-prefix", "$JS."}, "setting nats-subject-prefix"},
      {{"--redis", "redis://u:paQ7x/ssQ7x?w0rdQ7x@127.0.0.1:bad", "--default-sink", "redis"}, "Redis URL"},
      {{"--redis", "rediss://u:paQ7x,ssQ7x@" + redis_hp_}, "setting redis"},
      {{"--redis", "redis://u:paQ7x@" + redis_hp_ + "/x?y", "--default-sink", "redis"}, "Redis URL"},
      {{"--redis", "redis://RdQ7x@" + redis_hp_, "--default-sink", "redis"}, "Redis URL"},
      {{"--redis-stream", "", "--default-sink", "redis"}, "setting redis-stream"},
      {{"--pg", "host=127.0.0.1 password=paQ7x ssQ7x?w0rdQ7x"}, "setting pg"},
      {{"--pg", "postgresql://u:paQ7x/ssQ7x?w0rdQ7x@127.0.0.1/db"}, "setting pg"},
      {{"--pg", "host=127.0.0.1 password='paQ7x ssQ7x"}, "setting pg"},
      {{"--pg", "hots=127.0.0.1 password=PgQ7x sslpassword=KeyQ7x"}, "setting pg"},
      {{"--pg", "postgresql://u:PgQ7x@127.0.0.1/db?hots=x&sslpassword=KeyQ7x"}, "setting pg"},
      {{"amqp://u:paQ7x@" + amqp_hp_ + "/"}, "not expected"},
      {{"password=PgQ7x"}, "not expected"},
      {{"--amqp-url", "amqp://u:paQ7x@" + amqp_hp_ + "/"}, "amqp-url"},
      {{"--amqp-cert", "/nonexistent.pem", "--amqp-key", pem}, "setting amqp-key"},
      {{"--nats-cert", "/nonexistent.pem", "--nats-key", pem}, "setting nats-key"},
      {{"--config", bad_toml}, "config file"},
      {{}, "config file", {{"OUTBOX_RELAY_CONFIG", entry_toml.c_str()}}},  // the file's amqp, not the flag's
      {{"--heartbeat", "70000"}, "setting heartbeat"},
      {{"--slot", "Bad-Name"}, "setting slot"},
      {{"--http", "127.0.0.1:99999"}, "setting http"},
      {{"--create-slot=maybe"}, "create-slot"},
      {{"--log-level", "loud"}, "log-level"},
      {{"--shard", "5/2"}, "setting shard"},
      {{"--reconnect-min-ms", "5000", "--reconnect-max-ms", "1000"}, "setting reconnect-min-ms"},
      // The environment and the file, not flags.
      {{}, "setting amqp", {{"OUTBOX_RELAY_AMQP", "amqp://u:paQ7x/ssQ7x@h/"}}},
      {{}, "setting pg", {{"OUTBOX_RELAY_PG", "host=h password=paQ7x ssQ7x?w0rdQ7x"}}},
      {{}, "setting nats", {{"OUTBOX_RELAY_NATS", "nats://u:paQ7x,ssQ7x@h"}}},
      {{}, "setting amqp", {{"OUTBOX_RELAY_CONFIG", amqp_toml.c_str()}}},
  };
  for (const Case& c : cases) {
    std::vector<std::unique_ptr<ScopedEnv>> env;
    auto a = all(c.extra);
    for (const auto& [name, value] : c.env) {
      env.push_back(std::make_unique<ScopedEnv>(name, value));
      // Given by the environment: the flag of the same setting would win.
      std::string flag = name == "OUTBOX_RELAY_AMQP" ? "--amqp" : name == "OUTBOX_RELAY_PG" ? "--pg"
                         : name == "OUTBOX_RELAY_NATS" ? "--nats" : name == "OUTBOX_RELAY_CONFIG" ? "--amqp" : "";
      auto it = std::find(a.begin(), a.end(), flag);
      if (it != a.end()) a.erase(it, it + 2);
      if (name == "OUTBOX_RELAY_CONFIG") env.push_back(std::make_unique<ScopedEnv>("OUTBOX_AMQP_URL", nullptr));
    }
    int rc = 0;
    std::string out = run_to_exit(a, &rc);
    std::string what = c.says + " (" + (c.extra.empty() ? c.env[0].first : c.extra[0]) + ")";
    EXPECT_EQ(rc, 2) << what << ":\n" << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << what << ": another error than expected:\n" << out;
    EXPECT_EQ(leaked(out), "") << what << ": a secret in the output:\n" << out;
  }
}

// A real start and --check with secrets in every URL and conninfo and credentials that work, then
// a lost connection to each server (a terminated walsender, RabbitMQ closing the relay's
// connections, NATS and Redis stopped), then wrong credentials: the secret is never printed.
TEST_F(SecretsIT, StartCheckAndLostConnectionsNeverPrintASecret) {
  std::string rabbitctl = env_or("RABBITMQCTL", ""), nats_ctl = env_or("OUTBOX_NATS_CTL", ""),
              redis_ctl = env_or("OUTBOX_REDIS_CTL", "");
  if (rabbitctl.empty() || nats_ctl.empty() || redis_ctl.empty())
    GTEST_SKIP() << "needs RABBITMQCTL, OUTBOX_NATS_CTL and OUTBOX_REDIS_CTL (scripts/stack)";
  struct Restart {  // the stack's servers come back whatever happens
    std::string nats, redis;
    ~Restart() {
      sh(nats + " start");
      sh(redis + " start");
    }
  } restart{nats_ctl, redis_ctl};
  // A RabbitMQ user and a Redis ACL user of the test's own, whose passwords hold '/' and '?'
  // (percent-encoded in the URLs, as they must be).
  std::string user = "it_" + tok_;
  ASSERT_EQ(sh(rabbitctl + " add_user " + user + " 'RbQ7x/ssQ7x' >/dev/null"), 0);
  struct DropUser {
    std::string ctl, user;
    ~DropUser() { sh(ctl + " delete_user " + user + " >/dev/null 2>&1"); }
  } drop{rabbitctl, user};
  ASSERT_EQ(sh(rabbitctl + " set_permissions -p / " + user + " '.*' '.*' '.*' >/dev/null"), 0);
  std::string redis_port = redis_hp_.substr(redis_hp_.rfind(':') + 1);
  ASSERT_EQ(sh("redis-cli -p " + redis_port + " ACL SETUSER " + user + " on '>RdQ7x?w0rdQ7x' '~*' '&*' +@all >/dev/null"), 0);
  struct DropRedisUser {
    std::string port, user;
    ~DropRedisUser() { sh("redis-cli -p " + port + " ACL DELUSER " + user + " >/dev/null 2>&1"); }
  } drop_redis{redis_port, user};

  std::string stream = "IT_" + tok_;
  std::string cfg = write_file(".toml", "[[jetstream.streams]]\nname = \"" + stream + "\"\nsubjects = [\"" + base_ +
                                            ".>\"]\nstorage = \"memory\"\n\n[[routes]]\naggregate_type = \"n\"\n"
                                            "sink = \"nats\"\n\n[[routes]]\naggregate_type = \"r\"\nsink = \"redis\"\n");
  auto a = with(with(with(with(with(with(with(args(), "--pg", db_->conninfo() + " password=PgQ7x sslpassword=KeyQ7x"),
                                         "--amqp", "amqp://" + user + ":RbQ7x%2FssQ7x@" + amqp_hp_ + "/"),
                                    "--nats", "nats://TokQ7x@" + nats_hp_),
                               "--redis", "redis://" + user + ":RdQ7x%3Fw0rdQ7x@" + redis_hp_),
                          "--config", cfg),
                     "--nats-subject-prefix", base_ + "."),
                "--redis-stream", base_ + ":{aggregate_type}");
  {
    int rc = 0;
    auto b = a;
    b.push_back("--check");
    std::string out = run_to_exit(b, &rc);
    EXPECT_EQ(rc, 0) << "--check with working credentials:\n" << out;
    EXPECT_EQ(leaked(out), "") << "--check:\n" << out;
  }
  relays_.push_back(std::make_unique<RelayProcess>(a, log_));
  RelayProcess& relay = *relays_.back();
  ASSERT_TRUE(eventually([&] { return streaming(relay) || !relay.running(); }, 20s) && relay.running()) << relay.log();
  db_->exec("SELECT outbox_emit('a.b', '{}'::jsonb, aggregate_type => 'x', aggregate_id => '1')");
  ASSERT_EQ(broker_->collect(1, 15s).size(), 1u) << "published with the secret credentials:\n" << relay.log();
  db_->exec("SELECT outbox_emit('a.b', '{}'::jsonb, aggregate_type => 'n', aggregate_id => '1')");
  db_->exec("SELECT outbox_emit('a.b', '{}'::jsonb, aggregate_type => 'r', aggregate_id => '1')");

  // PostgreSQL: the walsender goes.
  db_->exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'");
  EXPECT_TRUE(eventually([&] { return count_of(relay.log(), "streaming from slot") >= 2; }, 20s)) << relay.log();
  // RabbitMQ closes the relay's connection.
  std::size_t connected = count_of(relay.log(), "connected to RabbitMQ");
  ASSERT_EQ(sh(rabbitctl + " close_all_user_connections " + user + " 'secrets test' >/dev/null"), 0);
  EXPECT_TRUE(eventually([&] { return count_of(relay.log(), "connected to RabbitMQ") > connected; }, 20s)) << relay.log();
  // NATS and Redis go away for a while (the relay logs the loss and its failing reconnects).
  ASSERT_EQ(sh(nats_ctl + " stop"), 0);
  ASSERT_EQ(sh(redis_ctl + " stop"), 0);
  db_->exec("SELECT outbox_emit('a.b', '{}'::jsonb, aggregate_type => 'n', aggregate_id => '2')");
  db_->exec("SELECT outbox_emit('a.b', '{}'::jsonb, aggregate_type => 'r', aggregate_id => '2')");
  std::this_thread::sleep_for(4s);
  ASSERT_EQ(sh(nats_ctl + " start"), 0);
  ASSERT_EQ(sh(redis_ctl + " start"), 0);
  // Redis came back without the ACL user: every attempt is refused (wrong credentials) now.
  std::this_thread::sleep_for(4s);
  EXPECT_TRUE(relay.running()) << relay.log();
  relay.stop();
  std::string out = relay.log();
  EXPECT_NE(out.find("NATS"), std::string::npos) << "the NATS loss was logged:\n" << out;
  EXPECT_NE(out.find("Redis"), std::string::npos) << "the Redis loss was logged:\n" << out;
  EXPECT_EQ(leaked(out), "") << out;
}

// Wrong credentials and closed ports for every server: the errors, retried, never carry the secret.
TEST_F(SecretsIT, RefusedLoginsAndClosedPortsNeverPrintASecret) {
  auto run_for = [&](const std::vector<std::string>& a, std::chrono::seconds how_long) {
    std::string log = log_ + ".run";
    std::remove(log.c_str());
    RelayProcess r(a, log);
    std::this_thread::sleep_for(how_long);
    r.stop();
    std::string out = slurp(log);
    std::remove(log.c_str());
    return out;
  };
  int p = free_port();
  std::string hp = "127.0.0.1:" + std::to_string(p);
  auto pg = db_->conninfo() + " password=PgQ7x";
  struct Run {
    std::vector<std::string> extra;
    std::string says;
  };
  // PostgreSQL works, so the relay gets to open the broker, which refuses the login or is not there.
  const Run runs[] = {
      {{"--amqp", "amqp://guest:WrongQ7x@" + amqp_hp_ + "/,amqp://u:paQ7x@" + hp + "/"}, "refused the login"},
      {{"--default-sink", "nats", "--nats", "nats://TokQ7x@" + hp + ",nats://u:paQ7x@" + hp}, "NATS"},
      {{"--default-sink", "redis", "--redis", "redis://nobody:RdQ7x@" + redis_hp_ + ",redis://u:paQ7x@" + hp},
       "Redis"},
      // PostgreSQL refuses (a role that does not exist) or is not there.
      {{"--pg", db_->conninfo() + " user=nobody_" + tok_ + " password=PgQ7x sslpassword=KeyQ7x"}, "PostgreSQL"},
      {{"--pg", "postgresql://u:PgQ7x@" + hp + "/db?sslpassword=KeyQ7x"}, "PostgreSQL"},
  };
  for (const Run& r : runs) {
    auto a = with(args(), "--pg", pg);
    for (std::size_t i = 0; i + 1 < r.extra.size(); i += 2) a = with(a, r.extra[i], r.extra[i + 1]);
    std::string out = run_for(a, 4s);
    EXPECT_NE(out.find(r.says), std::string::npos) << out;
    EXPECT_EQ(leaked(out), "") << out;
  }
}

// Issue 15 item 6: a standby given the running relay's --http bound the port too (SO_REUSEPORT)
// and /readyz answered for either relay at random. A port in use now stops the start, and --check.
TEST_F(SecretsIT, HttpPortInUseStopsTheSecondRelay) {
  int port = free_port();
  std::string http = "127.0.0.1:" + std::to_string(port);
  RelayProcess& first = start_relay({"--http", http});
  ASSERT_TRUE(first.running()) << first.log();
  for (bool check : {false, true}) {
    auto a = args({"--http", http});
    if (check) a.push_back("--check");
    int rc = 0;
    std::string out = run_to_exit(a, &rc);
    EXPECT_EQ(rc, 2) << (check ? "--check: " : "start: ") << out;
    EXPECT_NE(out.find("--http " + http + ": the port " + std::to_string(port) + " is in use"), std::string::npos) << out;
  }
  EXPECT_TRUE(first.running()) << first.log();
  // Once the port is free again, it starts (SO_REUSEADDR: a restart is not refused for the
  // first relay's connections in TIME_WAIT).
  EXPECT_EQ(first.stop(), 0);
  int rc = 0;
  std::string out = run_to_exit(args({"--http", http, "--check"}), &rc);
  EXPECT_EQ(rc, 0) << out;
}
