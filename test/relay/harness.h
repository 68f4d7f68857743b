// Integration-test harness: a database of the test's own (created and dropped), a RabbitMQ
// connection that declares the test's exchanges/queue and collects deliveries, and the relay
// binary run as a child process. Everything talks to the real servers of scripts/stack.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

struct pg_conn;
struct amqp_connection_state_t_;

namespace it {

extern std::string g_plugin;  // wal2json | outbox_decoder

bool have_stack();            // PGPORT and OUTBOX_AMQP_URL in the environment
bool have_plugin(const std::string& plugin);
// A test whose subject does not depend on the plugin (the broker side, timeouts, TLS) runs once
// per suite, with outbox_decoder when it is installed: make test stays within its time.
#define SKIP_UNLESS_MAIN_PLUGIN()                                                         \
  do {                                                                                    \
    if (::it::g_plugin == "wal2json" && ::it::have_plugin("outbox_decoder"))              \
      GTEST_SKIP() << "independent of the plugin: runs with outbox_decoder";             \
  } while (0)
std::string unique_token();   // short, lower-case, unique per process and call
std::string env_or(const char* name, const std::string& def);
// Runs a shell command, returns its exit code; output goes to `out` if given.
int sh(const std::string& cmd, std::string* out = nullptr);

class Db {
 public:
  // CREATE DATABASE name <create_options>; CREATE EXTENSION outbox
  explicit Db(const std::string& name, const std::string& create_options = "");
  ~Db();
  const std::string& name() const { return name_; }
  std::string conninfo() const;  // for --pg
  void exec(const std::string& sql);
  std::string scalar(const std::string& sql);  // first column of first row ("" if NULL/none)
  std::vector<std::vector<std::string>> rows(const std::string& sql);
  std::string slot_confirmed_lsn(const std::string& slot);  // "" if missing
  bool slot_active(const std::string& slot);
  void drop_slot(const std::string& slot);

 private:
  std::string name_;
  pg_conn* conn_ = nullptr;
};

// LSN text comparison helpers.
unsigned long long lsn(const std::string& text);

struct Message {
  std::string exchange, routing_key, body, message_id, type, correlation_id, content_type, app_id;
  int delivery_mode = 0;
  int priority = -1;  // -1: the property is not set
  unsigned long long timestamp = 0;
  std::map<std::string, std::string> headers;  // values rendered as text ("null" for void)
};

class Broker {
 public:
  Broker();
  ~Broker();
  void declare_exchange(const std::string& name, const std::string& type = "topic");
  void delete_exchange(const std::string& name);
  void declare_queue(const std::string& name);
  // A queue that holds at most `max_length` messages and nacks publishes beyond (reject-publish).
  void declare_bounded_queue(const std::string& name, long max_length);
  void bind(const std::string& queue, const std::string& exchange, const std::string& key);
  void delete_queue(const std::string& name);
  void consume(const std::string& queue);
  // Collects deliveries until `count` arrived or `timeout` passed.
  std::vector<Message> collect(std::size_t count, std::chrono::milliseconds timeout);

 private:
  amqp_connection_state_t_* conn_ = nullptr;
};

class RelayProcess {
 public:
  RelayProcess(const std::vector<std::string>& args, const std::string& log_path);
  ~RelayProcess();
  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM, then wait up to `timeout`; returns the exit code (-1 if it had to be killed).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  void kill9();
  // Waits for the process to exit by itself; returns the exit code or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  int status_ = 0;
  bool exited_ = false;
};

// Polls `pred` every 50 ms until true or timeout; returns the last value.
template <typename F>
bool eventually(F pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    struct timespec ts{0, 50 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

// The opposite of eventually: polls `pred` every 50 ms for the whole duration; false as soon as
// it is false once. For "did not happen" checks, so that a fault anywhere in the window counts,
// not only one sampled at its end.
template <typename F>
bool throughout(F pred, std::chrono::milliseconds duration) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (true) {
    if (!pred()) return false;
    if (std::chrono::steady_clock::now() > until) return true;
    struct timespec ts{0, 50 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace it
