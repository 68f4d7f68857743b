#include "source/pg_connect.h"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <libpq-fe.h>

#include "support/mask.h"

namespace outbox {

namespace {

bool is_state_char(char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'A' && c <= 'Z'); }

// The effective value of a connection option ("" when unset).
std::string option(pg_conn* c, const char* key) {
  std::string v;
  if (PQconninfoOption* opts = PQconninfo(c)) {
    for (PQconninfoOption* o = opts; o->keyword; ++o)
      if (std::strcmp(o->keyword, key) == 0 && o->val) v = o->val;
    PQconninfoFree(opts);
  }
  return v;
}

}  // namespace

std::string take_sqlstate(std::string& m) {
  // libpq writes a server error as "<severity>:  <SQLSTATE>: <message>" at verbosity VERBOSE; the
  // severity is the server's (translated), the SQLSTATE is not. With several hosts the last
  // server error is the one that ended the attempt.
  std::string state;
  std::size_t found = std::string::npos;
  for (std::size_t p = m.find(":  "); p != std::string::npos; p = m.find(":  ", p + 1)) {
    std::size_t s = p + 3;
    if (s + 7 <= m.size() && m[s + 5] == ':' && m[s + 6] == ' ') {
      bool ok = true;
      for (std::size_t i = 0; i < 5; ++i) ok = ok && is_state_char(m[s + i]);
      if (ok) {
        state = m.substr(s, 5);
        found = s;
      }
    }
  }
  if (found != std::string::npos) m.erase(found, 7);
  // LOCATION lines (source file and line of the server) are noise for an operator.
  std::string out;
  std::size_t b = 0;
  while (b < m.size()) {
    std::size_t e = m.find('\n', b);
    std::size_t end = e == std::string::npos ? m.size() : e + 1;
    if (m.compare(b, 11, "LOCATION:  ") != 0) out.append(m, b, end - b);
    b = end;
  }
  m = out;
  return state;
}

pg_conn* pg_connect(const std::string& conninfo, bool replication, std::string& error, std::string& sqlstate) {
  error.clear();
  sqlstate.clear();
  // Later entries override earlier ones; the expanded conninfo (dbname with expand_dbname) comes
  // after the defaults, so the user's settings win. Empty values are ignored by libpq.
  std::vector<const char*> keys = {"connect_timeout", "keepalives",         "keepalives_idle",
                                   "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                   "fallback_application_name", "dbname"};
  std::vector<const char*> vals = {"10", "1", "15", "5", "3", "30000", "outbox-relay", conninfo.c_str()};
  if (replication) {
    keys.push_back("replication");
    vals.push_back("database");
  }
  // After the user's conninfo, so that it always holds: the relay's strings (dead letters it
  // writes, rows it reads back, error texts) are UTF-8 whatever the database's encoding, and
  // the server converts them.
  keys.push_back("client_encoding");
  vals.push_back("UTF8");
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  auto fail = [&](pg_conn* c, bool verbose) -> pg_conn* {
    error = c ? PQerrorMessage(c) : "out of memory";
    if (verbose) sqlstate = take_sqlstate(error);
    error = mask_secrets(error, conninfo_secret_values(conninfo));
    if (c) PQfinish(c);
    return nullptr;
  };

  // Non-blocking, so that the error verbosity can be set before the server answers: its error
  // fields (the SQLSTATE) then appear in the message.
  pg_conn* c = PQconnectStartParams(keys.data(), vals.data(), 1);
  if (!c || PQstatus(c) == CONNECTION_BAD) return fail(c, false);
  PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
  int timeout_s = std::atoi(option(c, "connect_timeout").c_str());
  bool several_hosts = option(c, "host").find(',') != std::string::npos ||
                       option(c, "hostaddr").find(',') != std::string::npos;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s > 0 ? timeout_s : 3600 * 24);
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      PQfinish(c);
      if (!several_hosts) {
        error = "connection to the server timed out (connect_timeout " + std::to_string(timeout_s) + " s)";
        return nullptr;
      }
      // libpq's blocking connect moves on to the next host after connect_timeout, which the
      // non-blocking one cannot: let it (its errors then carry no SQLSTATE).
      c = PQconnectdbParams(keys.data(), vals.data(), 1);
      if (!c || PQstatus(c) != CONNECTION_OK) return fail(c, false);
      return c;
    }
    pollfd p{PQsocket(c), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    // Only a ready socket moves the connection on (a signal, EINTR, just waits again).
    if (p.fd >= 0 && ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000))) <= 0) continue;
    st = PQconnectPoll(c);
  }
  if (st == PGRES_POLLING_FAILED || PQstatus(c) != CONNECTION_OK) return fail(c, true);
  PQsetErrorVerbosity(c, PQERRORS_DEFAULT);
  return c;
}

}  // namespace outbox
