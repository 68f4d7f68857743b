// Queries with a client-side deadline. libpq's blocking calls wait forever on a connection that
// went silent (a partition, a dead NAT entry: no FIN, no RST, and whatever holds the socket may
// even answer TCP keepalives), which would stop the relay's one thread. These send, flush and
// read in non-blocking mode with poll(), and give up at the deadline.
#pragma once
#include <chrono>
#include <string>

struct pg_conn;
struct pg_result;

namespace outbox {

// Runs `sql` (with $n parameters as text when n_params > 0, else as a simple query that may hold
// several statements) and returns its last result, which the caller checks and PQclear()s.
// Returns nullptr with `error` set when the connection broke or no answer came within `timeout`;
// the connection is then unusable (a request may still be under way) and must be closed.
pg_result* exec_bounded(pg_conn* conn, const std::string& sql, int n_params, const char* const* params,
                        int result_format, std::chrono::milliseconds timeout, std::string& error);

}  // namespace outbox
