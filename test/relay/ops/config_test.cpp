#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ops/config.h"
#include "sinks/nats/settings.h"
#include "sinks/rabbitmq/settings.h"
#include "sinks/sink_factory.h"
#include "sinks/sink_kind.h"
#include "support/build_info.h"

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
  EXPECT_EQ(c.settings.source("slot"), "default");
}

TEST(Config, FlagsOverEnvOverFile) {
  std::string f = write_file("slot = \"from_file\"\nexchange = \"file_ex\"\nmax_in_flight = 7\ncreate-slot = true\nplugin = \"wal2json\"\n");
  Env env;
  env.vars["OUTBOX_RELAY_SLOT"] = "from_env";
  env.vars["OUTBOX_RELAY_EXCHANGE"] = "env_ex";
  Config c = load({"--config", f, "--slot", "from_flag"}, env);
  EXPECT_EQ(c.slot, "from_flag");
  EXPECT_EQ(c.settings.source("slot"), "flag --slot");
  EXPECT_EQ(c.exchange, "env_ex");
  EXPECT_EQ(c.settings.source("exchange"), "env OUTBOX_RELAY_EXCHANGE");
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
  EXPECT_EQ(c.settings.text("amqp"), "amqp://u:p@h:1/");
  ASSERT_EQ(rabbitmq_topology(c.settings).exchanges.size(), 1u);
  EXPECT_EQ(rabbitmq_topology(c.settings).exchanges[0].type, "direct");
  ASSERT_EQ(rabbitmq_topology(c.settings).queues.size(), 1u);
  EXPECT_EQ(rabbitmq_topology(c.settings).queues[0].dead_letter_exchange, "dlx");
  EXPECT_EQ(rabbitmq_topology(c.settings).queues[0].message_ttl_ms, 1000);
  ASSERT_EQ(rabbitmq_topology(c.settings).bindings.size(), 1u);
  EXPECT_EQ(rabbitmq_topology(c.settings).bindings[0].routing_key, "order.*");
  std::remove(f.c_str());
}

TEST(Config, AmqpFallsBackToStackVariable) {
  Env env;
  env.vars["OUTBOX_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1234/";
  EXPECT_EQ(load({}, env).settings.text("amqp"), "amqp://guest:guest@127.0.0.1:1234/");
  env.vars["OUTBOX_RELAY_AMQP"] = "amqp://a:b@c/";
  EXPECT_EQ(load({}, env).settings.text("amqp"), "amqp://a:b@c/");
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
  EXPECT_EQ(c.settings.text("amqp-cacert"), "/etc/ca.pem");
  EXPECT_EQ(c.settings.text("amqp-cert"), "c.pem");
  EXPECT_EQ(c.settings.text("amqp-key"), "k.pem");
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
    // The product version and the commit it was built from, on one line.
    EXPECT_EQ(e.text, std::string("outbox-relay ") + kRelayVersion + " (commit " + kBuildCommit + ")\n");
  }
}

TEST(Config, DescribeMasksSecrets) {
  Config c = load({"--pg", "host=h password=topsecret", "--amqp", "amqp://u:hunter2@h/"});
  std::string d = describe(c);
  EXPECT_EQ(d.find("topsecret"), std::string::npos);
  EXPECT_EQ(d.find("hunter2"), std::string::npos);
  EXPECT_NE(d.find("***"), std::string::npos);
}

