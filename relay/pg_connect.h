// Opens libpq connections with the relay's defaults: a connect timeout and TCP keepalives /
// user timeout so a dead server or a silent network is noticed in seconds, not at the kernel's
// ~15 minutes. Anything in the user's conninfo (--pg) overrides these defaults.
#pragma once
#include <string>

struct pg_conn;

namespace outbox {

// `replication`: add replication=database (walsender connection). Returns the connection even
// when it failed (check PQstatus); nullptr only when out of memory.
pg_conn* pg_connect(const std::string& conninfo, bool replication);

}  // namespace outbox
