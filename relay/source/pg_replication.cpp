#include "source/pg_replication.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "support/mask.h"
#include "outbox_wire.h"
#include "source/pg_connect.h"
#include "source/pg_query.h"

namespace outbox {

namespace {

std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void put_u64(char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

// `s` between two `q`, each `q` inside doubled: SQL's quoting of identifiers (") and literals (').
std::string quoted(const std::string& s, char q) {
  std::string out(1, q);
  for (char c : s) {
    if (c == q) out += q;
    out += c;
  }
  return out + q;
}

std::string quote_ident(const std::string& s) { return quoted(s, '"'); }
std::string quote_literal(const std::string& s) { return quoted(s, '\''); }

}  // namespace

std::int64_t pg_now_us() {
  using namespace std::chrono;
  constexpr std::int64_t kPgEpochOffsetUs = 946684800LL * 1000000LL;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() - kPgEpochOffsetUs;
}

const std::vector<std::string>& supported_plugins() {
  static const std::vector<std::string> plugins{"outbox_decoder", "wal2json"};
  return plugins;
}

std::vector<std::pair<std::string, std::string>> plugin_options(const std::string& plugin, const std::string& shard) {
  if (plugin == "outbox_decoder") {
    std::vector<std::pair<std::string, std::string>> o = {{"format-version", "2"},
                                                              {OUTBOX_DECODER_PRESET_OPTION, "1"}};
    if (!shard.empty()) o.emplace_back("shard", shard);
    return o;
  }
  // Stock wal2json 2.5: the preset spelled out. actions=insert keeps logical messages (checked on
  // wal2json 2.5: "M" lines still come through), add-tables limits rows to outbox.events.
  return {{"format-version", "2"},  {"add-tables", OUTBOX_SCHEMA "." OUTBOX_EVENTS_TABLE},
          {"add-msg-prefixes", OUTBOX_MESSAGE_PREFIX},
          {"actions", "insert"},    {"include-xids", "1"},           {"include-timestamp", "1"},
          {"include-types", "0"}};
}

ReplicationStream::~ReplicationStream() { close(); }

void ReplicationStream::close() {
  if (buf_) {
    PQfreemem(buf_);
    buf_ = nullptr;
  }
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

void ReplicationStream::fail(const std::string& what) {
  // libpq's own failures (a lost connection): no SQLSTATE.
  std::string msg = conn_ ? PQerrorMessage(conn_) : "";
  throw classify_pg_error("", what + (msg.empty() ? "" : ": " + msg), PgOp::Decoding, slot_, plugin_);
}

PGresult* ReplicationStream::bounded(const std::string& sql) {
  std::string err;
  PGresult* r = exec_bounded(conn_, sql, 0, nullptr, 0, timeout_, err);
  if (!r) fail(sql + ": " + err);
  // exec_bounded leaves the connection non-blocking; the commands after it expect blocking.
  PQsetnonblocking(conn_, 0);
  return r;
}

void ReplicationStream::connect(const std::string& conninfo) {
  close();
  std::string msg, state;
  conn_ = pg_connect(conninfo, true, msg, state);
  if (!conn_)
    throw classify_pg_error(state, "replication connection to \"" + mask_conninfo(conninfo) + "\" failed: " + msg,
                            PgOp::ReplicationConnect, slot_, plugin_);
}

ReplicationStream::SystemInfo ReplicationStream::identify_system() {
  PGresult* r = bounded("IDENTIFY_SYSTEM");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 4) {
    PgError e = pg_result_error("IDENTIFY_SYSTEM failed", r, PgOp::Decoding, slot_, plugin_);
    PQclear(r);
    throw e;
  }
  SystemInfo info;
  info.system_id = PQgetvalue(r, 0, 0);
  info.timeline = std::atoi(PQgetvalue(r, 0, 1));
  info.flushed = parse_lsn(PQgetvalue(r, 0, 2)).value_or(0);
  std::string db = PQgetisnull(r, 0, 3) ? "" : PQgetvalue(r, 0, 3);
  info.dbname = db;
  spdlog::info("replication connection: systemid {} timeline {} xlogpos {} dbname {}", PQgetvalue(r, 0, 0),
               PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), db);
  PQclear(r);
  if (db.empty())
    throw PgError(PgErrorKind::Fatal, "the replication connection is not attached to a database -- fix: use replication=database "
                                      "(outbox-relay adds it; do not override it in --pg)");
  return info;
}

std::string ReplicationStream::show(const std::string& name) {
  PGresult* r = bounded("SHOW " + quote_ident(name));
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    PgError e = pg_result_error("SHOW " + name + " failed", r, PgOp::Decoding, slot_, plugin_);
    PQclear(r);
    throw e;
  }
  std::string v = PQgetvalue(r, 0, 0);
  PQclear(r);
  return v;
}

