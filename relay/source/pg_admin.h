// The relay's normal (non-replication) PostgreSQL connection: pre-flight checks (wal_level,
// output_plugin_libraries, the slot's plugin and state), checkpoints into
// outbox.relay_checkpoints, dead letters into outbox.dead_letters, and slot recovery.
//
// Queries at session start wait for their answer, up to --pg-timeout-ms. The writes made while
// streaming (checkpoints, dead letters, the end of a recovery) are queued and sent with libpq's
// non-blocking API from the relay's poll loop, one at a time in queue order, so that a slow or
// silent database connection never stops the loop (AMQP heartbeats, replication keepalives).
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "delivery/ack_tracker.h"  // TxnProgress, kept with the checkpoint
#include "delivery/event.h"
#include "delivery/event_json.h"  // event_to_json, what insert_dead_letter writes
#include "delivery/lsn.h"
#include "source/pg_errors.h"

struct pg_conn;

namespace outbox {

struct SlotInfo {
  std::string plugin, slot_type, database, wal_status;
  bool active = false;
  int active_pid = 0;
  Lsn confirmed_flush = 0;
};

// The relay's row in outbox.relay_checkpoints.
struct CheckpointRow {
  Lsn acknowledged = 0;
  bool same_system = false;  // written on this cluster (not restored from another one's dump)
  bool recovering = false;   // a slot recovery has begun and not finished
  // How far into its oldest unacknowledged transaction the relay had settled (DESIGN 6.1), with
  // the timeline and --shard of the stream it was counted on (column txn_progress, 0.3).
  std::optional<TxnProgress> progress;
  int progress_timeline = 0;
  std::string progress_shard;
};

// One event to republish in a slot recovery: the line the decoder's outbox preset writes for its
// insert, with its transaction id and creation time (UTC text as in wal2json's B line).
struct RecoveredEvent {
  std::string id, created_at, line;
  std::uint64_t xid = 0;
};

// A queued write that completed.
struct AdminDone {
  enum class Kind { Checkpoint, DeadLetter, FinishRecovery, Rejected } kind = Kind::Checkpoint;
  std::uint64_t tag = 0;  // the dead letter's, as queued
};

class PgAdmin {
 public:
  PgAdmin(std::string slot, std::string plugin) : slot_(std::move(slot)), plugin_(std::move(plugin)) {}
  ~PgAdmin();
  PgAdmin(const PgAdmin&) = delete;
  PgAdmin& operator=(const PgAdmin&) = delete;

  // Every query and queued write gives up after this long without an answer.
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  void connect(const std::string& conninfo);  // throws PgError
  bool connected() const;
  void close();

  // Throws PgError(Fatal) naming the fix when the server cannot decode with the plugin. Returns
  // what it could not check ("" when nothing): output_plugin_libraries unreadable to the role.
  std::string check_server();
  std::optional<SlotInfo> slot_info();
  std::string current_database();
  // Validates the slot against the configuration; throws PgError (Fatal or SlotBusy).
  void check_slot(const SlotInfo& s, const std::string& database);

  // Throws PgError(Fatal) naming the fix when the outbox extension is not installed in this
  // database (CREATE EXTENSION outbox) or is a version this relay does not read
  // (unsupported_extension of support/build_info.h: older, ALTER EXTENSION outbox UPDATE; newer,
  // the relay of the extension's release). Without it no event is genuine, no dead letter can be written.
  void check_extension(const std::string& database);
  // What the relay role lacks of what outbox.grant_relay() gives ("" if nothing), the role's
  // name in `role`. Call after check_extension. Writes nothing; throws PgError when the query
  // fails.
  std::string missing_privileges(std::string* role = nullptr);

  // Every key of the database for wal-storage messages by id (SELECT * FROM outbox.message_keys(),
  // raw bytes). Throws PgError(Fatal) naming the fix when the relay cannot read them (extension
  // older than 0.3, or EXECUTE not granted): a relay without the keys would skip genuine events.
  std::vector<std::pair<std::uint32_t, std::string>> message_keys();

  // Aggregates (type, id) with a dead letter of this slot not yet replayed: parked under
  // --on-dead-letter=park. Throws PgError when the query fails.
  std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> parked_aggregates();

