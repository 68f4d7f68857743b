// The replication side: a libpq connection with replication=database, slot creation,
// START_REPLICATION with the plugin's options, non-blocking CopyBoth reads (XLogData 'w',
// keepalive 'k') and standby status updates ('r').
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "delivery/lsn.h"
#include "source/pg_errors.h"

struct pg_conn;

namespace outbox {

struct ReplMessage {
  enum class Kind { None, XLogData, Keepalive } kind = Kind::None;
  Lsn data_start = 0;  // XLogData
  Lsn wal_end = 0;     // both
  bool reply_requested = false;  // keepalive
  std::string_view data;         // XLogData payload, valid until the next read()
};

// The output plugins the relay reads: outbox_decoder, wal2json.
const std::vector<std::string>& supported_plugins();

// The START_REPLICATION options for a plugin (DESIGN 4): the outbox preset.
std::vector<std::pair<std::string, std::string>> plugin_options(const std::string& plugin,
                                                                const std::string& shard = "");

// Builds "key=value" libpq parameters from a conninfo/URI plus overrides, for PQconnectdbParams
// with expand_dbname.
class ReplicationStream {
 public:
  ReplicationStream(std::string slot, std::string plugin, std::string shard = "")
      : slot_(std::move(slot)), plugin_(std::move(plugin)), shard_(std::move(shard)) {}
  ~ReplicationStream();
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  void connect(const std::string& conninfo);  // throws PgError
  // IDENTIFY_SYSTEM: the cluster, its timeline and WAL flush position, and the database the
  // walsender is attached to.
  struct SystemInfo {
    std::string system_id, dbname;
    int timeline = 0;
    Lsn flushed = 0;
  };
  SystemInfo identify_system();
  // SHOW name over the walsender connection: the value this walsender uses (e.g. "60s"), as text.
  std::string show(const std::string& name);
  // CREATE_REPLICATION_SLOT; false if it already existed. On PostgreSQL 17 and later the slot is
  // created with FAILOVER, so that standbys with sync_replication_slots keep a copy and a
  // promotion needs no recovery (PostgreSQL 15 and 16 have no such slots: see docs/design.md).
  bool create_slot();
  // START_REPLICATION SLOT ... LOGICAL from (options); `at` is where that is (0/0 asks for the
  // slot's confirmed_flush_lsn, which the log must show, not 0/0).
  void start(Lsn from, Lsn at);
  // Reads the next message without blocking (Kind::None when nothing complete is buffered).
  // Throws PgError when the stream ended or the connection broke.
  ReplMessage read();
  // Reads what the socket has into libpq's buffer. Throws PgError on a broken connection.
  void consume_input();
  // Queues a standby status update and tries to flush it.
  void send_status(Lsn write, Lsn flush, Lsn apply, bool reply_requested);
  // Tries to send queued output; true when everything was sent.
  bool flush();
  int socket() const;
  bool connected() const { return conn_ != nullptr; }
  void close();

 private:
  [[noreturn]] void fail(const std::string& what);
  struct pg_result* bounded(const std::string& sql);  // a command with --pg-timeout-ms
  std::string slot_, plugin_, shard_;
  pg_conn* conn_ = nullptr;
  char* buf_ = nullptr;
  std::chrono::milliseconds timeout_{30000};
};

// A duration setting as SHOW prints it ("500ms", "60s", "1min", "2h", "1d", "0", a bare number of
// `unit_ms`): milliseconds, or -1 when it is not one.
long long parse_duration_ms(const std::string& text, long long unit_ms = 1);

// Microseconds since 2000-01-01 (PostgreSQL epoch), for the status update's clock field.
std::int64_t pg_now_us();

}  // namespace outbox
