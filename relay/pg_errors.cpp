#include "pg_errors.h"

namespace outbox {

namespace {
bool has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }
std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

PgError classify_pg_error(const std::string& raw, const std::string& slot, const std::string& plugin) {
  std::string m = trim(raw);
  if (has(m, "logical decoding requires wal_level") || has(m, "wal_level >= logical"))
    return {PgErrorKind::Fatal, m + " -- fix: set wal_level = logical in postgresql.conf and restart PostgreSQL"};
  if (has(m, "may not be used as an output plugin"))
    return {PgErrorKind::Fatal, m + " -- fix: add " + plugin +
                                    " to output_plugin_libraries in postgresql.conf (e.g. output_plugin_libraries = "
                                    "'pgoutput, test_decoding, wal2json, outbox_decoder') and reload"};
  if (has(m, "could not access file") || (has(m, "could not load library") && has(m, plugin.c_str())))
    return {PgErrorKind::Fatal, m + " -- fix: install the output plugin " + plugin +
                                    (plugin == "wal2json" ? " (Debian: apt-get install postgresql-15-wal2json)"
                                                          : " (make install in the pg-outbox tree)") +
                                    " or choose another with --plugin"};
  if (has(m, "does not exist") && has(m, "replication slot"))
    return {PgErrorKind::Fatal, m + " -- fix: start outbox-relay with --create-slot, or create it: SELECT "
                                    "pg_create_logical_replication_slot('" + slot + "', '" + plugin + "')"};
  if (has(m, "is active for PID") || has(m, "is already active"))
    return {PgErrorKind::SlotBusy, m};
  if (has(m, "can no longer get changes") || has(m, "has been invalidated") || has(m, "invalidated"))
    return {PgErrorKind::Fatal, m + " -- the slot lost WAL it needed (max_slot_wal_keep_size). Events committed while "
                                    "it was invalid may not be published. fix: drop and recreate the slot "
                                    "(SELECT pg_drop_replication_slot('" + slot + "'); then --create-slot), and check "
                                    "outbox.events for what was missed"};
  if (has(m, "must be superuser or replication role") || has(m, "permission denied to start WAL sender") ||
      has(m, "must have the REPLICATION") || has(m, "permission denied to use replication slots") ||
      has(m, "must be superuser or have REPLICATION"))
    return {PgErrorKind::Fatal, m + " -- fix: ALTER ROLE <relay role> REPLICATION; and SELECT outbox.grant_relay('<relay role>')"};
  if (has(m, "permission denied for") || has(m, "must be superuser or have privileges"))
    return {PgErrorKind::Fatal, m + " -- fix: SELECT outbox.grant_relay('<relay role>') in the outbox database"};
  if (has(m, "no pg_hba.conf entry for replication"))
    return {PgErrorKind::Fatal, m + " -- fix: add a 'host replication <role> <address> <method>' line to pg_hba.conf and reload"};
  if (has(m, "password authentication failed") || has(m, "role \"") || has(m, "database \""))
    return {PgErrorKind::Fatal, m + " -- fix: check user, password and dbname in --pg"};
  if (has(m, "was created by a different database"))
    return {PgErrorKind::Fatal, m + " -- fix: connect --pg to the slot's database, or use another --slot"};
  if (has(m, "already exists"))
    return {PgErrorKind::Retryable, m};
  return {PgErrorKind::Retryable, m};
}

}  // namespace outbox
