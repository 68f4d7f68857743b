#include "source/pg_query.h"

#include <poll.h>

#include <cerrno>

#include <libpq-fe.h>

namespace outbox {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for the socket until `deadline`; false when it passed.
bool wait_socket(pg_conn* conn, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{PQsocket(conn), events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let libpq report the broken socket
  }
}

}  // namespace

PGresult* exec_bounded(PGconn* conn, const std::string& sql, int n_params, const char* const* params,
                       int result_format, std::chrono::milliseconds timeout, std::string& error) {
  error.clear();
  auto deadline = Clock::now() + timeout;
  auto silent = [&] {
    error = "PostgreSQL did not answer within " + std::to_string(timeout.count()) +
            " ms (a silent network, or an overloaded server; --pg-timeout-ms sets the limit)";
    return nullptr;
  };
  if (!conn || PQstatus(conn) != CONNECTION_OK) {
    error = "not connected";
    return nullptr;
  }
  if (PQisnonblocking(conn) == 0 && PQsetnonblocking(conn, 1) != 0) {
    error = PQerrorMessage(conn);
    return nullptr;
  }
  int sent = n_params > 0 || result_format != 0
                 ? PQsendQueryParams(conn, sql.c_str(), n_params, nullptr, params, nullptr, nullptr, result_format)
                 : PQsendQuery(conn, sql.c_str());
  if (!sent) {
    error = PQerrorMessage(conn);
    return nullptr;
  }
  while (true) {
    int f = PQflush(conn);
    if (f == 0) break;
    if (f < 0) {
      error = PQerrorMessage(conn);
      return nullptr;
    }
    if (!wait_socket(conn, POLLOUT | POLLIN, deadline)) return silent();
    if (PQconsumeInput(conn) == 0) {
      error = PQerrorMessage(conn);
      return nullptr;
    }
  }
  PGresult* last = nullptr;
  while (true) {
    while (PQisBusy(conn)) {
      if (!wait_socket(conn, POLLIN, deadline)) {
        if (last) PQclear(last);
        return silent();
      }
      if (PQconsumeInput(conn) == 0) {
        if (last) PQclear(last);
        error = PQerrorMessage(conn);
        return nullptr;
      }
    }
    PGresult* r = PQgetResult(conn);
    if (!r) break;
    if (last) PQclear(last);
    last = r;
  }
  if (!last) error = PQerrorMessage(conn);
  return last;
}

}  // namespace outbox
