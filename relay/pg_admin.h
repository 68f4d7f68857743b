// The relay's normal (non-replication) PostgreSQL connection: pre-flight checks (wal_level,
// output_plugin_libraries, the slot's plugin and state), checkpoints into
// outbox.relay_checkpoints and dead letters into outbox.dead_letters.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "event.h"
#include "event_json.h"  // event_to_json, what insert_dead_letter writes
#include "lsn.h"
#include "pg_errors.h"

struct pg_conn;

namespace outbox {

struct SlotInfo {
  std::string plugin, slot_type, database, wal_status;
  bool active = false;
  int active_pid = 0;
  Lsn confirmed_flush = 0;
};

class PgAdmin {
 public:
  PgAdmin(std::string slot, std::string plugin) : slot_(std::move(slot)), plugin_(std::move(plugin)) {}
  ~PgAdmin();
  PgAdmin(const PgAdmin&) = delete;
  PgAdmin& operator=(const PgAdmin&) = delete;

  void connect(const std::string& conninfo);  // throws PgError
  bool connected() const;
  void close();

  // Throws PgError(Fatal) naming the fix when the server cannot decode with the plugin.
  void check_server();
  std::optional<SlotInfo> slot_info();
  std::string current_database();
  // Validates the slot against the configuration; throws PgError (Fatal or SlotBusy).
  void check_slot(const SlotInfo& s, const std::string& database);

  // What the relay role lacks in this database ("" if nothing): the extension, EXECUTE on
  // outbox.record_checkpoint, INSERT on outbox.dead_letters. Writes nothing.
  std::string missing_privileges();

  // The database's key for wal-storage messages (SELECT outbox.message_key(), raw bytes), or
  // nullopt with `why` set (extension older than 0.2, or EXECUTE not granted).
  std::optional<std::string> message_key(std::string& why);

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

  // SELECT outbox.record_checkpoint(...). False (logged once) when the extension is missing.
  bool record_checkpoint(Lsn ack, std::int64_t commit_time_us);
  // INSERT INTO outbox.dead_letters. Throws PgError when it cannot be written (the caller must
  // then not acknowledge the event).
  void insert_dead_letter(const Event& ev, const std::string& reason, int attempts, std::int64_t first_failed_us,
                          std::int64_t last_failed_us, const std::string& broker_reply);

 private:
  std::string slot_, plugin_;
  pg_conn* conn_ = nullptr;
  bool warned_no_checkpoint_ = false;
};

}  // namespace outbox