namespace {
// The message of the ConfigError that loading throws ("" if none).
std::string error_of(std::vector<std::string> args, Env env = {}) {
  try {
    load(std::move(args), env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }
}  // namespace

// --create-slot=false turned slot creation on: boolean flags take a value, and the environment
// and the file take the same spellings.
TEST(Config, BooleanFlagsTakeAValue) {
  for (const char* off : {"--create-slot=false", "--create-slot=0", "--create-slot=no", "--create-slot=off"})
    EXPECT_FALSE(load({off}).create_slot) << off;
  for (const char* on : {"--create-slot", "--create-slot=true", "--create-slot=1", "--create-slot=yes"})
    EXPECT_TRUE(load({on}).create_slot) << on;
  EXPECT_EQ(load({"--create-slot=false"}).settings.source("create-slot"), "flag --create-slot");
  EXPECT_TRUE(has(error_of({"--create-slot=maybe"}), "create-slot")) << error_of({"--create-slot=maybe"});
  EXPECT_FALSE(load({"--check=false"}).check);
  EXPECT_FALSE(load({"--check=0"}).check);
  EXPECT_TRUE(load({"--check"}).check);
  Env env;
  for (const char* off : {"false", "0", "no", "off"}) {
    env.vars["OUTBOX_RELAY_CREATE_SLOT"] = off;
    EXPECT_FALSE(load({}, env).create_slot) << off;
  }
  env.vars["OUTBOX_RELAY_CREATE_SLOT"] = "1";
  EXPECT_TRUE(load({}, env).create_slot);
  EXPECT_FALSE(load({"--create-slot=false"}, env).create_slot) << "the flag's value wins over the environment";
  for (const char* text : {"create_slot = false\n", "create_slot = 0\n", "create_slot = \"no\"\n"}) {
    std::string f = write_file(text);
    EXPECT_FALSE(load({"--config", f}).create_slot) << text;
    std::remove(f.c_str());
  }
  std::string f = write_file("create_slot = \"yes\"\n");
  EXPECT_TRUE(load({"--config", f}).create_slot);
  std::remove(f.c_str());
}

// --http 127.0.0.1:99999 logged that port and listened on another: ports outside 0-65535 and
// ports that are not numbers stop the start.
TEST(Config, HttpAddressNeedsAPortFrom0To65535) {
  for (const char* bad : {"127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:x", "127.0.0.1:-1", "127.0.0.1:", "localhost",
                          ":9187", "127.0.0.1:9187x"}) {
    std::string e = error_of({"--http", bad});
    EXPECT_TRUE(has(e, "setting http") && has(e, "0 to 65535")) << bad << ": " << e;
  }
  EXPECT_EQ(load({"--http", "127.0.0.1:65535"}).http, "127.0.0.1:65535");
  EXPECT_EQ(load({"--http", "127.0.0.1:0"}).http, "127.0.0.1:0");
  EXPECT_EQ(load({"--http", "off"}).http, "");
  EXPECT_EQ(load({"--http", ""}).http, "");
}

// AMQP takes heartbeats of 0-65535 s; beyond, the login failed with "check user, password and vhost".
TEST(Config, HeartbeatInAmqpsRange) {
  EXPECT_EQ(load({"--heartbeat", "65535"}).settings.integer("heartbeat"), 65535);
  EXPECT_EQ(load({"--heartbeat", "0"}).settings.integer("heartbeat"), 0);
  std::string e = error_of({"--heartbeat", "65536"});
  EXPECT_TRUE(has(e, "heartbeat") && has(e, "0 to 65535")) << e;
  EXPECT_FALSE(has(e, "password")) << e;
}

// PostgreSQL's rule for slot names, at start rather than as a server error at every attempt.
TEST(Config, SlotNameFollowsPostgresqlsRule) {
  EXPECT_EQ(load({"--slot", "outbox_2"}).slot, "outbox_2");
  EXPECT_EQ(load({"--slot", std::string(63, 'a')}).slot, std::string(63, 'a'));
  for (const std::string& bad : {std::string("Bad-Name"), std::string("UPPER"), std::string("with space"),
                                 std::string("dot.ted"), std::string(64, 'a'), std::string("caf\xc3\xa9")}) {
    std::string e = error_of({"--slot", bad, "--create-slot"});
    EXPECT_TRUE(has(e, "setting slot") && has(e, "lower-case letters, digits and underscores, at most 63 bytes"))
        << bad << ": " << e;
  }
}

// Unknown libpq keywords were found at every connection attempt (and retried): now at start,
// in key=value and URI form, with the secrets of the string masked.
TEST(Config, ConninfoIsParsedAtStart) {
  EXPECT_EQ(load({"--pg", "host=h dbname=d sslmode=verify-full"}).pg, "host=h dbname=d sslmode=verify-full");
  EXPECT_EQ(load({"--pg", "postgresql://u@h:5432/d?sslmode=require"}).pg, "postgresql://u@h:5432/d?sslmode=require");
  std::string e = error_of({"--pg", "hots=db password=Sekr3t"});
  EXPECT_TRUE(has(e, "setting pg") && has(e, "hots") && has(e, "libpq")) << e;
  EXPECT_FALSE(has(e, "Sekr3t")) << e;
  e = error_of({"--pg", "postgresql://u:Sekr3t@h/db?hots=x"});
  EXPECT_TRUE(has(e, "setting pg") && has(e, "hots")) << e;
  EXPECT_FALSE(has(e, "Sekr3t")) << e;
  EXPECT_TRUE(has(error_of({"--pg", "host='unterminated"}), "setting pg"));
}

// An AMQP URL that rabbitmq-c cannot parse was retried as a connection error.
TEST(Config, AmqpUrlIsParsedAtStart) {
  for (const char* bad : {"amqp://u:p@h:99999/", "amqp://u:p@h:port/", "amqp://u:p@h:0/"}) {
    std::string e = error_of({"--amqp", bad});
    EXPECT_TRUE(has(e, "setting amqp") && has(e, "not a valid AMQP URL")) << bad << ": " << e;
  }
  EXPECT_FALSE(has(error_of({"--amqp", "amqp://u:Sekr3t@h:99999/"}), "Sekr3t"));
  EXPECT_EQ(load({"--amqp", "amqps://u:p@h/vh"}).settings.text("amqp"), "amqps://u:p@h/vh");
}

// Settings that cannot work together.
TEST(Config, RetryAndReconnectBoundsInOrder) {
  std::string e = error_of({"--retry-base-ms", "500", "--retry-max-ms", "100"});
  EXPECT_TRUE(has(e, "retry-max-ms") && has(e, "retry-base-ms")) << e;
  e = error_of({"--reconnect-min-ms", "5000", "--reconnect-max-ms", "100"});
  EXPECT_TRUE(has(e, "reconnect-min-ms") && has(e, "reconnect-max-ms")) << e;
  Env env;
  env.vars["OUTBOX_RELAY_RETRY_BASE_MS"] = "20000";  // above the default cap
  EXPECT_TRUE(has(error_of({}, env), "env OUTBOX_RELAY_RETRY_BASE_MS"));
  EXPECT_EQ(load({"--retry-base-ms", "100", "--retry-max-ms", "100"}).retry_max_ms, 100);
  EXPECT_EQ(load({"--reconnect-min-ms", "100", "--reconnect-max-ms", "100"}).reconnect_max_ms, 100);
  // Parking needs an order: with none, an aggregate's later events may already be out.
  e = error_of({"--ordering", "none", "--on-dead-letter", "park"});
  EXPECT_TRUE(has(e, "ordering") && has(e, "park") && has(e, "fix:")) << e;
  EXPECT_EQ(load({"--ordering", "none"}).ordering, "none");
}

// The file: unknown keys and wrong types inside [[topology.*]] and arrays or tables for scalar
// settings were silently ignored (`typ = "fanout"` made a topic exchange, `slot = ["p","q"]`
// fell back to the default). Each is an error with its line.
TEST(Config, FileMistakesAreErrorsWithTheLine) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"slot = \"ok\"\n[[topology.exchanges]]\nname = \"e\"\ntyp = \"fanout\"\n", "line 4: [[topology.exchanges]] has an unknown key \"typ\""},
      {"[[topology.exchanges]]\nname = \"e\"\ntype = \"fanot\"\n", "line 3: [[topology.exchanges]] type = \"fanot\" is not one of"},
      {"[[topology.exchanges]]\nname = \"e\"\ndurable = \"yes\"\n", "line 3: [[topology.exchanges]] durable is a string"},
      {"[[topology.queues]]\nname = \"q\"\n\nmessage_ttl_ms = \"1000\"\n", "line 4: [[topology.queues]] message_ttl_ms is a string"},
      {"[[topology.queues]]\nname = \"q\"\nmax_length = -1\n", "line 3: [[topology.queues]] max_length"},
      {"[[topology.queues]]\nname = \"q\"\nqueue_type = \"quorom\"\n", "line 3: [[topology.queues]] queue_type"},
      {"[[topology.queues]]\nname = 7\n", "line 2: [[topology.queues]] name is an integer"},
      {"[[topology.queues]]\nname = \"q\"\nmax_priority = 0\n", "line 3: [[topology.queues]] max_priority = 0 is outside 1..255"},
      {"[[topology.queues]]\nname = \"q\"\nmax_priority = 256\n", "line 3: [[topology.queues]] max_priority = 256 is outside 1..255"},
      {"[[topology.queues]]\nname = \"q\"\nmax_priority = \"9\"\n", "line 3: [[topology.queues]] max_priority is a string"},
      {"[[topology.queues]]\nname = \"q\"\nqueue_type = \"quorum\"\nmax_priority = 9\n",
       "line 4: [[topology.queues]] \"q\": max_priority is for classic queues; quorum queues have no x-max-priority -- fix"},
      {"[[topology.queues]]\nnmae = \"q\"\n", "line 2: [[topology.queues]] has an unknown key \"nmae\""},
      {"[[topology.bindings]]\nqueue = \"q\"\nexchange = \"e\"\nrouting-key = \"k\"\n", "line 4: [[topology.bindings]] has an unknown key \"routing-key\""},
      {"[[topology.bindings]]\nqueue = \"q\"\n", "every [[topology.bindings]] needs a non-empty exchange"},
      {"[topology]\nexchange = \"e\"\n", "line 2: topology has an unknown key \"exchange\""},
      {"[topology.exchanges]\nname = \"e\"\n", "topology.exchanges is a table"},
      {"topology = 1\n", "line 1: topology is an integer"},
      {"\nslot = [\"p\", \"q\"]\n", "line 2: setting slot is an array"},
      {"[slot]\nname = \"p\"\n", "line 1: setting slot is a table"},
      {"max_in_flight = 1.5\n", "line 1: setting max-in-flight is a float"},
      {"max_in_flight = 10\nmax-in-flight = 20\n", "given twice"},
      {"slott = \"typo\"\n", "line 1: unknown setting \"slott\""},
  };
  for (const Case& c : cases) {
    std::string f = write_file(c.text);
    std::string e = error_of({"--config", f});
    EXPECT_TRUE(has(e, c.says)) << c.text << "\ngot: " << e;
    EXPECT_TRUE(e.empty() || has(e, f)) << "names the file: " << e;
    std::remove(f.c_str());
  }
  // What is right still loads, x- exchange types (plugins) included.
  std::string f = write_file("[[topology.exchanges]]\nname = \"d\"\ntype = \"x-delayed-message\"\ndurable = false\n"
                             "[[topology.queues]]\nname = \"q\"\nqueue_type = \"quorum\"\nmax_length = 0\n"
                             "[[topology.queues]]\nname = \"p\"\nmax_priority = 9\n");
  Config c = load({"--config", f});
  ASSERT_EQ(rabbitmq_topology(c.settings).exchanges.size(), 1u);
  EXPECT_EQ(rabbitmq_topology(c.settings).exchanges[0].type, "x-delayed-message");
  EXPECT_FALSE(rabbitmq_topology(c.settings).exchanges[0].durable);
  EXPECT_EQ(rabbitmq_topology(c.settings).queues[0].max_length, 0);
  EXPECT_FALSE(rabbitmq_topology(c.settings).queues[0].max_priority);
  EXPECT_EQ(rabbitmq_topology(c.settings).queues[1].max_priority, 9);
  std::remove(f.c_str());
}

