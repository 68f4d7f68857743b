// PostgreSQL errors classified into what the relay does about them, each with the fix spelled out.
// The server's errors are classified by SQLSTATE, never by their text: a server with another
// lc_messages writes them in another language. Errors without a SQLSTATE are libpq's own
// (connection refused or lost, TLS): the relay never calls setlocale, so libpq writes those in
// English, and their text may be matched.
#pragma once
#include <stdexcept>
#include <string>

struct pg_result;

namespace outbox {

enum class PgErrorKind {
  Retryable,  // connection refused/lost, server starting or shutting down, too many connections: reconnect with backoff
  SlotBusy,   // 55006: slot active in another process: wait as a standby and retry
  Auth,       // 28000/28P01: authentication refused: logged at error level with the fix on every attempt, retried
              // (a supervisor may be fixing the credentials), shown on /readyz
  Tls,        // the server's certificate does not verify (or TLS is required and impossible): exit 2 at start,
              // retried with an error at runtime
  Fatal,      // configuration problem a human must fix: exit 2
};

// Where the error happened: chooses the fix among the causes one SQLSTATE has.
enum class PgOp {
  Connect,             // the normal connection
  ReplicationConnect,  // the walsender connection (replication=database)
  Decoding,            // CREATE_REPLICATION_SLOT, START_REPLICATION, the stream
  Query,               // a query on the normal connection
};

struct PgError : std::runtime_error {
  PgErrorKind kind;
  std::string sqlstate;  // "" when libpq's own
  PgError(PgErrorKind k, const std::string& msg, std::string state = "")
      : std::runtime_error(msg), kind(k), sqlstate(std::move(state)) {}
};

// Classifies an error by its SQLSTATE ("" for libpq's own errors) into a PgError whose message is
// `message` (with the SQLSTATE) followed by the fix. `slot` and `plugin` fill in the hints.
PgError classify_pg_error(const std::string& sqlstate, const std::string& message, PgOp op, const std::string& slot,
                          const std::string& plugin);

// The same for a failed PGresult: "<what>: <server message>" classified by its SQLSTATE.
PgError pg_result_error(const std::string& what, const pg_result* r, PgOp op, const std::string& slot,
                        const std::string& plugin);

// A short name of the kind, for logs and /readyz ("authentication", "tls", ...).
const char* pg_error_kind_name(PgErrorKind k);

// A server or libpq message without its trailing newline and spaces.
std::string trim(std::string s);

// A failed write or call into the outbox extension that a human must fix (the extension, a
// function or a right is missing: 42883, 42501, 42P01, 3F000); any other SQLSTATE is retried.
bool needs_setup(const std::string& sqlstate);

}  // namespace outbox
