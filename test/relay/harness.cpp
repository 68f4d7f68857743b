#include "harness.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace it {

std::string g_plugin = "wal2json";

std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v ? v : def;
}

bool have_stack() { return std::getenv("PGPORT") && std::getenv("OUTBOX_AMQP_URL"); }

int sh(const std::string& cmd, std::string* out) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return -1;
  char buf[4096];
  std::string o;
  while (std::size_t n = fread(buf, 1, sizeof buf, f)) o.append(buf, n);
  int rc = pclose(f);
  if (out) *out = o;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool have_plugin(const std::string& plugin) {
  std::string dir;
  if (sh("pg_config --pkglibdir", &dir) != 0) return false;
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
  struct stat st;
  return stat((dir + "/" + plugin + ".so").c_str(), &st) == 0;
}

std::string unique_token() {
  static std::atomic<int> n{0};
  return std::to_string(getpid()) + "_" + std::to_string(n++);
}

unsigned long long lsn(const std::string& t) {
  auto slash = t.find('/');
  if (slash == std::string::npos) return 0;
  return (std::stoull(t.substr(0, slash), nullptr, 16) << 32) | std::stoull(t.substr(slash + 1), nullptr, 16);
}

namespace {
pg_conn* connect_db(const std::string& db) {
  const char* keys[] = {"dbname", nullptr};
  const char* vals[] = {db.c_str(), nullptr};
  pg_conn* c = PQconnectdbParams(keys, vals, 0);
  if (PQstatus(c) != CONNECTION_OK) {
    std::string e = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("connect " + db + ": " + e);
  }
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  return c;
}
void exec_on(pg_conn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  auto st = PQresultStatus(r);
  std::string e = PQresultErrorMessage(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + e);
}
}  // namespace

Db::Db(const std::string& name, const std::string& create_options) : name_(name) {
  pg_conn* admin = connect_db("postgres");
  try {
    exec_on(admin, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    exec_on(admin, "CREATE DATABASE " + name_ + (create_options.empty() ? "" : " " + create_options));
  } catch (...) {
    PQfinish(admin);
    throw;
  }
  PQfinish(admin);
  conn_ = connect_db(name_);
  exec("CREATE EXTENSION outbox");
}

Db::~Db() {
  if (conn_) {
    // drop the test's slots (they hold WAL for the whole cluster)
    try {
      // a failed test may leave prepared transactions, which would block DROP DATABASE
      for (auto& r : rows("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()"))
        exec("ROLLBACK PREPARED '" + r[0] + "'");
      // A relay just killed or stopped may still have its walsender: a slot in use cannot be
      // dropped, and DROP DATABASE refuses a database with any slot, so the database and its
      // slot (holding WAL, and one of max_replication_slots) would be left behind.
      for (int i = 0; i < 50; ++i) {
        exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active");
        if (rows("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()")[0][0] == "0") break;
        if (i == 20)
          exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = current_database() AND active");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } catch (...) {
    }
    PQfinish(conn_);
  }
  try {
    pg_conn* admin = connect_db("postgres");
    PGresult* r = PQexec(admin, ("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)").c_str());
    PQclear(r);
    PQfinish(admin);
  } catch (...) {
  }
}

std::string Db::conninfo() const {
  return "host=" + env_or("PGHOST", "127.0.0.1") + " port=" + env_or("PGPORT", "5432") + " user=" +
         env_or("PGUSER", "postgres") + " dbname=" + name_;
}

void Db::exec(const std::string& sql) { exec_on(conn_, sql); }

std::vector<std::vector<std::string>> Db::rows(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::string e = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error(sql + ": " + e);
  }
  std::vector<std::vector<std::string>> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < PQnfields(r); ++j) row.push_back(PQgetisnull(r, i, j) ? "" : PQgetvalue(r, i, j));
    out.push_back(row);
  }
  PQclear(r);
  return out;
}

std::string Db::scalar(const std::string& sql) {
  auto r = rows(sql);
  return r.empty() || r[0].empty() ? "" : r[0][0];
}

