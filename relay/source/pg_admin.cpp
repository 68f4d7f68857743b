#include "source/pg_admin.h"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "delivery/event_json.h"
#include "support/build_info.h"
#include "support/mask.h"
#include "support/settings.h"
#include "source/pg_connect.h"
#include "source/pg_query.h"
#include "source/pg_replication.h"

namespace outbox {

namespace {

struct Result {
  PGresult* r;
  explicit Result(PGresult* x) : r(x) {}
  ~Result() {
    if (r) PQclear(r);
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
};

bool looks_like_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

PgAdmin::~PgAdmin() { close(); }

void PgAdmin::close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  queue_.clear();
  in_flight_.reset();
  want_write_ = false;
}

void PgAdmin::lost(const std::string& what) {
  // A request may still be under way on a connection that gave up: it cannot be used again.
  close();
  throw PgError(PgErrorKind::Retryable, what);
}

PGresult* PgAdmin::query(const char* sql) { return query_params(sql, 0, nullptr, nullptr, nullptr, nullptr, 0); }

PGresult* PgAdmin::query_params(const char* sql, int n, const unsigned int*, const char* const* params, const int*,
                                const int*, int result_format) {
  if (in_flight_) lost("internal: a query was started while a queued write was in flight");
  std::string err;
  PGresult* r = exec_bounded(conn_, sql, n, params, result_format, timeout_, err);
  if (!r) lost("database connection: " + trim(err));
  return r;
}

int PgAdmin::socket() const { return conn_ ? PQsocket(conn_) : -1; }

std::optional<std::chrono::steady_clock::time_point> PgAdmin::deadline() const {
  if (!in_flight_) return std::nullopt;
  return sent_at_ + timeout_;
}

bool PgAdmin::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

void PgAdmin::connect(const std::string& conninfo) {
  close();
  std::string msg, state;
  conn_ = pg_connect(conninfo, false, msg, state);
  if (!conn_)
    throw classify_pg_error(state, "connection to \"" + mask_conninfo(conninfo) + "\" failed: " + msg, PgOp::Connect,
                            slot_, plugin_);
  // The server gives up too, a little later than the relay's own deadline (which is what ends a
  // wait and restarts the session), so that a statement the relay stopped waiting for (a lock
  // held by someone else) does not linger.
  std::string t = std::to_string(timeout_.count() + 2000);
  Result r(query(("SET statement_timeout = " + t + "; SET lock_timeout = " + t).c_str()));
}

std::string PgAdmin::check_server() {
  {
    Result r(query( "SELECT current_setting('wal_level')"));
    if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
      throw pg_result_error("checking wal_level failed", r.r, PgOp::Query, slot_, plugin_);
    std::string wal_level = PQgetvalue(r.r, 0, 0);
    if (wal_level != "logical")
      throw PgError(PgErrorKind::Fatal, "wal_level is \"" + wal_level +
                                            "\", logical decoding needs \"logical\" -- fix: set wal_level = logical in "
                                            "postgresql.conf and restart PostgreSQL");
  }
  // Debian's output_plugin_libraries (absent elsewhere: NULL) is readable by superusers and
  // pg_read_all_settings only. A least-privilege relay role cannot check it: the start then meets
  // the server's own error (SQLSTATE 42501, explained by classify_pg_error), and --check says
  // that it could not tell rather than pass in silence.
  Result r(query( "SELECT current_setting('output_plugin_libraries', true)"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(r.r, PG_DIAG_SQLSTATE);
    std::string role = PQuser(conn_);
    return std::string("cannot read output_plugin_libraries") +
           (state && std::string(state) == "42501" ? " (role \"" + role + "\" may not)" : "") +
           ", so --check cannot tell whether the server lets plugin " + plugin_ + " decode -- fix: "
           "GRANT pg_read_all_settings TO " + role + " (then --check reads it), or check that postgresql.conf's "
           "output_plugin_libraries names " + plugin_;
  }
  if (PQgetisnull(r.r, 0, 0)) return "";
  std::string libs = PQgetvalue(r.r, 0, 0);
  bool found = false;
  std::stringstream ss(libs);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto b = item.find_first_not_of(" \t\"");
    auto e = item.find_last_not_of(" \t\"");
    if (b != std::string::npos && item.substr(b, e - b + 1) == plugin_) found = true;
  }
  if (!found)
    throw PgError(PgErrorKind::Fatal, "output plugin " + plugin_ + " is not in output_plugin_libraries (\"" + libs +
                                          "\") -- fix: add it in postgresql.conf, e.g. output_plugin_libraries = "
                                          "'pgoutput, test_decoding, wal2json, outbox_decoder', and reload");
  return "";
}

std::string PgAdmin::current_database() {
  Result r(query( "SELECT current_database()"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
    throw pg_result_error("SELECT current_database() failed", r.r, PgOp::Query, slot_, plugin_);
  return PQgetvalue(r.r, 0, 0);
}

std::optional<SlotInfo> PgAdmin::slot_info() {
  const char* params[] = {slot_.c_str()};
  Result r(query_params(
                        "SELECT plugin, slot_type, database, active, coalesce(active_pid, 0), coalesce(wal_status, ''), "
                        "coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1",
                        1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
    throw pg_result_error("reading pg_replication_slots failed", r.r, PgOp::Query, slot_, plugin_);
  if (PQntuples(r.r) == 0) return std::nullopt;
  SlotInfo s;
  s.plugin = PQgetvalue(r.r, 0, 0);
  s.slot_type = PQgetvalue(r.r, 0, 1);
  s.database = PQgetvalue(r.r, 0, 2);
  s.active = std::strcmp(PQgetvalue(r.r, 0, 3), "t") == 0;
  s.active_pid = std::atoi(PQgetvalue(r.r, 0, 4));
  s.wal_status = PQgetvalue(r.r, 0, 5);
  s.confirmed_flush = parse_lsn(PQgetvalue(r.r, 0, 6)).value_or(0);
  return s;
}

void PgAdmin::check_slot(const SlotInfo& s, const std::string& database) {
  if (s.slot_type != "logical")
    throw PgError(PgErrorKind::Fatal, "replication slot \"" + slot_ + "\" is a " + s.slot_type +
                                          " slot -- fix: use another --slot for the relay (it needs a logical slot)");
  if (s.plugin != plugin_) {
    std::string drop = "drop the slot (SELECT pg_drop_replication_slot('" + slot_ + "')) and let --create-slot make it "
                       "again, or give another --slot NAME with --create-slot";
    const auto& ours = supported_plugins();
    // Another tool's slot (test_decoding, pgoutput): --plugin cannot take its plugin.
    bool readable = std::find(ours.begin(), ours.end(), s.plugin) != ours.end();
    throw PgError(PgErrorKind::Fatal, "replication slot \"" + slot_ + "\" was created with plugin " + s.plugin +
                                          ", not " + plugin_ + " -- fix: " +
                                          (readable ? "start with --plugin " + s.plugin + ", or " + drop
                                                    : drop + " (the relay reads only slots of " +
                                                          or_list(ours) + ")"));
  }
  if (s.database != database)
    throw PgError(PgErrorKind::Fatal, "replication slot \"" + slot_ + "\" belongs to database " + s.database +
                                          ", but --pg connects to " + database + " -- fix: point --pg at " + s.database +
                                          " or use another --slot");
  if (s.wal_status == "lost")
    throw PgError(PgErrorKind::Fatal, "replication slot \"" + slot_ +
                                          "\" has been invalidated (wal_status lost: it fell behind "
                                          "max_slot_wal_keep_size) -- fix: drop and recreate it (SELECT "
                                          "pg_drop_replication_slot('" + slot_ +
                                          "'); then --create-slot) and check outbox.events for events that were missed");
  if (s.active)
    throw PgError(PgErrorKind::SlotBusy, "replication slot \"" + slot_ + "\" is active for PID " +
                                             std::to_string(s.active_pid));
}

void PgAdmin::check_extension(const std::string& database) {
  Result r(query("SELECT extversion FROM pg_extension WHERE extname = 'outbox'"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
    throw pg_result_error("reading pg_extension failed", r.r, PgOp::Query, slot_, plugin_);
  if (PQntuples(r.r) == 0)
    throw PgError(PgErrorKind::Fatal, "the outbox extension is not installed in database \"" + database +
                                          "\": no event written there could be verified, no dead letter or "
                                          "checkpoint written -- fix: CREATE EXTENSION outbox in that database (as a "
                                          "superuser), then SELECT outbox.grant_relay('<relay role>'); or point --pg "
                                          "at the database that has it");
  std::string version = PQgetvalue(r.r, 0, 0);
  std::string why = unsupported_extension(version);
  if (!why.empty())
    throw PgError(PgErrorKind::Fatal, "the outbox extension in database \"" + database + "\" " + why);
}

std::string PgAdmin::missing_privileges(std::string* role) {
  // What outbox.grant_relay() gives, checked one by one (has_table_privilege with a list is true
  // when any one is held), by oid: looking a name up in schema outbox already needs USAGE on it.
  // Functions by name, whatever their signature in this version.
  Result r(query(
      "WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'outbox'), "
      "rel AS (SELECT c.oid, c.relname FROM pg_class c, ns WHERE c.relnamespace = ns.oid) "
      "SELECT current_user, concat_ws(', ', "
      "CASE WHEN NOT has_schema_privilege((SELECT oid FROM ns), 'USAGE') THEN 'USAGE on schema outbox' END, "
      "(SELECT string_agg(w.priv || ' on outbox.' || w.name, ', ') "
      " FROM (VALUES ('SELECT', 'relay_checkpoints'), ('INSERT', 'dead_letters'), ('SELECT', 'dead_letters'), "
      "              ('USAGE', 'dead_letters_id_seq')) AS w(priv, name) JOIN rel ON rel.relname = w.name "
      " WHERE NOT CASE WHEN w.priv = 'USAGE' THEN has_sequence_privilege(rel.oid, w.priv) "
      "                ELSE has_table_privilege(rel.oid, w.priv) END), "
      "(SELECT 'EXECUTE on ' || string_agg(DISTINCT 'outbox.' || proname, ', ') FROM pg_proc, ns "
      " WHERE pronamespace = ns.oid AND proname IN ('record_checkpoint', 'events_before_slot', "
      " 'begin_slot_recovery', 'slot_recovery_upper', 'slot_recovery_events', 'finish_slot_recovery') "
      " AND NOT has_function_privilege(pg_proc.oid, 'EXECUTE')))"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
    throw pg_result_error("checking the relay role's privileges failed", r.r, PgOp::Query, slot_, plugin_);
  if (role) *role = PQgetvalue(r.r, 0, 0);
  return PQgetvalue(r.r, 0, 1);
}

std::vector<std::pair<std::uint32_t, std::string>> PgAdmin::message_keys() {
  // Binary result: the bytea's bytes as they are, the id as a network-order int4.
  Result r(query_params("SELECT key_id, key FROM outbox.message_keys()", 0, nullptr, nullptr, nullptr, nullptr, 1));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) {
    std::string err = trim(PQresultErrorMessage(r.r));
    const char* state = PQresultErrorField(r.r, PG_DIAG_SQLSTATE);
    std::string code = state ? state : "";
    // Only what a human must fix is fatal; a server restarting or a lock held by an ALTER
    // EXTENSION under way ends the session (nothing acknowledged past this line) and is retried.
    bool missing = code == "42883" || code == "3F000" || code == "42P01";
    if (!missing && code != "42501")
      throw PgError(PgErrorKind::Retryable, "cannot read the message keys now (" + err + ")");
    std::string fix = missing
                          ? "CREATE EXTENSION outbox (or ALTER EXTENSION outbox UPDATE to 0.3 or later) in this database"
                          : "SELECT outbox.grant_relay('<relay role>') as the extension's owner";
    throw PgError(PgErrorKind::Fatal, "cannot read the message keys (" + err +
                                          "): without them the relay cannot tell events of outbox.storage = wal from "
                                          "forged ones and would skip them -- fix: " + fix);
  }
  std::vector<std::pair<std::uint32_t, std::string>> keys;
  for (int i = 0; i < PQntuples(r.r); ++i) {
    if (PQgetisnull(r.r, i, 0) || PQgetisnull(r.r, i, 1) || PQgetlength(r.r, i, 0) != 4) continue;
    const auto* b = reinterpret_cast<const unsigned char*>(PQgetvalue(r.r, i, 0));
    std::uint32_t id = std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
    keys.emplace_back(id, std::string(PQgetvalue(r.r, i, 1), static_cast<std::size_t>(PQgetlength(r.r, i, 1))));
  }
  if (keys.empty())
    throw PgError(PgErrorKind::Fatal, "outbox.message_keys() returned no key -- fix: SELECT outbox.rotate_message_key() "
                                      "as the extension's owner");
  return keys;
}

std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> PgAdmin::parked_aggregates() {
  const char* params[] = {slot_.c_str()};
  Result r(query_params(
                        "SELECT DISTINCT event->>'aggregate_type', event->>'aggregate_id' FROM outbox.dead_letters "
                        "WHERE replayed_at IS NULL AND slot_name = $1",
                        1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
    throw PgError(PgErrorKind::Retryable, std::string("reading the parked aggregates from outbox.dead_letters failed: ") +
                                              PQresultErrorMessage(r.r));
  std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> out;
  for (int i = 0; i < PQntuples(r.r); ++i) {
    auto col = [&](int c) {
      return PQgetisnull(r.r, i, c) ? std::optional<std::string>() : std::optional<std::string>(PQgetvalue(r.r, i, c));
    };
    out.emplace_back(col(0), col(1));
  }
  return out;
}

std::optional<PgAdmin::EventsBefore> PgAdmin::events_before_slot(std::string& why) {
  const char* params[] = {slot_.c_str()};
  Result r(query_params( "SELECT count, oldest, newest, republish FROM outbox.events_before_slot($1)", 1, nullptr,
                        params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK || PQntuples(r.r) != 1) {
    why = PQresultStatus(r.r) == PGRES_TUPLES_OK ? "no answer" : trim(PQresultErrorMessage(r.r));
    return std::nullopt;
  }
  EventsBefore e;
  e.count = std::atoll(PQgetvalue(r.r, 0, 0));
  e.oldest = PQgetvalue(r.r, 0, 1);
  e.newest = PQgetvalue(r.r, 0, 2);
  e.republish = PQgetvalue(r.r, 0, 3);
  return e;
}

// Text the database accepts whatever came in: RabbitMQ cuts reply texts at 252 bytes, which can
// split a UTF-8 sequence (a non-ASCII exchange name in a 404), and PostgreSQL refuses such text
// (22021), which must not make a dead letter impossible to write. Bad bytes and NULs become U+FFFD.
static std::string valid_text(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t n = in.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= n && c != 0 && !(c == 0xC0 || c == 0xC1 || c > 0xF4);
    for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok && len == 3) ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
    if (ok && len == 4) ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
    if (ok) {
      out.append(in.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::optional<CheckpointRow> PgAdmin::checkpoint_row() {
  // Transaction progress needs outbox 0.3's record_checkpoint(..., jsonb) and EXECUTE on it
  // (grant_relay of 0.3, or the upgrade's grant to the roles that had the 0.2 one).
  {
    Result p(query("SELECT coalesce((SELECT has_function_privilege(f, 'EXECUTE') FROM "
                   "to_regprocedure('outbox.record_checkpoint(text,pg_lsn,timestamptz,jsonb)') f WHERE f IS NOT NULL), "
                   "false)"));
    bool can = PQresultStatus(p.r) == PGRES_TUPLES_OK && PQntuples(p.r) == 1 && std::strcmp(PQgetvalue(p.r, 0, 0), "t") == 0;
    if (!can && records_progress_ != can)
      spdlog::warn("checkpoints no longer record transaction progress (outbox.record_checkpoint with jsonb is gone or not "
                   "granted): a restart sends a large unacknowledged transaction again whole");
    records_progress_ = can;
  }
  const char* params[] = {slot_.c_str()};
  // to_jsonb(c): the row of an extension older than 0.3 has no txn_progress column, and that
  // must not cost the checkpoint.
  Result r(query_params("SELECT acknowledged_lsn::text, "
                        "coalesce(system_identifier = (SELECT system_identifier FROM pg_control_system()), false), "
                        "recovery_snapshot IS NOT NULL, p->>'xid', p->>'begin_lsn', p->>'settled_before_lsn', "
                        "p->>'settled_events', p->>'timeline', coalesce(p->>'shard', ''), "
                        "coalesce(p->>'system_identifier' = (SELECT system_identifier::text FROM pg_control_system()), "
                        "false) "
                        "FROM outbox.relay_checkpoints c, LATERAL (SELECT to_jsonb(c)->'txn_progress' AS p) x "
                        "WHERE slot_name = $1",
                        1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK || PQntuples(r.r) != 1) return std::nullopt;
  CheckpointRow c;
  c.acknowledged = parse_lsn(PQgetvalue(r.r, 0, 0)).value_or(0);
  c.same_system = std::strcmp(PQgetvalue(r.r, 0, 1), "t") == 0;
  c.recovering = std::strcmp(PQgetvalue(r.r, 0, 2), "t") == 0;
  auto number = [&](int col) -> std::optional<std::uint64_t> {
    if (PQgetisnull(r.r, 0, col)) return std::nullopt;
    const char* v = PQgetvalue(r.r, 0, col);
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-') return std::nullopt;
    return n;
  };
  auto xid = number(3), settled = number(6), timeline = number(7);
  auto begin = PQgetisnull(r.r, 0, 4) ? std::nullopt : parse_lsn(PQgetvalue(r.r, 0, 4));
  auto before = PQgetisnull(r.r, 0, 5) ? std::nullopt : parse_lsn(PQgetvalue(r.r, 0, 5));
  // Anything malformed is not used: the transaction is then sent again whole (duplicates).
  // Counted on another cluster (a restored dump): its positions mean nothing here.
  bool here = std::strcmp(PQgetvalue(r.r, 0, 9), "t") == 0;
  if (here && xid && settled && timeline && begin && before && *xid && *begin && *settled) {
    TxnProgress tp;
    tp.txn = TxnIdentity{*xid, *begin};
    tp.settled_before = *before;
    tp.settled = *settled;
    c.progress = tp;
    c.progress_timeline = static_cast<int>(*timeline);
    c.progress_shard = PQgetvalue(r.r, 0, 8);
  }
  return c;
}

namespace {

[[noreturn]] void recovery_failed(const char* step, PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string code = state ? state : "";
  // Only a missing extension, function or right needs a human; anything else (a server that is
  // a standby again, a statement or lock timeout, a serialization failure) is retried.
  if (!needs_setup(code))
    throw PgError(PgErrorKind::Retryable, std::string("slot recovery: ") + step + " failed (" + code +
                                              "): " + trim(PQresultErrorMessage(r)) + "; retrying");
  throw PgError(PgErrorKind::Fatal, std::string("slot recovery: ") + step + " failed: " + trim(PQresultErrorMessage(r)) +
                                        " -- fix: ALTER EXTENSION outbox UPDATE and SELECT outbox.grant_relay('<relay "
                                        "role>'); the slot is not created until the events it lost can be republished");
}

// A write that delivery does not wait for failed: said once, not at every checkpoint or line.
void warn_once(bool& warned, const char* what, const std::string& err, const char* fix) {
  if (warned) return;
  spdlog::warn("{}: {}{}", what, err, fix);
  warned = true;
}

}  // namespace

bool PgAdmin::begin_slot_recovery() {
  const char* params[] = {slot_.c_str()};
  Result r(query_params("SELECT outbox.begin_slot_recovery($1)", 1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) recovery_failed("outbox.begin_slot_recovery()", r.r);
  return PQntuples(r.r) == 1 && !PQgetisnull(r.r, 0, 0);
}

void PgAdmin::slot_recovery_upper() {
  const char* params[] = {slot_.c_str()};
  Result r(query_params("SELECT outbox.slot_recovery_upper($1)", 1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) recovery_failed("outbox.slot_recovery_upper()", r.r);
}

std::vector<RecoveredEvent> PgAdmin::slot_recovery_events(const std::string& after_id, int max_rows) {
  std::string max = std::to_string(max_rows);
  const char* params[] = {slot_.c_str(), after_id.empty() ? nullptr : after_id.c_str(), max.c_str()};
  Result r(query_params("SELECT id, xid::text, created_at, line FROM outbox.slot_recovery_events($1, $2::uuid, $3::int)",
                        3, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(r.r, PG_DIAG_SQLSTATE);
    // 55000: the recovery state changed under this relay (another relay's): start the session again.
    if (state && std::strcmp(state, "55000") == 0)
      throw PgError(PgErrorKind::Retryable, "slot recovery: " + trim(PQresultErrorMessage(r.r)));
    recovery_failed("outbox.slot_recovery_events()", r.r);
  }
  std::vector<RecoveredEvent> out(static_cast<std::size_t>(PQntuples(r.r)));
  for (int i = 0; i < PQntuples(r.r); ++i) {
    RecoveredEvent& e = out[static_cast<std::size_t>(i)];
    e.id = PQgetvalue(r.r, i, 0);
    e.xid = std::strtoull(PQgetvalue(r.r, i, 1), nullptr, 10);
    e.created_at = PQgetvalue(r.r, i, 2);
    e.line = PQgetvalue(r.r, i, 3);
  }
  return out;
}

void PgAdmin::queue_checkpoint(Lsn ack, std::int64_t commit_time_us, const std::optional<TxnProgress>& progress,
                               int timeline, const std::string& shard) {
  Write w{AdminDone::Kind::Checkpoint, 0,
          "SELECT outbox.record_checkpoint($1, $2::pg_lsn, to_timestamp($3::float8)), pg_current_wal_insert_lsn()",
          {slot_, format_lsn(ack), std::to_string(static_cast<double>(commit_time_us) / 1e6)},
          {false, false, commit_time_us == 0}};
  if (records_progress_) {
    // NULL clears what an earlier checkpoint said: the progress is always the newest one's.
    w.sql = "SELECT outbox.record_checkpoint($1, $2::pg_lsn, to_timestamp($3::float8), $4::jsonb), "
            "pg_current_wal_insert_lsn()";
    std::string json;
    if (progress) {
      // The shard is "i/n" (digits and a slash, checked by the settings); nothing else is text.
      std::string s;
      for (char ch : shard)
        if (std::isdigit(static_cast<unsigned char>(ch)) || ch == '/') s += ch;
      json = "{\"xid\": " + std::to_string(progress->txn.xid) + ", \"begin_lsn\": \"" +
             format_lsn(progress->txn.begin_lsn) + "\", \"settled_before_lsn\": \"" +
             format_lsn(progress->settled_before) + "\", \"settled_events\": " + std::to_string(progress->settled) +
             ", \"timeline\": " + std::to_string(timeline) + ", \"shard\": \"" + s + "\"}";
    }
    w.params.push_back(json);
    w.null.push_back(!progress);
  }
  for (Write& q : queue_)
    if (q.kind == AdminDone::Kind::Checkpoint) {
      q = std::move(w);
      return;
    }
  queue_.push_back(std::move(w));
}

void PgAdmin::queue_dead_letter(std::uint64_t tag, const Event& ev, const std::string& reason, int attempts,
                                std::int64_t first_failed_us, std::int64_t last_failed_us,
                                const std::string& broker_reply) {
  std::string reply = valid_text(broker_reply);
  queue_.push_back(Write{AdminDone::Kind::DeadLetter, tag,
                         "INSERT INTO outbox.dead_letters (event_id, event, reason, attempts, first_failed_at, "
                         "last_failed_at, broker_reply, slot_name) VALUES ($1::uuid, $2::jsonb, $3, $4::int, "
                         "to_timestamp($5::float8), to_timestamp($6::float8), $7, $8) "
                         // written once per slot and event (outbox--0.2--0.3.sql): a restart
                         // before the acknowledgement settles the event again
                         "ON CONFLICT DO NOTHING",
                         {looks_like_uuid(ev.id) ? ev.id : "", event_to_json(ev), valid_text(reason),
                          std::to_string(attempts), std::to_string(static_cast<double>(first_failed_us) / 1e6),
                          std::to_string(static_cast<double>(last_failed_us) / 1e6), reply, slot_},
                         {!looks_like_uuid(ev.id), false, false, false, false, false, reply.empty(), false}});
}

void PgAdmin::queue_rejected(Lsn lsn, std::uint64_t xid, std::optional<std::uint32_t> key_id, std::size_t bytes,
                             const std::string& reason) {
  queue_.push_back(Write{AdminDone::Kind::Rejected, 0,
                         "INSERT INTO outbox.rejected_messages (slot_name, lsn, xid, key_id, bytes, reason) "
                         "VALUES ($1, $2::pg_lsn, $3::bigint, $4::int, $5::int, $6) ON CONFLICT DO NOTHING",
                         {slot_, format_lsn(lsn), std::to_string(xid), key_id ? std::to_string(*key_id) : "",
                          std::to_string(std::min<std::size_t>(bytes, 2147483647)), valid_text(reason)},
                         {false, false, xid == 0, !key_id, false, false}});
}

void PgAdmin::queue_finish_recovery() {
  queue_.push_back(Write{AdminDone::Kind::FinishRecovery, 0, "SELECT outbox.finish_slot_recovery($1)", {slot_}, {false}});
}

void PgAdmin::complete(PGresult* r, const Write& w) {
  ExecStatusType st = PQresultStatus(r);
  bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
  if (ok && w.kind == AdminDone::Kind::Checkpoint && PQntuples(r) == 1 && PQnfields(r) == 2)
    fence_ = parse_lsn(PQgetvalue(r, 0, 1)).value_or(fence_);
  if (ok) return;
  std::string err = trim(PQresultErrorMessage(r));
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string code = state ? state : "";
  switch (w.kind) {
    case AdminDone::Kind::Checkpoint:
      warn_once(warned_no_checkpoint_, "cannot record the checkpoint in outbox.relay_checkpoints", err,
                " (is CREATE EXTENSION outbox done in this database, and outbox.grant_relay() given to the relay role?)");
      return;
    case AdminDone::Kind::Rejected:
      // The line was counted and logged already; the table is for operators, not for delivery.
      warn_once(warned_no_rejected_, "cannot record a rejected line in outbox.rejected_messages", err,
                " -- fix: SELECT outbox.grant_relay('<relay role>') after ALTER EXTENSION outbox UPDATE");
      return;
    case AdminDone::Kind::FinishRecovery:
      // The recovery is then done again at the next start: duplicates, nothing lost.
      spdlog::error("cannot record the end of the slot recovery: {}; the next start republishes its events again", err);
      return;
    case AdminDone::Kind::DeadLetter:
      // Only a missing extension or missing rights is a configuration problem; anything else is
      // retried (and logged each time) rather than stopping the relay because of one event.
      if (!needs_setup(code))
        throw PgError(PgErrorKind::Retryable, "writing a dead letter into outbox.dead_letters failed (" + code + "): " + err);
      throw PgError(PgErrorKind::Fatal, "writing a dead letter into outbox.dead_letters failed: " + err +
                                            " -- fix: CREATE EXTENSION outbox in this database and SELECT "
                                            "outbox.grant_relay('<relay role>')");
  }
}

void PgAdmin::pump(std::vector<AdminDone>& done) {
  if (!conn_) {
    if (busy()) throw PgError(PgErrorKind::Retryable, "no database connection for the queued writes");
    return;
  }
  while (true) {
    if (!in_flight_) {
      if (queue_.empty()) return;
      Write& w = queue_.front();
      std::vector<const char*> params;
      for (std::size_t i = 0; i < w.params.size(); ++i) params.push_back(w.null[i] ? nullptr : w.params[i].c_str());
      if (PQisnonblocking(conn_) == 0) PQsetnonblocking(conn_, 1);
      if (!PQsendQueryParams(conn_, w.sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(), nullptr,
                             nullptr, 0))
        lost(std::string("database connection: ") + trim(PQerrorMessage(conn_)));
      in_flight_ = std::move(w);
      queue_.pop_front();
      sent_at_ = std::chrono::steady_clock::now();
    }
    int f = PQflush(conn_);
    if (f < 0) lost(std::string("database connection: ") + trim(PQerrorMessage(conn_)));
    want_write_ = f > 0;
    if (PQconsumeInput(conn_) == 0) lost(std::string("database connection: ") + trim(PQerrorMessage(conn_)));
    // Every result of the request, then the null that ends it.
    while (!PQisBusy(conn_)) {
      PGresult* r = PQgetResult(conn_);
      if (!r) {
        done.push_back(AdminDone{in_flight_->kind, in_flight_->tag});
        in_flight_.reset();
        break;
      }
      Result holder(r);
      complete(r, *in_flight_);
    }
    if (in_flight_) {
      if (std::chrono::steady_clock::now() - sent_at_ >= timeout_)
        lost("the database connection gave no answer to a " +
             std::string(in_flight_->kind == AdminDone::Kind::DeadLetter ? "dead letter" : "checkpoint") +
             " write within " + std::to_string(timeout_.count()) +
             " ms (a silent network, or a lock held on outbox tables; --pg-timeout-ms sets the limit)");
      return;
    }
  }
}

void PgAdmin::finish(std::vector<AdminDone>& done) {
  auto until = std::chrono::steady_clock::now() + timeout_;
  while (busy() && conn_) {
    pump(done);
    if (!in_flight_) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return;
    pollfd p{PQsocket(conn_), static_cast<short>(POLLIN | (want_write_ ? POLLOUT : 0)), 0};
    ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
  }
}


}  // namespace outbox
