// Opens libpq connections with the relay's defaults: a connect timeout and TCP keepalives /
// user timeout so a dead server or a silent network is noticed in seconds, not at the kernel's
// ~15 minutes. Anything in the user's conninfo (--pg) overrides these defaults.
#pragma once
#include <string>

struct pg_conn;

namespace outbox {

// `replication`: add replication=database (walsender connection). Returns the connection, or
// nullptr with `error` (libpq's message, secrets of the conninfo masked) and `sqlstate` (the
// server's SQLSTATE when the server refused the connection, "" when libpq failed on its own:
// refused, timeout, TLS) set. The server's error fields are read from a verbose error message,
// so that errors are classified by SQLSTATE in any lc_messages.
pg_conn* pg_connect(const std::string& conninfo, bool replication, std::string& error, std::string& sqlstate);

// Pulls "SEVERITY:  XXXXX: " out of a verbose libpq connection error: returns the last SQLSTATE
// ("" if none) and rewrites `message` without it and without LOCATION lines.
std::string take_sqlstate(std::string& message);

}  // namespace outbox