std::string Db::slot_confirmed_lsn(const std::string& slot) {
  return scalar("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
}

bool Db::slot_active(const std::string& slot) {
  return scalar("SELECT active FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "t";
}

void Db::drop_slot(const std::string& slot) {
  exec("SELECT pg_drop_replication_slot('" + slot + "')");
}

// ---------------------------------------------------------------------------------------------
namespace {
std::string bs(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }
void ok(amqp_connection_state_t c, const std::string& what) {
  amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("AMQP " + what + " failed");
}
std::string field_text(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: return bs(v.value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN: return v.value.boolean ? "true" : "false";
    case AMQP_FIELD_KIND_I64: return std::to_string(v.value.i64);
    case AMQP_FIELD_KIND_I32: return std::to_string(v.value.i32);
    case AMQP_FIELD_KIND_F64: {
      std::ostringstream o;
      o << v.value.f64;
      return o.str();
    }
    case AMQP_FIELD_KIND_VOID: return "null";
    default: return "?";
  }
}
}  // namespace

Broker::Broker() {
  std::string url = env_or("OUTBOX_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/");
  std::vector<char> buf(url.begin(), url.end());
  buf.push_back(0);
  amqp_connection_info ci;
  if (amqp_parse_url(buf.data(), &ci) != AMQP_STATUS_OK) throw std::runtime_error("bad OUTBOX_AMQP_URL");
  if (!ci.vhost || !*ci.vhost) ci.vhost = const_cast<char*>("/");
  conn_ = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(conn_);
  if (amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) throw std::runtime_error("cannot connect to RabbitMQ");
  if (amqp_login(conn_, ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password)
          .reply_type != AMQP_RESPONSE_NORMAL)
    throw std::runtime_error("RabbitMQ login failed");
  amqp_channel_open(conn_, 1);
  ok(conn_, "channel.open");
}

Broker::~Broker() {
  if (conn_) {
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn_);
  }
}

void Broker::declare_exchange(const std::string& name, const std::string& type) {
  // durable, so a test can restart RabbitMQ under the relay (the test deletes it at the end)
  amqp_exchange_declare(conn_, 1, amqp_cstring_bytes(name.c_str()), amqp_cstring_bytes(type.c_str()), 0, 1, 0, 0,
                        amqp_empty_table);
  ok(conn_, "exchange.declare " + name);
}
void Broker::delete_exchange(const std::string& name) {
  amqp_exchange_delete(conn_, 1, amqp_cstring_bytes(name.c_str()), 0);
  ok(conn_, "exchange.delete " + name);
}
void Broker::declare_queue(const std::string& name) {
  amqp_queue_declare(conn_, 1, amqp_cstring_bytes(name.c_str()), 0, 1, 0, 0, amqp_empty_table);
  ok(conn_, "queue.declare " + name);
}
void Broker::declare_bounded_queue(const std::string& name, long max_length) {
  amqp_table_entry_t e[2];
  e[0].key = amqp_cstring_bytes("x-max-length");
  e[0].value.kind = AMQP_FIELD_KIND_I64;
  e[0].value.value.i64 = max_length;
  e[1].key = amqp_cstring_bytes("x-overflow");
  e[1].value.kind = AMQP_FIELD_KIND_UTF8;
  e[1].value.value.bytes = amqp_cstring_bytes("reject-publish");
  amqp_table_t args{2, e};
  amqp_queue_declare(conn_, 1, amqp_cstring_bytes(name.c_str()), 0, 0, 0, 0, args);
  ok(conn_, "queue.declare " + name);
}

void Broker::bind(const std::string& q, const std::string& ex, const std::string& key) {
  amqp_queue_bind(conn_, 1, amqp_cstring_bytes(q.c_str()), amqp_cstring_bytes(ex.c_str()), amqp_cstring_bytes(key.c_str()),
                  amqp_empty_table);
  ok(conn_, "queue.bind");
}
void Broker::delete_queue(const std::string& name) {
  amqp_queue_delete(conn_, 1, amqp_cstring_bytes(name.c_str()), 0, 0);
  ok(conn_, "queue.delete " + name);
}
void Broker::consume(const std::string& q) {
  amqp_basic_consume(conn_, 1, amqp_cstring_bytes(q.c_str()), amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
  ok(conn_, "basic.consume");
}

std::vector<Message> Broker::collect(std::size_t count, std::chrono::milliseconds timeout) {
  std::vector<Message> out;
  auto until = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    struct timeval tv{left / 1000000, static_cast<long>(left % 1000000)};
    amqp_envelope_t env;
    amqp_maybe_release_buffers(conn_);
    amqp_rpc_reply_t r = amqp_consume_message(conn_, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) break;
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      amqp_frame_t f;
      struct timeval z{0, 100000};
      amqp_simple_wait_frame_noblock(conn_, &f, &z);
      continue;
    }
    Message m;
    m.exchange = bs(env.exchange);
    m.routing_key = bs(env.routing_key);
    m.body = bs(env.message.body);
    const amqp_basic_properties_t& p = env.message.properties;
    if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) m.message_id = bs(p.message_id);
    if (p._flags & AMQP_BASIC_TYPE_FLAG) m.type = bs(p.type);
    if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) m.correlation_id = bs(p.correlation_id);
    if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) m.content_type = bs(p.content_type);
    if (p._flags & AMQP_BASIC_APP_ID_FLAG) m.app_id = bs(p.app_id);
    if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) m.delivery_mode = p.delivery_mode;
    if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) m.timestamp = p.timestamp;
    if (p._flags & AMQP_BASIC_PRIORITY_FLAG) m.priority = p.priority;
    if (p._flags & AMQP_BASIC_HEADERS_FLAG)
      for (int i = 0; i < p.headers.num_entries; ++i)
        m.headers[bs(p.headers.entries[i].key)] = field_text(p.headers.entries[i].value);
    out.push_back(std::move(m));
    amqp_destroy_envelope(&env);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
RelayProcess::RelayProcess(const std::vector<std::string>& args, const std::string& log_path) : log_path_(log_path) {
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = std::freopen(log_path.c_str(), "a", stderr);
    (void)f;
    dup2(2, 1);
    std::vector<char*> argv;
    static std::string bin = OUTBOX_RELAY_BIN;
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
}

RelayProcess::~RelayProcess() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

bool RelayProcess::running() {
  if (exited_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) exited_ = true;
  return !exited_;
}

std::optional<int> RelayProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (!eventually([&] { return !running(); }, timeout)) return std::nullopt;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

int RelayProcess::stop(std::chrono::milliseconds timeout) {
  if (!running()) return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  ::kill(pid_, SIGTERM);
  if (auto rc = wait_exit(timeout)) return *rc;
  kill9();
  return -1;
}

void RelayProcess::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  exited_ = true;
}

std::string RelayProcess::log() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace it