// Several broker addresses: a comma list (flag, environment), the flag repeated, or an array in
// the file; each URL validated at start, the bad one named, its password masked.
TEST(Config, AmqpTakesSeveralAddresses) {
  Config c = load({"--amqp", "amqp://u:p@h1:1/, amqp://u:p@h2:2/,amqps://u:p@h3:3/"});
  EXPECT_EQ(c.settings.urls("amqp"), (std::vector<std::string>{"amqp://u:p@h1:1/", "amqp://u:p@h2:2/", "amqps://u:p@h3:3/"}));
  Config r = load({"--amqp", "amqp://u:p@h1:1/", "--amqp", "amqp://u:p@h2:2/"});
  EXPECT_EQ(r.settings.urls("amqp"), (std::vector<std::string>{"amqp://u:p@h1:1/", "amqp://u:p@h2:2/"}));
  Env env;
  env.vars["OUTBOX_RELAY_AMQP"] = "amqp://a:b@c:1/,amqp://a:b@d:2/";
  EXPECT_EQ(load({}, env).settings.urls("amqp").size(), 2u);
  std::string f = write_file("amqp = [\"amqp://u:p@h1:1/\", \"amqp://u:p@h2:2/\"]\n");
  Config fc = load({"--config", f});
  EXPECT_EQ(fc.settings.urls("amqp"), (std::vector<std::string>{"amqp://u:p@h1:1/", "amqp://u:p@h2:2/"}));
  EXPECT_EQ(fc.settings.source("amqp"), "file " + f);
  std::remove(f.c_str());
  EXPECT_EQ(load({}).settings.urls("amqp"), (std::vector<std::string>{"amqp://guest:guest@127.0.0.1:5672/"})) << "one by default";
  std::string d = describe(load({"--amqp", "amqp://u:Sekr3t@h1:1/,amqp://u:Sekr3t@h2:2/"}));
  EXPECT_FALSE(has(d, "Sekr3t")) << d;
  EXPECT_TRUE(has(d, "amqp://u:***@h1:1/,amqp://u:***@h2:2/")) << d;
}

