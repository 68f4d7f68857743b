#include "pg_admin.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "event_json.h"
#include "mask.h"
#include "pg_connect.h"

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
}

bool PgAdmin::connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

void PgAdmin::connect(const std::string& conninfo) {
  close();
  std::string msg, state;
  conn_ = pg_connect(conninfo, false, msg, state);
  if (!conn_)
    throw classify_pg_error(state, "connection to \"" + mask_conninfo(conninfo) + "\" failed: " + msg, PgOp::Connect,
                            slot_, plugin_);
}

void PgAdmin::check_server() {
  {
    Result r(PQexec(conn_, "SELECT current_setting('wal_level')"));
    if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
      throw pg_result_error("checking wal_level failed", r.r, PgOp::Query, slot_, plugin_);
    std::string wal_level = PQgetvalue(r.r, 0, 0);
    if (wal_level != "logical")
      throw PgError(PgErrorKind::Fatal, "wal_level is \"" + wal_level +
                                            "\", logical decoding needs \"logical\" -- fix: set wal_level = logical in "
                                            "postgresql.conf and restart PostgreSQL");
  }
  // Debian's output_plugin_libraries (absent elsewhere) is readable by superusers and
  // pg_read_all_settings only: a least-privilege relay role skips this early check and relies on
  // START_REPLICATION's own error (SQLSTATE 42501), which classify_pg_error explains the same way.
  Result r(PQexec(conn_, "SELECT current_setting('output_plugin_libraries', true)"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK || PQgetisnull(r.r, 0, 0)) return;
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
}

std::string PgAdmin::current_database() {
  Result r(PQexec(conn_, "SELECT current_database()"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK)
    throw pg_result_error("SELECT current_database() failed", r.r, PgOp::Query, slot_, plugin_);
  return PQgetvalue(r.r, 0, 0);
}

std::optional<SlotInfo> PgAdmin::slot_info() {
  const char* params[] = {slot_.c_str()};
  Result r(PQexecParams(conn_,
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
  if (s.plugin != plugin_)
    throw PgError(PgErrorKind::Fatal, "replication slot \"" + slot_ + "\" was created with plugin " + s.plugin +
                                          ", not " + plugin_ + " -- fix: start with --plugin " + s.plugin +
                                          ", or drop the slot (SELECT pg_drop_replication_slot('" + slot_ +
                                          "')) and let --create-slot make it again");
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

std::string PgAdmin::missing_privileges() {
  Result r(PQexec(conn_,
                  "SELECT CASE WHEN to_regclass('outbox.dead_letters') IS NULL "
                  "THEN 'the outbox extension is not installed in this database (CREATE EXTENSION outbox)' "
                  "ELSE concat_ws(', ', "
                  "CASE WHEN NOT has_function_privilege('outbox.record_checkpoint(text,pg_lsn,timestamptz)', 'EXECUTE') "
                  "THEN 'EXECUTE on outbox.record_checkpoint' END, "
                  "CASE WHEN NOT has_table_privilege('outbox.dead_letters', 'INSERT') "
                  "THEN 'INSERT on outbox.dead_letters' END) END"));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK) return std::string("cannot check privileges: ") + PQresultErrorMessage(r.r);
  return PQgetisnull(r.r, 0, 0) ? "" : PQgetvalue(r.r, 0, 0);
}

std::optional<std::string> PgAdmin::message_key(std::string& why) {
  if (!connected()) {
    why = "not connected";
    return std::nullopt;
  }
  // Binary result: the bytea's bytes as they are.
  Result r(PQexecParams(conn_, "SELECT outbox.message_key()", 0, nullptr, nullptr, nullptr, nullptr, 1));
  if (PQresultStatus(r.r) != PGRES_TUPLES_OK || PQntuples(r.r) != 1 || PQgetisnull(r.r, 0, 0)) {
    why = PQresultStatus(r.r) == PGRES_TUPLES_OK ? "outbox.message_key() returned nothing" : trim(PQresultErrorMessage(r.r));
    return std::nullopt;
  }
  return std::string(PQgetvalue(r.r, 0, 0), static_cast<std::size_t>(PQgetlength(r.r, 0, 0)));
}

std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> PgAdmin::parked_aggregates() {
  const char* params[] = {slot_.c_str()};
  Result r(PQexecParams(conn_,
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
  Result r(PQexecParams(conn_, "SELECT count, oldest, newest, republish FROM outbox.events_before_slot($1)", 1, nullptr,
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

bool PgAdmin::record_checkpoint(Lsn ack, std::int64_t commit_time_us) {
  if (!connected()) return false;
  std::string lsn = format_lsn(ack);
  std::string ts = std::to_string(static_cast<double>(commit_time_us) / 1e6);
  const char* params[] = {slot_.c_str(), lsn.c_str(), commit_time_us ? ts.c_str() : nullptr};
  Result r(PQexecParams(conn_, "SELECT outbox.record_checkpoint($1, $2::pg_lsn, to_timestamp($3::float8))", 3, nullptr,
                        params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) == PGRES_TUPLES_OK) return true;
  std::string err = PQresultErrorMessage(r.r);
  if (!warned_no_checkpoint_) {
    spdlog::warn("cannot record the checkpoint in outbox.relay_checkpoints: {}(is CREATE EXTENSION outbox done in this "
                 "database, and outbox.grant_relay() given to the relay role?)",
                 err);
    warned_no_checkpoint_ = true;
  }
  return false;
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

void PgAdmin::insert_dead_letter(const Event& ev, const std::string& reason_in, int attempts,
                                 std::int64_t first_failed_us, std::int64_t last_failed_us,
                                 const std::string& broker_reply_in) {
  if (!connected()) throw PgError(PgErrorKind::Retryable, "no database connection to write a dead letter");
  std::string reason = valid_text(reason_in), broker_reply = valid_text(broker_reply_in);
  std::string json = event_to_json(ev);
  std::string att = std::to_string(attempts);
  std::string f = std::to_string(static_cast<double>(first_failed_us) / 1e6);
  std::string l = std::to_string(static_cast<double>(last_failed_us) / 1e6);
  const char* params[] = {looks_like_uuid(ev.id) ? ev.id.c_str() : nullptr,
                          json.c_str(),
                          reason.c_str(),
                          att.c_str(),
                          f.c_str(),
                          l.c_str(),
                          broker_reply.empty() ? nullptr : broker_reply.c_str(),
                          slot_.c_str()};
  Result r(PQexecParams(conn_,
                        "INSERT INTO outbox.dead_letters (event_id, event, reason, attempts, first_failed_at, "
                        "last_failed_at, broker_reply, slot_name) VALUES ($1::uuid, $2::jsonb, $3, $4::int, "
                        "to_timestamp($5::float8), to_timestamp($6::float8), $7, $8)",
                        8, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.r) != PGRES_COMMAND_OK) {
    std::string err = PQresultErrorMessage(r.r);
    if (PQstatus(conn_) != CONNECTION_OK) throw PgError(PgErrorKind::Retryable, "writing a dead letter failed: " + err);
    const char* state = PQresultErrorField(r.r, PG_DIAG_SQLSTATE);
    std::string code = state ? state : "";
    // Only a missing extension or missing rights is a configuration problem; anything else is
    // retried (and logged each time) rather than stopping the relay because of one event.
    if (code != "42501" && code != "42P01" && code != "3F000" && code != "42883")
      throw PgError(PgErrorKind::Retryable, "writing a dead letter into outbox.dead_letters failed (" + code + "): " + err);
    throw PgError(PgErrorKind::Fatal, "writing a dead letter into outbox.dead_letters failed: " + err +
                                          "-- fix: CREATE EXTENSION outbox in this database and SELECT "
                                          "outbox.grant_relay('<relay role>')");
  }
}

}  // namespace outbox
