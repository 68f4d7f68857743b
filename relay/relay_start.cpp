// The relay's start (DESIGN 5.1, 6.2): the pre-flight shared by --check and every session, the
// session's connections, the slot and the position to stream from, the transaction progress of
// the last session, and the message keys.
#include "relay.h"

#include <algorithm>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "delivery/timestamp.h"
#include "sinks/sink_factory.h"

namespace outbox {

Relay::Preflight Relay::preflight() {
  if (!admin_.connected()) admin_.connect(cfg_.pg);
  m_.auth_failing_pg = false;
  Preflight p;
  p.unchecked = admin_.check_server();
  p.database = admin_.current_database();
  admin_.check_extension(p.database);
  std::string role;
  std::string missing = admin_.missing_privileges(&role);
  // Without them a dead letter cannot be written (the relay would stop at the first one) and
  // checkpoints and slot recovery fail: refused before a slot exists that nobody reads.
  if (!missing.empty())
    throw PgError(PgErrorKind::Fatal, "the relay role \"" + role + "\" lacks " + missing + " in database \"" +
                                          p.database + "\" -- fix: SELECT outbox.grant_relay('" + role +
                                          "') in that database (as a superuser)");
  p.slot = admin_.slot_info();
  if (!p.slot) {
    if (!cfg_.create_slot)
      throw PgError(PgErrorKind::Fatal, "replication slot \"" + cfg_.slot + "\" does not exist -- fix: start with "
                                        "--create-slot, or create it: SELECT pg_create_logical_replication_slot('" +
                                            cfg_.slot + "', '" + cfg_.plugin + "')");
    return p;
  }
  try {
    admin_.check_slot(*p.slot, p.database);
  } catch (const PgError& e) {
    if (e.kind != PgErrorKind::SlotBusy) throw;
    p.busy = e;
  }
  return p;
}

int Relay::check() {
  std::vector<std::unique_ptr<Sink>> sinks =
      make_sinks(cfg_.settings, cfg_.sinks, "outbox-relay check slot=" + cfg_.slot);
  bool unchecked = false;
  try {
    // Every sink in use, each checked without creating anything.
    for (const std::string& unused : cfg_.unused_sinks)
      spdlog::warn("check: setting {} is given but no [[routes]] rule and not --default-sink sends events there", unused);
    for (const std::string& what : cfg_.ignored) spdlog::warn("check: ignored: {}", what);
    for (const std::string& route : route_lines(cfg_)) spdlog::info("check: {}", route);
    for (auto& sink : sinks) {
      try {
        for (const std::string& line : sink->check()) spdlog::info("check: {}", line);
      } catch (SinkError& e) {
        e.sink = sink->display_name();
        throw;
      }
      sink->close();
    }
    Preflight p = preflight();
    spdlog::info("check: {} message keys readable", admin_.message_keys().size());
    repl_.connect(cfg_.pg);
    repl_.identify_system();
    use_server_encoding();
    if (!p.slot)
      spdlog::info("check: slot \"{}\" does not exist yet; --create-slot will create it with plugin {}", cfg_.slot,
                   cfg_.plugin);
    else if (p.busy)
      spdlog::info("check: {}; this relay would wait as a standby", p.busy->what());
    else
      spdlog::info("check: slot \"{}\" ok (plugin {}, confirmed {})", cfg_.slot, p.slot->plugin,
                   format_lsn(p.slot->confirmed_flush));
    spdlog::info("check: PostgreSQL ok (database {}, plugin {})", p.database, cfg_.plugin);
    if (!p.unchecked.empty()) {
      spdlog::warn("check: {}", p.unchecked);
      unchecked = true;
    }
  } catch (const PgError& e) {
    spdlog::critical("check failed: {}", e.what());
    close_session();
    admin_.close();
    return 2;
  } catch (const SinkError& e) {
    spdlog::critical("check failed: {}: {}", e.sink, e.what());
    for (auto& sink : sinks) sink->close();
    close_session();
    admin_.close();
    return 2;
  }
  close_session();
  admin_.close();
  if (unchecked)
    spdlog::warn("check passed, except what it could not check (the warning above): outbox-relay can start with these "
                 "settings unless that fails");
  else
    spdlog::info("check passed: outbox-relay can start with these settings");
  return 0;
}

void Relay::connect_session() {
  // The database first: a standby (slot busy elsewhere), a missing slot and every refusal of
  // --check are found without touching the broker, so waiting opens no broker connections.
  Preflight pre = preflight();
  if (pre.busy) throw *pre.busy;  // wait as a standby
  const std::string& db = pre.database;
  std::optional<SlotInfo> slot = pre.slot;

  // Then the brokers: no point in holding the slot (and keeping a standby out) without them.
  open_sinks();

  repl_.connect(cfg_.pg);
  m_.pg_connected = true;
  ReplicationStream::SystemInfo sys = repl_.identify_system();
  use_server_encoding();
  // The relay's own checkpoint: newer than the slot after a restart of PostgreSQL 15, and the
  // only trace left of the slot after a failover.
  std::optional<CheckpointRow> cp = admin_.checkpoint_row();
  bool slot_missing = !slot;
  // Status updates at least three times per wal_sender_timeout (this walsender's value), or the
  // server drops a relay that the broker holds back (it then reads no keepalives).
  if (!status_interval_configured_ms_) status_interval_configured_ms_ = cfg_.status_interval_ms;
  std::string timeout_text = repl_.show("wal_sender_timeout");
  long long timeout_ms = parse_duration_ms(timeout_text);
  int want = status_interval_configured_ms_;
  int use = timeout_ms > 0 && want > timeout_ms / 3 ? static_cast<int>(std::max<long long>(1, timeout_ms / 3)) : want;
  if (use != want && use != cfg_.status_interval_ms)
    spdlog::warn("--status-interval-ms {} is more than a third of the server's wal_sender_timeout ({}): sending status "
                 "updates every {} ms instead, so that the server does not drop the relay while the broker holds it "
                 "back -- fix: --status-interval-ms {} or less, or raise wal_sender_timeout",
                 want, timeout_text, use, use);
  cfg_.status_interval_ms = use;
  repl_silence_ms_ = std::max<long long>(cfg_.pg_timeout_ms, timeout_ms > 0 ? timeout_ms * 3 / 4 : 0);
  // Before a slot is made: a relay that cannot verify wal-storage events must not stream.
  load_message_keys();
  bool recover = false;
  if (!slot) {
    // A slot that is gone while this relay's checkpoint (of this cluster) remains: a failover
    // (PostgreSQL 15 copies no logical slot to standbys) or a slot dropped by hand. What it had
    // not delivered is republished from outbox.events before the new slot's first line; the
    // lower bound is recorded before the slot exists, so a crash in between loses nothing.
    recover = cp && cp->same_system;
    if (cp && !cp->same_system)
      spdlog::warn("the checkpoint of slot \"{}\" in outbox.relay_checkpoints was written on another cluster (a "
                   "restored dump?): it is not used",
                   cfg_.slot);
    if (recover && admin_.begin_slot_recovery()) cp->recovering = true;
    if (repl_.create_slot()) {
      spdlog::info("created replication slot \"{}\" with plugin {}", cfg_.slot, cfg_.plugin);
      if (recover) {
        m_.slot_recoveries++;
        spdlog::error("slot \"{}\" was lost (a failover, or dropped) after the relay had acknowledged {}; events of "
                      "outbox.events it had not delivered are republished now, with their original ids (consumers "
                      "de-duplicate). Events written with outbox.storage = wal that committed between {} and the new "
                      "slot (timeline {}, {}) existed only in the lost slot's WAL and cannot be recovered on "
                      "PostgreSQL 15 (see docs/design.md, failover)",
                      cfg_.slot, format_lsn(cp->acknowledged), format_lsn(cp->acknowledged), sys.timeline,
                      format_lsn(sys.flushed));
      } else {
        // The new slot decodes only what commits from now on: say what it will never see.
        std::string why;
        if (auto before = admin_.events_before_slot(why)) {
          if (before->count > 0)
            spdlog::warn("{} events in outbox.events committed before slot \"{}\" existed (from {} to {}) and will "
                         "not be published by it -- to publish them as new events (header outbox-original-id keeps "
                         "the old id): {}",
                         before->count, cfg_.slot, before->oldest, before->newest, before->republish);
        } else {
          spdlog::warn("cannot tell whether events committed before slot \"{}\" existed ({}); check outbox.events",
                       cfg_.slot, why);
        }
      }
    }
  }
  // Read again: the position to start from, and whether another relay took the slot meanwhile.
  slot = admin_.slot_info();
  if (!slot) throw PgError(PgErrorKind::Retryable, "slot \"" + cfg_.slot + "\" vanished right after creation");
  admin_.check_slot(*slot, db);
  if (cfg_.on_dead_letter == "park") {
    auto parked = admin_.parked_aggregates();
    for (auto& [type, id] : parked) delivery_.park(type, id);
    if (!parked.empty())
      spdlog::warn("{} aggregates are parked behind dead letters (--on-dead-letter=park): their events become dead "
                   "letters until SELECT outbox.release_parked(aggregate_type, aggregate_id)",
                   parked.size());
  }
  Lsn from = start_position(*slot, cp, sys);
  load_progress(cp, sys, slot_missing);
  session_start_ = from;
  tracker_.reset(from);
  ack_sent_ = from;
  if (cp && cp->recovering) {
    // After the slot exists: the upper bound sees every transaction the slot will not decode.
    admin_.slot_recovery_upper();
    recovery_ = Recovery{};
    recovery_.active = true;
    recovery_.txn = tracker_.begin();
    recovery_.at = from;
    spdlog::info("slot recovery: republishing the events of outbox.events slot \"{}\" did not deliver, before "
                 "streaming from {}",
                 cfg_.slot, format_lsn(from));
  }
  repl_.start(from == slot->confirmed_flush ? 0 : from, from);  // 0/0: the slot's confirmed_flush_lsn
  started_ = true;
  m_.streaming = true;
  m_.standby = false;
  m_.set_not_ready("");
  m_.ack_lsn = tracker_.ack_lsn();
  last_status_ = Clock::now();
  last_heard_ = Clock::now();
  pinged_ = false;
  last_checkpoint_ = Clock::time_point{};  // one at once: registers the relay, takes the first fence
  checkpoint_sent_ = 0;
  progress_sent_.reset();
}

void Relay::load_progress(const std::optional<CheckpointRow>& cp, const ReplicationStream::SystemInfo& sys,
                          bool slot_created) {
  resume_.clear();
  std::optional<LastProgress> last = std::exchange(last_progress_, std::nullopt);
  session_system_ = sys.system_id;
  session_timeline_ = sys.timeline;
  // A slot made in this start decodes only what commits from now on: no transaction counted on
  // the old one comes again. A transaction is recognised by its xid and first WAL record, which
  // mean the same thing only on the cluster (system identifier) and timeline they were counted
  // on (after a promotion the same position may hold another transaction), and with the same
  // --shard (another one would send events the old stream never had).
  if (slot_created) return;
  if (last && last->system_id == sys.system_id && last->timeline == sys.timeline) resume_.push_back(last->progress);
  if (cp && cp->same_system && cp->progress && cp->progress_timeline == sys.timeline && cp->progress_shard == cfg_.shard)
    resume_.push_back(*cp->progress);
  for (const TxnProgress& p : resume_)
    spdlog::info("transaction xid {} (first record at {}) was not acknowledged; its first {} events, below {}, were "
                 "settled: if the slot sends it again they are not published again",
                 p.txn.xid, format_lsn(p.txn.begin_lsn), p.settled, format_lsn(p.settled_before));
}

Lsn Relay::start_position(const SlotInfo& slot, const std::optional<CheckpointRow>& cp,
                          const ReplicationStream::SystemInfo& sys) {
  Lsn from = slot.confirmed_flush;
  if (!cp || !cp->same_system || cp->acknowledged <= from) return from;
  // Acknowledged by this relay, so confirmed by the broker, and durable in the table. Beyond
  // the server's flushed WAL it cannot be ours (a checkpoint row restored into a cluster that
  // has not reached it yet): then the slot decides.
  if (cp->acknowledged > sys.flushed) {
    spdlog::warn("the checkpoint of slot \"{}\" ({}) is ahead of the server's WAL ({}): starting from the slot's {}",
                 cfg_.slot, format_lsn(cp->acknowledged), format_lsn(sys.flushed), format_lsn(from));
    return from;
  }
  m_.checkpoint_skips++;
  spdlog::info("starting at the relay's checkpoint {}, ahead of the position slot \"{}\" saved ({}): PostgreSQL 15 "
               "saves it only at checkpoints, and what lies between was confirmed by the broker already",
               format_lsn(cp->acknowledged), cfg_.slot, format_lsn(from));
  return cp->acknowledged;
}

void Relay::load_message_keys() {
  // Throws PgError(Fatal) when the keys cannot be read: a relay that cannot verify wal-storage
  // events must not stream, or it would skip them and acknowledge past them.
  auto keys = admin_.message_keys();
  std::size_t before = parser_.message_key_count();
  for (auto& [id, key] : keys) {
    try {
      parser_.add_message_key(id, std::move(key));
    } catch (const std::invalid_argument& e) {
      throw PgError(PgErrorKind::Fatal, e.what());
    }
  }
  last_key_reload_ = Clock::now();
  if (parser_.message_key_count() != before)
    spdlog::info("holding {} message keys ({} in outbox.message_key_store)", parser_.message_key_count(), keys.size());
}

bool Relay::reload_message_keys(bool rate_limited) {
  constexpr auto kEvery = std::chrono::seconds(1);
  if (rate_limited && Clock::now() - last_key_reload_ < kEvery) return false;
  // The normal connection answers one query at a time: the queued writes first (what they
  // complete is taken by the next pump_admin).
  admin_.finish(admin_done_);
  load_message_keys();
  m_.key_reloads++;
  return true;
}

}  // namespace outbox