TEST(Config, AmqpAddressListMistakesNameTheUrl) {
  std::string e = error_of({"--amqp", "amqp://u:p@h1:1/,amqp://u:Sekr3t@h2:99999/"});
  EXPECT_TRUE(has(e, "URL 2 of 2") && has(e, "not a valid AMQP URL")) << e;
  EXPECT_FALSE(has(e, "Sekr3t")) << e;
  e = error_of({"--amqp", "amqp://u:p@h1:1/,"});
  EXPECT_TRUE(has(e, "URL 2 of 2") && has(e, "is empty") && has(e, "fix")) << e;
  e = error_of({"--amqp", "amqp://u:p@h1:1/,http://h2/"});
  EXPECT_TRUE(has(e, "not an amqp:// or amqps:// URL")) << e;
  std::string f = write_file("amqp = [\"amqp://u:p@h1:1/\", 5]\n");
  e = error_of({"--config", f});
  EXPECT_TRUE(has(e, "line 1") && has(e, "an integer")) << e;
  std::remove(f.c_str());
  f = write_file("amqp = []\n");
  EXPECT_TRUE(has(error_of({"--config", f}), "empty array"));
  std::remove(f.c_str());
}

TEST(Config, SplitUrlList) {
  EXPECT_EQ(split_url_list("a"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(split_url_list(" a , b,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_url_list("a,,b"), (std::vector<std::string>{"a", "", "b"}));
}

// A silent broker is noticed within 2 x heartbeat (+1 s): 10 s by default, so within about 21 s.
TEST(Config, HeartbeatAndConnectTimeoutDefaults) {
  Config c = load({});
  EXPECT_EQ(c.settings.integer("heartbeat"), 10);
  EXPECT_EQ(c.settings.integer("amqp-connect-timeout-ms"), 10000);
  EXPECT_EQ(load({"--amqp-connect-timeout-ms", "500"}).settings.integer("amqp-connect-timeout-ms"), 500);
  EXPECT_TRUE(has(error_of({"--amqp-connect-timeout-ms", "0"}), "amqp-connect-timeout-ms"));
  EXPECT_EQ(c.settings.integer("amqp-confirm-timeout-ms"), 30000);
  EXPECT_EQ(load({"--amqp-confirm-timeout-ms", "0"}).settings.integer("amqp-confirm-timeout-ms"), 0) << "0 = never";
  EXPECT_TRUE(has(error_of({"--amqp-confirm-timeout-ms", "-1"}), "amqp-confirm-timeout-ms"));
}

TEST(Config, SinksInUseAreTheDefaultAndTheRoutedOnes) {
  Config plain = load({});
  EXPECT_EQ(plain.sinks, std::vector<std::string>{"rabbitmq"});
  EXPECT_TRUE(plain.routes.empty());

  std::string f = write_file(
      "nats = \"nats://127.0.0.1:4222\"\n"
      "redis = \"redis://127.0.0.1:6379/0\"\n"
      "[[routes]]\nmatch = \"user.*\"\nsink = \"nats\"\n"
      "[[routes]]\naggregate_type = \"Order\"\nexchange = \"audit*\"\nsink = \"redis\"\n"
      "[[jetstream.streams]]\nname = \"OUTBOX\"\nsubjects = [\"outbox.>\"]\nstorage = \"memory\"\nreplicas = 1\n"
      "duplicate_window_ms = 60000\n");
  Config c = load({"--config", f});
  EXPECT_EQ(c.sinks, (std::vector<std::string>{"rabbitmq", "nats", "redis"}));
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].event_type, std::optional<std::string>("user.*"));
  EXPECT_EQ(c.routes[0].sink, "nats");
  EXPECT_EQ(c.routes[1].aggregate_type, std::optional<std::string>("Order"));
  EXPECT_EQ(c.routes[1].exchange, std::optional<std::string>("audit*"));
  EXPECT_FALSE(c.routes[1].event_type.has_value());
  EXPECT_GT(c.routes[1].line, c.routes[0].line);
  ASSERT_EQ(nats_streams(c.settings).size(), 1u);
  EXPECT_EQ(nats_streams(c.settings)[0].storage, "memory");
  EXPECT_EQ(nats_streams(c.settings)[0].duplicate_window_ms, 60000);

  // Only NATS: RabbitMQ is not used (nor connected to) at all.
  Config n = load({"--nats", "nats://h:4222", "--default-sink", "nats"});
  EXPECT_EQ(n.sinks, std::vector<std::string>{"nats"});
  // Configured but used by nothing: kept aside for a warning.
  Config u = load({"--redis", "redis://h"});
  EXPECT_EQ(u.sinks, std::vector<std::string>{"rabbitmq"});
  EXPECT_EQ(u.unused_sinks, std::vector<std::string>{"redis"});
}

TEST(Config, RouteAndSinkMistakesNameTheLineAndTheFix) {
  auto error_of = [](std::vector<std::string> args) {
    try {
      load(std::move(args));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto has = [](const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; };
  std::string e = error_of({"--config", write_file("[[routes]]\nmatch = \"user.*\"\nsink = \"nats\"\n")});
  EXPECT_TRUE(has(e, "line 1") && has(e, "setting nats (the server URL) is not given")) << e;
  e = error_of({"--config", write_file("nats = \"nats://h\"\n[[routes]]\nmatch = \"x\"\nsink = \"kafka\"\n")});
  EXPECT_TRUE(has(e, "not one of rabbitmq, nats, redis")) << e;
  e = error_of({"--config", write_file("[[routes]]\nmatch = \"x\"\nsinc = \"nats\"\n")});
  EXPECT_TRUE(has(e, "unknown key \"sinc\"")) << e;
  e = error_of({"--config", write_file("[[routes]]\nmatch = \"\"\nsink = \"rabbitmq\"\n")});
  EXPECT_TRUE(has(e, "match is empty")) << e;
  // event_type, an undocumented second name of match, was listed among the known keys.
  e = error_of({"--config", write_file("[[routes]]\nmatch = \"x\"\nsinc = \"nats\"\n")});
  EXPECT_FALSE(has(e, "event_type")) << e;
  e = error_of({"--config", write_file("[[routes]]\nevent_type = \"y\"\nsink = \"rabbitmq\"\n")});
  EXPECT_TRUE(has(e, "line 2") && has(e, "no key event_type") && has(e, "fix: match = ")) << e;
  // RabbitMQ's '#' matched nothing, silently.
  e = error_of({"--config", write_file("[[routes]]\nmatch = \"user.#\"\nsink = \"rabbitmq\"\n")});
  EXPECT_TRUE(has(e, "line 2") && has(e, "'#' is RabbitMQ's wildcard") && has(e, "fix: match = \"user.*\"")) << e;
  e = error_of({"--config", write_file("[[routes]]\nexchange = \"audit.#\"\nsink = \"rabbitmq\"\n")});
  EXPECT_TRUE(has(e, "fix: exchange = \"audit.*\"")) << e;
  e = error_of({"--default-sink", "redis"});
  EXPECT_TRUE(has(e, "give --redis URL")) << e;
  e = error_of({"--default-sink", "sqs"});
  EXPECT_TRUE(has(e, "not one of rabbitmq, nats, redis")) << e;
  e = error_of({"--nats", "http://h:4222"});
  EXPECT_TRUE(has(e, "not a nats:// or tls:// URL")) << e;
  e = error_of({"--redis", "redis://h,"});
  EXPECT_TRUE(has(e, "an empty entry")) << e;
  e = error_of({"--redis", "rediss://h", "--redis-cert", "c.pem"});
  EXPECT_TRUE(has(e, "redis-cert and redis-key go together")) << e;
  e = error_of({"--config", write_file("[[jetstream.streams]]\nname = \"S\"\n")});
  EXPECT_TRUE(has(e, "needs subjects")) << e;
  e = error_of({"--config", write_file("[[jetstream.streams]]\nname = \"S\"\nsubjects = [\"a\"]\nstorage = \"disk\"\n")});
  EXPECT_TRUE(has(e, "storage = \"disk\" is not one of file, memory")) << e;
}

TEST(Config, NatsSubjectPrefixCannotOpenTheServersApi) {
  for (const char* bad : {"", "$JS.API.", "$KV.", "_INBOX."}) {
    try {
      load({"--nats", "nats://h:4222", "--nats-subject-prefix", bad});
      ADD_FAILURE() << "accepted prefix \"" << bad << "\"";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("server's API"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(load({"--nats-subject-prefix", "events."}).settings.text("nats-subject-prefix"), "events.");
}

TEST(Config, SettingsThatNothingInUseReadsAreNamed) {
  Config c = load({"--nats", "nats://h:4222", "--default-sink", "nats", "--exchange", "events", "--redis-stream", "s",
                   "--nats-cacert", "ca.pem"});
  auto has = [&](const std::string& part) {
    for (const auto& i : c.ignored)
      if (i.find(part) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("exchange (RabbitMQ is not in use)"));
  EXPECT_TRUE(has("redis-stream (Redis is not in use)"));
  EXPECT_TRUE(has("nats-cacert (no tls:// URL)"));
  EXPECT_TRUE(load({}).ignored.empty());
}

// The start line showed exchange=amq.topic for a relay that publishes to NATS only.
TEST(Config, TheStartLineShowsTheExchangeOnlyWhenRabbitMqIsInUse) {
  std::string nats = describe(load({"--nats", "nats://h:4222", "--default-sink", "nats"}));
  EXPECT_FALSE(has(nats, "exchange=")) << nats;
  EXPECT_TRUE(has(nats, " sinks=nats ")) << nats;
  std::string amqp = describe(load({"--exchange", "events"}));
  EXPECT_TRUE(has(amqp, " exchange=events ")) << amqp;
}

// What the table of settings guarantees for every row, the sinks' included: a row is all it
// takes for a setting to have its flag, its variable, its file key, its help and its checks.

TEST(SettingsTable, EveryRowHasAUniqueNameAnEnvironmentVariableAndAHelpLineInHelp) {
  std::string help;
  try {
    load({"--help"});
  } catch (const ConfigExit& e) {
    help = e.text;
  }
  std::set<std::string> names;
  for (const Setting& s : settings_table()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name << " is declared twice";
    EXPECT_FALSE(s.help.empty()) << s.name;
    std::string env = env_name(s.name);
    EXPECT_EQ(env.rfind("OUTBOX_RELAY_", 0), 0u) << env;
    EXPECT_EQ(env.find_first_of("-abcdefghijklmnopqrstuvwxyz"), std::string::npos) << env;
    EXPECT_TRUE(has(help, "--" + s.name + " ")) << s.name << " is not in --help";
    EXPECT_TRUE(has(help, s.help + " [env " + env + "; default: ")) << s.name << "'s help line";
  }
}

TEST(SettingsTable, EveryOwnerIsARegisteredSinkThatDeclaresTheRow) {
  const std::vector<std::string> names = sink_kind_names();
  std::set<std::string> kinds(names.begin(), names.end());
  EXPECT_EQ(kinds.size(), sink_kinds().size()) << "two sink kinds with one name";
  for (const Setting& s : settings_table())
    if (!s.owner.empty()) EXPECT_TRUE(kinds.count(s.owner)) << s.name << " is owned by " << s.owner;
  for (const SinkKind& k : sink_kinds()) {
    bool server = false;
    for (const Setting& s : k.rows) {
      EXPECT_EQ(s.owner, k.name) << s.name;
      server = server || (s.name == k.server && s.type == SettingType::UrlList);
    }
    EXPECT_TRUE(server) << k.name << "'s server " << k.server << " is not one of its URL-list rows";
    EXPECT_TRUE(has(error_of({"--default-sink", "none"}), k.name)) << "the known sinks come from the registry";
  }
}

TEST(SettingsTable, EveryRowIsReadFromFlagEnvironmentAndFileInThatOrder) {
  for (const Setting& s : settings_table()) {
    const std::string& v = s.def;  // every default passes its own checks
    std::string key = s.name;
    std::replace(key.begin(), key.end(), '-', '_');
    std::string f = write_file(key + " = \"" + v + "\"\n");
    EXPECT_EQ(load({"--config", f}).settings.source(s.name), "file " + f) << s.name;
    Env env;
    env.vars[env_name(s.name)] = v;
    EXPECT_EQ(load({"--config", f}, env).settings.source(s.name), "env " + env_name(s.name)) << s.name;
    if (!v.empty())
      EXPECT_EQ(load({"--config", f, "--" + s.name + "=" + v}, env).settings.source(s.name), "flag --" + s.name)
          << s.name;
    EXPECT_EQ(load({}).settings.text(s.name), s.def) << s.name;
    std::remove(f.c_str());
  }
}

TEST(SettingsTable, IntegersOutOfTheirRangeNameTheSettingAndTheRange) {
  for (const Setting& s : settings_table()) {
    if (s.type != SettingType::Integer) continue;
    Env env;
    env.vars[env_name(s.name)] = std::to_string(s.max + 1);
    std::string e = error_of({}, env);
    EXPECT_TRUE(has(e, "setting " + s.name + " (from env " + env_name(s.name) + ")") &&
                has(e, "from " + std::to_string(s.min) + " to " + std::to_string(s.max)))
        << e;
  }
}

namespace {
// A URL of one of the schemes of `kind`'s server, other than `but` (a TLS one).
std::string server_url(const SinkKind& kind, const std::string& but = "") {
  for (const Setting& s : kind.rows)
    if (s.name == kind.server)
      for (const std::string& scheme : s.choices)
        if (scheme != but) return scheme + "h";
  return "";
}
}  // namespace

TEST(SettingsTable, SettingsOfASinkNotInUseAreReportedAsIgnored) {
  for (const SinkKind& k : sink_kinds()) {
    // Another sink is the only one in use.
    const SinkKind& other = sink_kinds()[&k == &sink_kinds()[0] ? 1 : 0];
    for (const Setting& s : k.rows) {
      Env env;
      env.vars[env_name(other.server)] = server_url(other);
      env.vars["OUTBOX_RELAY_DEFAULT_SINK"] = other.name;
      env.vars[env_name(s.name)] = s.def;
      Config c = load({}, env);
      ASSERT_EQ(c.sinks, std::vector<std::string>{other.name});
      bool named = false;
      for (const std::string& i : c.ignored) named = named || i == s.name + " (" + k.display_name + " is not in use)";
      EXPECT_EQ(named, s.name != k.server) << s.name << " given while " << k.name << " is not in use";
    }
  }
}

TEST(SettingsTable, TlsFilesWithoutATlsUrlAreReportedAsIgnored) {
  for (const Setting& s : settings_table()) {
    if (s.tls_scheme.empty()) continue;
    const SinkKind& k = *find_sink_kind(s.owner);
    Env env;
    env.vars[env_name(k.server)] = server_url(k, s.tls_scheme);
    env.vars["OUTBOX_RELAY_DEFAULT_SINK"] = k.name;
    env.vars[env_name(s.name)] = "f.pem";
    for (const Setting& p : k.rows)  // with the setting it goes with, if any
      if (p.pair == s.name || s.pair == p.name) env.vars[env_name(p.name)] = "p.pem";
    Config c = load({}, env);
    EXPECT_NE(std::find(c.ignored.begin(), c.ignored.end(), s.name + " (no " + s.tls_scheme + " URL)"), c.ignored.end())
        << s.name;
    env.vars[env_name(k.server)] = s.tls_scheme + "h";
    EXPECT_TRUE(load({}, env).ignored.empty()) << s.name;
  }
}

TEST(SettingsTable, PairedSettingsAreGivenTogether) {
  for (const Setting& s : settings_table()) {
    if (s.pair.empty()) continue;
    EXPECT_TRUE(has(error_of({"--" + s.name, "c.pem"}), "settings " + s.name + " and " + s.pair + " go together"));
    EXPECT_TRUE(has(error_of({"--" + s.pair, "k.pem"}), "settings " + s.name + " and " + s.pair + " go together"));
  }
}

// relay/README.md is the operator's reference: what the relay reads must be in its tables.
namespace {
// The part of relay/README.md under `heading` (a whole heading line), up to the next heading.
std::string readme_section(const std::string& heading) {
  std::ifstream in(std::string(OUTBOX_SOURCE_DIR) + "/relay/README.md");
  std::stringstream text;
  text << in.rdbuf();
  std::string t = text.str();
  std::size_t at = t.find("\n" + heading + "\n");
  if (at == std::string::npos) return "";
  std::size_t end = t.find("\n#", at + heading.size() + 2);
  return t.substr(at, end == std::string::npos ? std::string::npos : end - at);
}
// The keys a table of the file accepts, as the error for an unknown key lists them.
std::vector<std::string> known_keys(const std::string& toml) {
  std::string f = write_file(toml);
  std::string e = error_of({"--config", f});
  std::remove(f.c_str());
  std::vector<std::string> keys;
  std::size_t at = e.find("(known: ");
  if (at == std::string::npos) return keys;
  std::stringstream list(e.substr(at + 8, e.find(')', at) - at - 8));
  for (std::string k; std::getline(list, k, ',');) keys.push_back(k.substr(k.find_first_not_of(' ')));
  return keys;
}
}  // namespace

TEST(Docs, EverySettingIsInRelayReadmesSettingsTable) {
  std::string table = readme_section("## Settings");
  ASSERT_FALSE(table.empty());
  for (const Setting& s : settings_table()) {
    bool listed = false;
    for (const char* after : {" ", "`", "[", "="}) listed = listed || has(table, "`--" + s.name + after);
    EXPECT_TRUE(listed) << "--" << s.name << " is not in relay/README.md's settings table";
  }
}

// [[routes]] and [[jetstream.streams]] appeared only in an example, without their keys.
TEST(Docs, EveryKeyOfRoutesAndJetStreamStreamsIsInRelayReadmesTables) {
  const std::vector<std::pair<std::string, std::string>> tables = {
      {"### `[[routes]]`", "[[routes]]\nsink = \"rabbitmq\"\nno_such_key = \"x\"\n"},
      {"### `[[jetstream.streams]]`",
       "nats = \"nats://h:4222\"\n[[jetstream.streams]]\nname = \"S\"\nsubjects = [\"outbox.>\"]\nno_such_key = 1\n"},
  };
  for (const auto& [heading, toml] : tables) {
    std::string section = readme_section(heading);
    EXPECT_FALSE(section.empty()) << heading << " is not a heading of relay/README.md";
    std::vector<std::string> keys = known_keys(toml);
    EXPECT_GE(keys.size(), 4u) << heading;
    for (const std::string& k : keys)
      EXPECT_TRUE(has(section, "\n| `" + k + "` |")) << k << " of " << heading << " has no row in relay/README.md";
  }
}

// Every sink reads --cloudevents-source: given with NATS alone it is in use, not ignored. A value
// no consumer could read as a URI-reference stops the start.
TEST(Config, CloudEventsSourceIsReadByEverySink) {
  Config c = load({"--nats", "nats://h:4222", "--default-sink", "nats", "--cloudevents-source", "/orders-db"});
  EXPECT_TRUE(c.ignored.empty()) << c.ignored[0];
  EXPECT_EQ(c.settings.text("cloudevents-source"), "/orders-db");
  const Setting* row = nullptr;
  for (const Setting& s : settings_table())
    if (s.name == "cloudevents-source") row = &s;
  ASSERT_TRUE(row);
  EXPECT_EQ(row->owner, "") << "a core row";
  EXPECT_TRUE(has(row->help, "RabbitMQ, NATS and Redis")) << row->help;
  EXPECT_TRUE(has(error_of({"--cloudevents-source", "/orders db"}),
                  "setting cloudevents-source (from flag --cloudevents-source): \"/orders db\" holds a space"));
  EXPECT_TRUE(has(error_of({"--cloudevents-source", "/a\nb"}), "a control character"));
  EXPECT_TRUE(has(error_of({"--cloudevents-source", "/" + std::string(1024, 'a')}), "1025 bytes, more than the 1024"));
  EXPECT_NO_THROW(load({"--cloudevents-source", "https://example.com/orders?db=1"}));
}

// The default exchange and app_id are AMQP short strings in every message: longer than 255
// bytes, every event would become a dead letter, so the relay refuses to start.
TEST(Config, ShortStringSettingsAreCheckedAtStart) {
  for (const char* name : {"exchange", "app-id"}) {
    EXPECT_NO_THROW(load({std::string("--") + name, std::string(255, 'x')})) << name;
    try {
      load({std::string("--") + name, std::string(256, 'x')});
      ADD_FAILURE() << name << " of 256 bytes was accepted";
    } catch (const ConfigError& e) {
      std::string want = std::string("setting ") + name + " (from flag --" + name + ") is 256 bytes long, more than the 255 bytes";
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

// An unknown flag said "The following arguments were not expected: dbname=shop --database
// (boolean flags take =true, ...)": the hint about booleans where no boolean was given, and no
// word of the flag meant. Now the nearest flag is named, the file's spelling with '_' points to
// the flag's, and the boolean hint comes only after a boolean flag.
TEST(Config, UnknownFlagsNameTheNearestOne) {
  std::string e = error_of({"--database", "dbname=shop"});
  EXPECT_TRUE(has(e, "unknown flag --database -- did you mean --pg")) << e;
  EXPECT_FALSE(has(e, "boolean")) << e;
  EXPECT_FALSE(has(e, "dbname=shop")) << "the value of an unknown flag is not a second mistake: " << e;
  e = error_of({"--database=dbname=shop"});
  EXPECT_TRUE(has(e, "did you mean --pg")) << e;
  e = error_of({"--create_slot"});
  EXPECT_TRUE(has(e, "unknown flag --create_slot -- did you mean --create-slot")) << e;
  EXPECT_TRUE(has(e, "'-'")) << e;
  e = error_of({"--slott", "x"});
  EXPECT_TRUE(has(e, "did you mean --slot")) << e;
  e = error_of({"--max-in-flite", "5"});
  EXPECT_TRUE(has(e, "did you mean --max-in-flight")) << e;
  e = error_of({"--nats-prefix", "x."});
  EXPECT_TRUE(has(e, "did you mean --nats-subject-prefix")) << e;
  e = error_of({"--frobnicate"});
  EXPECT_TRUE(has(e, "unknown flag --frobnicate")) << e;
  EXPECT_FALSE(has(e, "did you mean")) << e;
  // A value where a flag was expected: a boolean's value after a space, or a stray word.
  e = error_of({"--create-slot", "false"});
  EXPECT_TRUE(has(e, "--create-slot=false")) << e;
  e = error_of({"amqp://u:S3cret@h/"});
  EXPECT_TRUE(has(e, "amqp://u:***@h/")) << e;
  EXPECT_FALSE(has(e, "S3cret")) << e;
  EXPECT_FALSE(has(e, "boolean")) << e;
  // A flag glued to its URL (the '=' forgotten): the password stays out of the message.
  e = error_of({"--amqpamqp://u:S3cret@h/"});
  EXPECT_TRUE(has(e, "unknown flag")) << e;
  EXPECT_FALSE(has(e, "S3cret")) << e;
  // Only dashes: a clear error, not an exception that ends the process.
  e = error_of({"---"});
  EXPECT_TRUE(has(e, "unknown flag")) << e;
}

// --check did not say where events go: one line per rule, then the default sink's, each with the
// destination its settings give.
TEST(Config, RouteLinesNameEachRuleItsSinkAndDestination) {
  std::string f = write_file("nats = \"nats://h\"\nnats_subject_prefix = \"evts.\"\n[[routes]]\nmatch = \"user.*\"\n"
                             "sink = \"nats\"\n\n[[routes]]\naggregate_type = \"Ledger\"\nexchange = \"audit.*\"\n"
                             "sink = \"rabbitmq\"\n");
  std::vector<std::string> lines = route_lines(load({"--config", f}));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "route 1 (config file line 3): match \"user.*\" -> nats (NATS subject evts.<routing key>)");
  EXPECT_EQ(lines[1], "route 2 (config file line 7): aggregate_type \"Ledger\", exchange \"audit.*\" -> rabbitmq "
                      "(RabbitMQ exchange <the event's exchange, else amq.topic>, routing key <routing key>)");
  EXPECT_EQ(lines[2], "events no route matches -> rabbitmq (RabbitMQ exchange <the event's exchange, else amq.topic>, "
                      "routing key <routing key>) (default-sink)");
  std::remove(f.c_str());
  lines = route_lines(load({"--default-sink", "redis", "--redis", "redis://h"}));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "every event -> redis (Redis stream outbox:{aggregate_type}) (default-sink)");
}
