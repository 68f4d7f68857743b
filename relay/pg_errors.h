// PostgreSQL errors classified into what the relay does about them, each with the fix spelled out.
#pragma once
#include <stdexcept>
#include <string>

namespace outbox {

enum class PgErrorKind {
  Retryable,    // connection refused/lost, server restarting: reconnect with backoff
  SlotBusy,     // slot active in another process: wait as a standby and retry
  Fatal,        // configuration problem a human must fix: exit non-zero
};

struct PgError : std::runtime_error {
  PgErrorKind kind;
  PgError(PgErrorKind k, const std::string& msg) : std::runtime_error(msg), kind(k) {}
};

// Turns a server/libpq error text into a PgError whose message names the fix.
// `slot` and `plugin` fill in the hints.
PgError classify_pg_error(const std::string& server_message, const std::string& slot, const std::string& plugin);

}  // namespace outbox
