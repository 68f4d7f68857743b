#include "pg_connect.h"

#include <vector>

#include <libpq-fe.h>

namespace outbox {

pg_conn* pg_connect(const std::string& conninfo, bool replication) {
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
  keys.push_back(nullptr);
  vals.push_back(nullptr);
  return PQconnectdbParams(keys.data(), vals.data(), 1);
}

}  // namespace outbox