  // Right after the slot was created: how many events of outbox.events committed before it (the
  // slot will never decode them), and the outbox.republish() call that emits them again. Nothing
  // when there are none or the extension cannot say (older than 0.2, no grant): `why` says which.
  struct EventsBefore {
    long long count = 0;
    std::string oldest, newest, republish;
  };
  std::optional<EventsBefore> events_before_slot(std::string& why);

  // The relay's checkpoint row (nullopt when there is none or it cannot be read: older
  // extension, no grant).
  std::optional<CheckpointRow> checkpoint_row();
  // Slot recovery (outbox--0.1--0.2.sql, "Slot recovery"). Throws PgError(Fatal) naming the fix when
  // the extension or the grants are missing: a lost slot must not be recreated without it.
  // False when there was nothing to begin: the slot exists again (another relay made it).
  bool begin_slot_recovery();
  void slot_recovery_upper();
  std::vector<RecoveredEvent> slot_recovery_events(const std::string& after_id, int max_rows);

  // Queued writes. A checkpoint replaces one that is still queued (only the newest matters).
  // `progress` (with the stream's timeline and --shard) is recorded when the extension and the
  // grant allow it (outbox 0.3: record_checkpoint with txn_progress), else left out.
  void queue_checkpoint(Lsn ack, std::int64_t commit_time_us, const std::optional<TxnProgress>& progress = std::nullopt,
                        int timeline = 0, const std::string& shard = "");
  // Whether checkpoints carry the transaction progress (found by checkpoint_row()).
  bool records_progress() const { return records_progress_; }
  void queue_dead_letter(std::uint64_t tag, const Event& ev, const std::string& reason, int attempts,
                         std::int64_t first_failed_us, std::int64_t last_failed_us, const std::string& broker_reply);
  void queue_finish_recovery();
  // A line that is not a genuine outbox event, recorded in outbox.rejected_messages (position and
  // reason, never the content). Once per slot and LSN: a line sent again is not recorded twice.
  void queue_rejected(Lsn lsn, std::uint64_t xid, std::optional<std::uint32_t> key_id, std::size_t bytes,
                      const std::string& reason);
  // The WAL insert position right after the newest checkpoint written: its fence lies before.
  // Once the acknowledged LSN passes it, one more checkpoint makes the fence acked_snapshot.
  Lsn last_fence() const { return fence_; }
  // Sends the next queued write when none is in flight and reads what arrived; appends the
  // writes that completed to `done`. Throws PgError when the connection broke or a write got no
  // answer within the timeout (Retryable), or a dead letter cannot be written (Fatal when rights
  // or the extension are missing: the caller must then not acknowledge the event).
  void pump(std::vector<AdminDone>& done);
  bool busy() const { return in_flight_.has_value() || !queue_.empty(); }
  // For the loop's poll(): the socket, and whether to wait for it to be readable/writable.
  int socket() const;
  bool wants_read() const { return in_flight_.has_value(); }
  bool wants_write() const { return want_write_; }
  // When a write is in flight: when it times out.
  std::optional<std::chrono::steady_clock::time_point> deadline() const;
  // Waits (up to the timeout) until every queued write completed; used when stopping.
  void finish(std::vector<AdminDone>& done);

 private:
  struct Write {
    AdminDone::Kind kind;
    std::uint64_t tag = 0;
    std::string sql;
    std::vector<std::string> params;
    std::vector<bool> null;
  };
  // Both throw PgError(Retryable) when the connection broke or went silent.
  struct pg_result* query(const char* sql);
  struct pg_result* query_params(const char* sql, int n, const unsigned int* types, const char* const* params,
                                 const int* lengths, const int* formats, int result_format);
  void complete(struct pg_result* r, const Write& w);  // throws for a failed dead letter
  [[noreturn]] void lost(const std::string& what);

  std::string slot_, plugin_;
  pg_conn* conn_ = nullptr;
  bool warned_no_rejected_ = false;
  bool warned_no_checkpoint_ = false;
  bool records_progress_ = false;
  std::chrono::milliseconds timeout_{30000};
  std::deque<Write> queue_;
  std::optional<Write> in_flight_;
  std::chrono::steady_clock::time_point sent_at_{};
  bool want_write_ = false;
  Lsn fence_ = 0;
};

}  // namespace outbox