long long parse_duration_ms(const std::string& text, long long unit_ms) {
  std::size_t i = 0;
  long long n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    n = n * 10 + (text[i] - '0');
    if (n > (1LL << 40)) return -1;
    ++i;
  }
  if (i == 0) return -1;
  std::string unit = text.substr(i);
  if (unit.empty()) return n * unit_ms;
  if (unit == "us") return n / 1000;
  if (unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "min") return n * 60 * 1000;
  if (unit == "h") return n * 3600 * 1000;
  if (unit == "d") return n * 24 * 3600 * 1000;
  return -1;
}

bool ReplicationStream::create_slot() {
  std::string sql = "CREATE_REPLICATION_SLOT " + quote_ident(slot_) + " LOGICAL " + quote_ident(plugin_);
  // PostgreSQL 15 and 16 know no FAILOVER option (it is not tested here: only 15 is installed).
  sql += PQserverVersion(conn_) >= 170000 ? " (SNAPSHOT 'nothing', FAILOVER true)" : " NOEXPORT_SNAPSHOT";
  PGresult* r = PQexec(conn_, sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  bool exists = !ok && state && std::strcmp(state, "42710") == 0;  // duplicate_object
  if (ok || exists) {
    PQclear(r);
    return ok;
  }
  PgError e = pg_result_error("creating replication slot \"" + slot_ + "\" with plugin " + plugin_ + " failed", r,
                              PgOp::Decoding, slot_, plugin_);
  PQclear(r);
  throw e;
}

void ReplicationStream::start(Lsn from, Lsn at) {
  std::string sql = "START_REPLICATION SLOT " + quote_ident(slot_) + " LOGICAL " + format_lsn(from) + " (";
  bool first = true;
  for (auto& [k, v] : plugin_options(plugin_, shard_)) {
    if (!first) sql += ", ";
    first = false;
    sql += quote_ident(k) + " " + quote_literal(v);
  }
  sql += ")";
  PGresult* r = PQexec(conn_, sql.c_str());
  if (PQresultStatus(r) != PGRES_COPY_BOTH) {
    PgError e = pg_result_error("START_REPLICATION on slot \"" + slot_ + "\" failed", r, PgOp::Decoding, slot_, plugin_);
    PQclear(r);
    throw e;
  }
  PQclear(r);
  if (PQsetnonblocking(conn_, 1) != 0) fail("cannot make the replication connection non-blocking");
  spdlog::info("streaming from slot \"{}\" (plugin {}) from {}", slot_, plugin_, format_lsn(at));
}

void ReplicationStream::consume_input() {
  if (PQconsumeInput(conn_) == 0) fail("replication connection lost");
}

ReplMessage ReplicationStream::read() {
  ReplMessage m;
  if (buf_) {
    PQfreemem(buf_);
    buf_ = nullptr;
  }
  int n = PQgetCopyData(conn_, &buf_, 1);
  if (n == 0) return m;
  if (n == -1) {
    // The server ended the COPY: fetch the final result for its error.
    PGresult* r = PQgetResult(conn_);
    PgError e = pg_result_error("replication stream ended by the server", r, PgOp::Decoding, slot_, plugin_);
    if (r) PQclear(r);
    throw e;
  }
  if (n == -2) fail("replication stream read failed");
  if (buf_[0] == 'w') {
    if (n < 25) fail("short XLogData message");
    m.kind = ReplMessage::Kind::XLogData;
    m.data_start = get_u64(buf_ + 1);
    m.wal_end = get_u64(buf_ + 9);
    m.data = std::string_view(buf_ + 25, static_cast<std::size_t>(n - 25));
  } else if (buf_[0] == 'k') {
    if (n < 18) fail("short keepalive message");
    m.kind = ReplMessage::Kind::Keepalive;
    m.wal_end = get_u64(buf_ + 1);
    m.reply_requested = buf_[17] != 0;
  } else {
    spdlog::warn("ignoring unknown replication message type '{}'", buf_[0]);
  }
  return m;
}

void ReplicationStream::send_status(Lsn write, Lsn flush_lsn, Lsn apply, bool reply_requested) {
  char msg[34];
  msg[0] = 'r';
  put_u64(msg + 1, write);
  put_u64(msg + 9, flush_lsn);
  put_u64(msg + 17, apply);
  put_u64(msg + 25, static_cast<std::uint64_t>(pg_now_us()));
  msg[33] = reply_requested ? 1 : 0;
  if (PQputCopyData(conn_, msg, sizeof msg) <= 0) fail("sending a standby status update failed");
  flush();
}

bool ReplicationStream::flush() {
  int r = PQflush(conn_);
  if (r < 0) fail("replication connection lost while sending");
  return r == 0;
}

int ReplicationStream::socket() const { return conn_ ? PQsocket(conn_) : -1; }

}  // namespace outbox
