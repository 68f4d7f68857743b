#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "config.h"

using namespace outbox;

namespace {
struct Env {
  std::map<std::string, std::string> vars;
  GetEnv fn() {
    return [this](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

Config load(std::vector<std::string> args, Env env = {}) {
  args.insert(args.begin(), "outbox-relay");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return load_config(static_cast<int>(argv.size()), argv.data(), env.fn());
}

std::string write_file(const std::string& text) {
  char name[] = "/tmp/outbox-relay-config-XXXXXX";
  int fd = mkstemp(name);
  close(fd);
  std::ofstream(name) << text;
  return name;
}
}  // namespace

TEST(Config, Defaults) {
  Config c = load({});
  EXPECT_EQ(c.slot, "outbox");
  EXPECT_EQ(c.plugin, "outbox_decoder");
  EXPECT_EQ(c.exchange, "amq.topic");
  EXPECT_EQ(c.max_in_flight, 1000);
  EXPECT_FALSE(c.create_slot);
  EXPECT_EQ(c.sources["slot"], "default");
}

TEST(Config, FlagsOverEnvOverFile) {
  std::string f = write_file("slot = \"from_file\"\nexchange = \"file_ex\"\nmax_in_flight = 7\ncreate-slot = true\nplugin = \"wal2json\"\n");
  Env env;
  env.vars["OUTBOX_RELAY_SLOT"] = "from_env";
  env.vars["OUTBOX_RELAY_EXCHANGE"] = "env_ex";
  Config c = load({"--config", f, "--slot", "from_flag"}, env);
  EXPECT_EQ(c.slot, "from_flag");
  EXPECT_EQ(c.sources["slot"], "flag --slot");
  EXPECT_EQ(c.exchange, "env_ex");
  EXPECT_EQ(c.sources["exchange"], "env OUTBOX_RELAY_EXCHANGE");
  EXPECT_EQ(c.max_in_flight, 7);
  EXPECT_EQ(c.plugin, "wal2json");
  EXPECT_TRUE(c.create_slot);
  std::remove(f.c_str());
}

TEST(Config, ConfigFileFromEnvironmentAndTopology) {
  std::string f = write_file(R"(
amqp = "amqp://u:p@h:1/"
[[topology.exchanges]]
name = "orders"
type = "direct"
[[topology.queues]]
name = "q1"
dead_letter_exchange = "dlx"
message_ttl_ms = 1000
[[topology.bindings]]
queue = "q1"
exchange = "orders"
routing_key = "order.*"
)");
  Env env;
  env.vars["OUTBOX_RELAY_CONFIG"] = f;
  Config c = load({}, env);
  EXPECT_EQ(c.amqp, "amqp://u:p@h:1/");
  ASSERT_EQ(c.topology.exchanges.size(), 1u);
  EXPECT_EQ(c.topology.exchanges[0].type, "direct");
  ASSERT_EQ(c.topology.queues.size(), 1u);
  EXPECT_EQ(c.topology.queues[0].dead_letter_exchange, "dlx");
  EXPECT_EQ(c.topology.queues[0].message_ttl_ms, 1000);
  ASSERT_EQ(c.topology.bindings.size(), 1u);
  EXPECT_EQ(c.topology.bindings[0].routing_key, "order.*");
  std::remove(f.c_str());
}

TEST(Config, AmqpFallsBackToStackVariable) {
  Env env;
  env.vars["OUTBOX_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1234/";
  EXPECT_EQ(load({}, env).amqp, "amqp://guest:guest@127.0.0.1:1234/");
  env.vars["OUTBOX_RELAY_AMQP"] = "amqp://a:b@c/";
  EXPECT_EQ(load({}, env).amqp, "amqp://a:b@c/");
}

TEST(Config, BooleanFromEnvironment) {
  Env env;
  env.vars["OUTBOX_RELAY_CREATE_SLOT"] = "yes";
  EXPECT_TRUE(load({}, env).create_slot);
  env.vars["OUTBOX_RELAY_CREATE_SLOT"] = "maybe";
  EXPECT_THROW(load({}, env), ConfigError);
}

TEST(Config, ErrorsNameTheSettingAndSource) {
  Env env;
  env.vars["OUTBOX_RELAY_MAX_IN_FLIGHT"] = "lots";
  try {
    load({}, env);
    FAIL();
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("max-in-flight"), std::string::npos) << m;
    EXPECT_NE(m.find("OUTBOX_RELAY_MAX_IN_FLIGHT"), std::string::npos) << m;
  }
  EXPECT_THROW(load({"--plugin", "pgoutput"}), ConfigError);
  EXPECT_THROW(load({"--max-in-flight", "0"}), ConfigError);
  EXPECT_THROW(load({"--log-format", "xml"}), ConfigError);
  EXPECT_THROW(load({"--no-such-flag"}), ConfigError);
  EXPECT_THROW(load({"--amqp", "http://x"}), ConfigError);
  std::string f = write_file("slott = \"typo\"\n");
  EXPECT_THROW(load({"--config", f}), ConfigError);
  std::remove(f.c_str());
  std::string g = write_file("slot = \n");
  EXPECT_THROW(load({"--config", g}), ConfigError);
  std::remove(g.c_str());
}

TEST(Config, AmqpTlsFiles) {
  Env env;
  env.vars["OUTBOX_RELAY_AMQP_CACERT"] = "/etc/ca.pem";
  Config c = load({"--amqp", "amqps://u:p@h/", "--amqp-cert", "c.pem", "--amqp-key", "k.pem"}, env);
  EXPECT_EQ(c.amqp_cacert, "/etc/ca.pem");
  EXPECT_EQ(c.amqp_cert, "c.pem");
  EXPECT_EQ(c.amqp_key, "k.pem");
  EXPECT_THROW(load({"--amqp-cert", "c.pem"}), ConfigError);
}

TEST(Config, Shard) {
  EXPECT_EQ(load({"--shard", "1/4"}).shard, "1/4");
  EXPECT_EQ(load({}).shard, "");
  for (const char* bad : {"4/4", "1/0", "x", "1/2/3", "-1/2", "1/65537"}) EXPECT_THROW(load({"--shard", bad}), ConfigError) << bad;
  EXPECT_THROW(load({"--shard", "0/2", "--plugin", "wal2json"}), ConfigError);
}

TEST(Config, HelpAndVersion) {
  try {
    load({"--help"});
    FAIL();
  } catch (const ConfigExit& e) {
    EXPECT_EQ(e.code, 0);
    for (const char* s : {"--pg", "--amqp", "--slot", "--create-slot", "--plugin", "--exchange", "--max-in-flight",
                          "--http", "--log-format", "OUTBOX_RELAY_MAX_IN_FLIGHT", "--config"})
      EXPECT_NE(e.text.find(s), std::string::npos) << s;
  }
  try {
    load({"--version"});
    FAIL();
  } catch (const ConfigExit& e) {
    EXPECT_NE(e.text.find(kRelayVersion), std::string::npos);
  }
}

TEST(Config, DescribeMasksSecrets) {
  Config c = load({"--pg", "host=h password=topsecret", "--amqp", "amqp://u:hunter2@h/"});
  std::string d = describe(c);
  EXPECT_EQ(d.find("topsecret"), std::string::npos);
  EXPECT_EQ(d.find("hunter2"), std::string::npos);
  EXPECT_NE(d.find("***"), std::string::npos);
}
