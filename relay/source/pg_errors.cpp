#include "source/pg_errors.h"

#include <libpq-fe.h>

namespace outbox {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

namespace {

bool has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

std::string create_slot_fix(const std::string& slot, const std::string& plugin) {
  return "start outbox-relay with --create-slot, or create it: SELECT pg_create_logical_replication_slot('" + slot +
         "', '" + plugin + "')";
}

std::string invalidated_fix(const std::string& slot) {
  return "the slot lost WAL it needed (max_slot_wal_keep_size). Events committed while it was invalid may not be "
         "published. fix: drop and recreate the slot (SELECT pg_drop_replication_slot('" + slot +
         "'); then --create-slot), and check outbox.events for what was missed";
}

std::string plugin_libraries_fix(const std::string& plugin) {
  return "add " + plugin +
         " to output_plugin_libraries in postgresql.conf (a setting of Debian's and Ubuntu's builds, e.g. "
         "output_plugin_libraries = 'pgoutput, test_decoding, wal2json, outbox_decoder') and reload";
}

// The fix for a server error, chosen by SQLSTATE and where it happened. The English text is only
// used to pick the most likely of a SQLSTATE's causes; every branch is right in any language.
PgError server_error(const std::string& st, const std::string& m, PgOp op, const std::string& slot,
                     const std::string& plugin) {
  auto fatal = [&](const std::string& fix) { return PgError(PgErrorKind::Fatal, m + " -- " + fix, st); };
  auto retry = [&](const std::string& why) {
    return PgError(PgErrorKind::Retryable, why.empty() ? m : m + " -- " + why, st);
  };
  const std::string cls = st.substr(0, 2);

  if (st == "55006") return PgError(PgErrorKind::SlotBusy, m, st);  // object_in_use: the slot is active elsewhere
  if (st == "28P01")
    return PgError(PgErrorKind::Auth,
                   m + " -- fix: check user and password in --pg (password=..., PGPASSWORD or ~/.pgpass)", st);
  if (cls == "28")
    return PgError(PgErrorKind::Auth,
                   m + " -- fix: check that the role in --pg exists and may log in (LOGIN), and that pg_hba.conf has "
                       "a line for it, its address and the database of --pg" +
                       // PostgreSQL matches a logical replication connection against the database's
                       // lines; the keyword replication there is for physical replication only.
                       (op == PgOp::ReplicationConnect
                            ? std::string(" ('host <database> <role> <address> <method>', as for the relay's other "
                                          "connection: a 'replication' line does not apply to logical replication)")
                            : std::string()) +
                       ", then reload PostgreSQL",
                   st);
  if (st == "42501") {  // insufficient_privilege
    if (op == PgOp::ReplicationConnect)
      return fatal("fix: ALTER ROLE <relay role> REPLICATION (the replication connection needs it)");
    if (op == PgOp::Decoding) {
      if (has(m, "output plugin")) return fatal("fix: " + plugin_libraries_fix(plugin));
      return fatal("fix: " + plugin_libraries_fix(plugin) + "; or, if the role lacks it, ALTER ROLE <relay role> REPLICATION");
    }
    return fatal("fix: SELECT outbox.grant_relay('<relay role>') in the outbox database (and ALTER ROLE <relay role> "
                 "REPLICATION)");
  }
  if (st == "42704") {  // undefined_object
    if (op == PgOp::Decoding) return fatal("the replication slot \"" + slot + "\" does not exist? fix: " + create_slot_fix(slot, plugin));
    return fatal("fix: CREATE EXTENSION outbox (or ALTER EXTENSION outbox UPDATE) in the database of --pg");
  }
  if (st == "42602")  // invalid_name
    return fatal("fix: choose a --slot of lower-case letters, digits and underscores, at most 63 bytes");
  if (st == "58P01")  // undefined_file: the plugin's library
    return fatal("fix: install the output plugin " + plugin +
                 (plugin == "wal2json" ? " (Debian: apt-get install postgresql-15-wal2json)"
                                       : " (make install in the pg-outbox tree)") +
                 " or choose another with --plugin");
  if (st == "55000") {  // object_not_in_prerequisite_state
    if (has(m, "wal_level")) return fatal("fix: set wal_level = logical in postgresql.conf and restart PostgreSQL");
    if (has(m, "invalidated") || has(m, "can no longer get changes")) return fatal(invalidated_fix(slot));
    if (has(m, "database")) return fatal("fix: connect --pg to the slot's database, or use another --slot");
    return fatal("the server is not in the state logical decoding needs. fix: check that wal_level = logical (then "
                 "restart PostgreSQL), that slot \"" + slot + "\" belongs to the database of --pg, and that it was not "
                 "invalidated (SELECT wal_status FROM pg_replication_slots: if lost, " + invalidated_fix(slot) + ")");
  }
  if (st == "3D000") return fatal("fix: check dbname in --pg (the database does not exist)");
  if (st == "22023" && op == PgOp::Decoding)
    return fatal("fix: the plugin refused the relay's options: check --plugin (and --shard) against the slot's plugin "
                 "and its version");
  if (st == "0A000") return fatal("fix: check --pg and --plugin: the server does not support what the relay asked");
  if (st == "53300")  // too_many_connections (max_connections, or max_wal_senders for replication)
    return retry("the server has no free connection; retrying. fix: raise max_connections (and max_wal_senders for "
                 "the replication connection) or stop other clients");
  if (st == "53400")  // configuration_limit_exceeded: max_replication_slots, max_wal_senders
    return retry("a server limit is reached; retrying. fix: raise max_replication_slots / max_wal_senders, or drop "
                 "unused slots");
  if (st == "57P01" || st == "57P02" || st == "57P03")  // shutdown, crash shutdown, cannot connect now
    return retry("the server is shutting down or starting up; retrying");
  if (cls == "08" || cls == "53" || cls == "57" || cls == "40" || cls == "XX" || cls == "58") return retry("");
  if (cls == "42") return fatal("fix: check --slot, --plugin and the relay role's privileges (SELECT outbox.grant_relay('<relay role>'))");
  return retry("");
}

// libpq's own errors (no SQLSTATE): in English, since the relay runs in the C locale.
PgError client_error(const std::string& m) {
  static const char* const kTls[] = {"certificate verify failed",     "does not match host name",
                                     "root certificate file",         "server does not support SSL",
                                     "certificate present, but not private key", "private key file",
                                     "certificate file",              "alert unknown ca",
                                     "alert bad certificate",         "alert certificate",
                                     "SSL error: unsupported protocol", "no client certificate"};
  // Option values libpq checks only when connecting (PQconninfoParse at start knows the keywords).
  if (has(m, "invalid port number") || has(m, "for connection option") || has(m, "could not match ") ||
      (has(m, "invalid ") && has(m, " value: \"")))
    return PgError(PgErrorKind::Fatal, m + " -- fix: correct that value in --pg (see "
                                           "https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-PARAMKEYWORDS)");
  for (const char* t : kTls)
    if (has(m, t))
      return PgError(PgErrorKind::Tls,
                     m + " -- fix: give --pg an sslrootcert with the CA that signed the server's certificate and a "
                         "host name that the certificate names (sslmode=verify-full), or another sslmode; for a "
                         "client certificate check sslcert and sslkey");
  return PgError(PgErrorKind::Retryable, m);
}

}  // namespace

PgError classify_pg_error(const std::string& sqlstate, const std::string& raw, PgOp op, const std::string& slot,
                          const std::string& plugin) {
  std::string m = trim(raw);
  if (sqlstate.empty()) return client_error(m);
  return server_error(sqlstate, m + " (SQLSTATE " + sqlstate + ")", op, slot, plugin);
}

PgError pg_result_error(const std::string& what, const pg_result* r, PgOp op, const std::string& slot,
                        const std::string& plugin) {
  const char* st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = r ? PQresultErrorMessage(r) : "";
  return classify_pg_error(st ? st : "", what + (msg.empty() ? "" : ": " + msg), op, slot, plugin);
}

const char* pg_error_kind_name(PgErrorKind k) {
  switch (k) {
    case PgErrorKind::Retryable: return "retryable";
    case PgErrorKind::SlotBusy: return "slot busy";
    case PgErrorKind::Auth: return "authentication";
    case PgErrorKind::Tls: return "tls";
    case PgErrorKind::Fatal: return "configuration";
  }
  return "?";
}

bool needs_setup(const std::string& sqlstate) {
  return sqlstate == "42883" || sqlstate == "42501" || sqlstate == "42P01" || sqlstate == "3F000";
}

}  // namespace outbox
