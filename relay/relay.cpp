#include "relay.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "delivery/backoff.h"
#include "delivery/router.h"
#include "sinks/sink_factory.h"
#include "delivery/timestamp.h"

namespace outbox {

namespace {

constexpr auto kMinStatusGap = std::chrono::milliseconds(5);   // progress updates at most this often
constexpr int kMaxMessagesPerTurn = 2000;                      // then look at the broker again

// Rejected lines are logged one by one up to this many, then one in kRejectLogEvery: a role that
// forges messages in a loop must not be able to flood the log (the metric counts them all).
constexpr std::uint64_t kRejectLogFirst = 20;
constexpr std::uint64_t kRejectLogEvery = 1000;

// The usable sinks batch their writes for a scope (one pump, one read of the slot), and the same
// ones write at its end: a sink that broke meanwhile is down (null in the live list) by then.
class SinkBatch {
 public:
  explicit SinkBatch(const std::vector<Sink*>& live) : sinks_(live) {
    for (Sink* s : sinks_)
      if (s) s->batch(true);
  }
  ~SinkBatch() {
    for (Sink* s : sinks_)
      if (s) s->batch(false);
  }
  SinkBatch(const SinkBatch&) = delete;
  SinkBatch& operator=(const SinkBatch&) = delete;

 private:
  std::vector<Sink*> sinks_;
};

DeliveryOptions delivery_options(const Config& c) {
  DeliveryOptions o;
  o.ordering = c.ordering == "commit" ? Ordering::Commit : Ordering::Aggregate;
  o.on_dead_letter = c.on_dead_letter == "park" ? OnDeadLetter::Park : OnDeadLetter::Continue;
  o.max_attempts = c.max_attempts;
  o.retry_base = std::chrono::milliseconds(c.retry_base_ms);
  o.retry_max = std::chrono::milliseconds(c.retry_max_ms);
  o.max_in_flight = static_cast<std::size_t>(c.max_in_flight);
  o.max_in_flight_bytes = static_cast<std::uint64_t>(c.max_in_flight_bytes);
  // Twice the window: enough read ahead to keep the window full while some aggregates wait,
  // without holding (and parsing) far more than the broker can take.
  o.max_held = 2 * o.max_in_flight;
  o.default_exchange = c.exchange;
  o.default_exchange_sink = static_cast<std::size_t>(-1);
  for (std::size_t i = 0; i < c.sinks.size(); ++i)
    if (c.sinks[i] == "rabbitmq") o.default_exchange_sink = i;
  if (c.sinks.size() > 1) {
    auto router = std::make_shared<Router>(c.routes, c.default_sink, c.sinks);
    o.route = [router](const Event& ev) { return router->route(ev); };
  }
  return o;
}

}  // namespace

Relay::Relay(Config cfg, Metrics& metrics)
    : cfg_(std::move(cfg)),
      m_(metrics),
      admin_(cfg_.slot, cfg_.plugin),
      repl_(cfg_.slot, cfg_.plugin, cfg_.shard),
      delivery_(delivery_options(cfg_)) {
  admin_.set_timeout(std::chrono::milliseconds(cfg_.pg_timeout_ms));
  shard_ = Shard::parse(cfg_.shard);
  repl_.set_timeout(std::chrono::milliseconds(cfg_.pg_timeout_ms));
  if (pipe2(wake_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  sinks_ = make_sinks(cfg_.settings, cfg_.sinks, "outbox-relay slot=" + cfg_.slot);
  for (auto& s : sinks_) {
    sink_ptrs_.push_back(s.get());
    openers_.emplace_back();
    SinkState st;
    st.metrics = Metrics::sink_index(s->name());
    m_.sinks[st.metrics].active = true;
    sink_state_.push_back(st);
  }
}

Relay::~Relay() {
  close_session();
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

void Relay::request_stop() {
  stop_.store(true);
  char c = 1;
  [[maybe_unused]] auto n = ::write(wake_pipe_[1], &c, 1);
}

void Relay::drain_wake_pipe() {
  char buf[64];
  while (::read(wake_pipe_[0], buf, sizeof buf) > 0) {
  }
}

bool Relay::wait_interruptible(std::chrono::milliseconds d) {
  auto until = Clock::now() + d;
  while (!stop_.load()) {
    // A relay waiting (standby, backoff) is healthy: keep /healthz's heartbeat fresh.
    m_.loop_heartbeat_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return true;
    pollfd p{wake_pipe_[0], POLLIN, 0};
    // A byte a sink's opener left when its session ended would make every poll return at once.
    if (::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left, 1000))) > 0) drain_wake_pipe();
  }
  return false;
}

void Relay::close_session(bool finish_writes) {
  if (finish_writes && admin_.busy()) {
    try {
      admin_.finish(admin_done_);
    } catch (const PgError& e) {
      spdlog::warn("database writes queued when the session ended could not be completed: {}", e.what());
    }
    for (const AdminDone& done : admin_done_) {
      auto it = done.kind == AdminDone::Kind::DeadLetter ? dead_letters_writing_.find(done.tag)
                                                         : dead_letters_writing_.end();
      if (it == dead_letters_writing_.end()) continue;
      delivery_.dead_letter_written(it->second);  // remembered across the reset: not written twice
      m_.dead_letters++;
    }
  }
  m_.streaming = false;
  m_.pg_connected = false;
  m_.amqp_connected = false;
  repl_.close();
  for (std::size_t i = 0; i < sinks_.size(); ++i) {
    if (openers_[i].running())
      spdlog::info("{}: waiting for the reconnect under way to end (at most the connect timeout)",
                   sinks_[i]->display_name());
    openers_[i].abandon();
    sinks_[i]->close();
    set_down(i, false);
    m_.sinks[sink_state_[i].metrics].connected = false;
    m_.sinks[sink_state_[i].metrics].blocked = false;
  }
  drain_wake_pipe();  // what the abandoned opens wrote: stop_ keeps a stop request
  delivery_.reset();
  // Known again when the next session's events are refused (said again then).
  destination_warned_.clear();
  m_.set_paused("");
  for (auto& st : sink_state_) m_.sinks[st.metrics].destination_missing = false;
  outcomes_.clear();
  // A write may be under way on the database connection: the next session opens a new one.
  // Dead letters not yet written were not settled, so the slot sends their events again.
  if (admin_.busy()) admin_.close();
  admin_done_.clear();
  dead_letters_writing_.clear();
  recovery_ = Recovery{};
  send_full_ = false;
  in_txn_ = false;
  pg_more_ = false;
  blocked_ = false;
  m_.broker_blocked = false;
  // What this session settled of its oldest unacknowledged transaction: the next session (same
  // process) skips it if the slot sends that transaction again. Taken before the tracker forgets.
  if (auto p = tracker_.progress(); p && !session_system_.empty())
    last_progress_ = LastProgress{*p, session_system_, session_timeline_};
  skip_.reset();
  tracker_.reset(tracker_.ack_lsn());
  m_.in_flight = 0;
}

int Relay::run() {
  BackoffPolicy reconnect{std::chrono::milliseconds(cfg_.reconnect_min_ms), std::chrono::milliseconds(cfg_.reconnect_max_ms),
                          0.5};
  int attempt = 0;
  // A standby checks the slot about once a second on its database connection (nothing else is
  // opened); it says so once, then once a minute.
  constexpr auto kStandbyLogEvery = std::chrono::minutes(1);
  Clock::time_point standby_since{}, standby_logged{};
  bool standby = false;
  while (!stop_.load()) {
    m_.loop_heartbeat_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    try {
      connect_session();
      if (standby)
        spdlog::info("took over slot \"{}\" after {} s as a standby", cfg_.slot,
                     std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - standby_since).count());
      standby = false;
      attempt = 0;
      stream();
      // stream() returns only when stopping.
      close_session();
      admin_.close();
      spdlog::info("stopped; acknowledged LSN {}", format_lsn(tracker_.ack_lsn()));
      return 0;
    } catch (const PgError& e) {
      close_session();
      // A mistake in the settings, or at start a certificate that does not verify: retrying
      // cannot fix it. Later a TLS failure may be a certificate being rotated: retried, loudly.
      if (e.kind == PgErrorKind::Fatal || (e.kind == PgErrorKind::Tls && !started_)) {
        spdlog::critical("{}", e.what());
        admin_.close();
        return 2;
      }
      ++attempt;
      auto d = backoff_delay(reconnect, attempt, rng_);
      if (e.kind == PgErrorKind::SlotBusy) {
        m_.standby_waits++;
        m_.standby = true;
        m_.set_not_ready(std::string("standby: ") + e.what());
        d = std::min(d, std::chrono::milliseconds(std::max(cfg_.reconnect_min_ms, 1000)));
        auto now = Clock::now();
        if (!standby) {
          standby = true;
          standby_since = standby_logged = now;
          spdlog::info("{}; waiting as a hot standby: checking the slot about every {} ms on the database "
                       "connection, without a broker connection (logged again every minute while it lasts)",
                       e.what(), std::min(std::max(cfg_.reconnect_min_ms, 1000), std::max(cfg_.reconnect_max_ms, 1)));
        } else if (now - standby_logged >= kStandbyLogEvery) {
          standby_logged = now;
          spdlog::info("still waiting as a standby for slot \"{}\" ({} s so far): {}", cfg_.slot,
                       std::chrono::duration_cast<std::chrono::seconds>(now - standby_since).count(), e.what());
        }
      } else {
        m_.reconnects_pg++;
        m_.set_not_ready(std::string("PostgreSQL: ") + e.what());
        if (e.kind == PgErrorKind::Auth) {
          // Every attempt says so at level error: a supervisor may be fixing the credentials.
          m_.auth_failures_pg++;
          m_.auth_failing_pg = true;
          spdlog::error("PostgreSQL refused the login: {}; retrying in {} ms", e.what(), d.count());
        } else if (e.kind == PgErrorKind::Tls) {
          spdlog::error("PostgreSQL: {}; retrying in {} ms", e.what(), d.count());
        } else {
          spdlog::warn("PostgreSQL: {}; reconnecting in {} ms", e.what(), d.count());
        }
        admin_.close();
      }
      if (!wait_interruptible(d)) break;
    } catch (const SinkError& e) {
      close_session(true);
      const std::string who = e.sink.empty() ? "broker" : e.sink;
      if (e.kind == SinkErrorKind::Config || (e.kind == SinkErrorKind::Tls && !started_)) {
        spdlog::critical("{}: {}", who, e.what());
        admin_.close();
        return 2;
      }
      if (who == "RabbitMQ") m_.reconnects_amqp++;
      update_gauges();
      ++attempt;
      auto d = backoff_delay(reconnect, attempt, rng_);
      m_.set_not_ready(who + ": " + e.what());
      if (e.kind == SinkErrorKind::Auth) {
        if (who == "RabbitMQ") {
          m_.auth_failures_amqp++;
          m_.auth_failing_amqp = true;
        }
        spdlog::error("{}: {}; retrying in {} ms", who, e.what(), d.count());
      } else if (e.kind == SinkErrorKind::Tls) {
        spdlog::error("{}: {}; retrying in {} ms", who, e.what(), d.count());
      } else {
        spdlog::warn("{}: {}; reconnecting in {} ms", who, e.what(), d.count());
      }
      if (!wait_interruptible(d)) break;
    } catch (const StartError& e) {
      close_session();
      spdlog::critical("{}", e.what());
      admin_.close();
      return 2;
    } catch (const ParseError& e) {
      close_session();
      spdlog::critical("cannot parse the output of plugin {}: {} -- the slot was not acknowledged past it; fix: check "
                       "that slot \"{}\" uses the outbox preset of {} (format-version 2)",
                       cfg_.plugin, e.what(), cfg_.slot, cfg_.plugin);
      return 2;
    } catch (const std::exception& e) {
      // A bug (e.g. an AckTracker invariant) or a system failure: stop without acknowledging more.
      close_session();
      spdlog::critical("internal error: {} -- nothing past the last acknowledged LSN {} was acknowledged; please report it",
                       e.what(), format_lsn(tracker_.ack_lsn()));
      return 3;
    }
  }
  close_session();
  admin_.close();
  spdlog::info("stopped; acknowledged LSN {}", format_lsn(tracker_.ack_lsn()));
  return 0;
}

Relay::Preflight Relay::preflight() {
  if (!admin_.connected()) admin_.connect(cfg_.pg);
  m_.auth_failing_pg = false;
  admin_.check_server();
  Preflight p;
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
  try {
    // Every sink in use, each checked without creating anything.
    for (const std::string& unused : cfg_.unused_sinks)
      spdlog::warn("check: setting {} is given but no [[routes]] rule and not --default-sink sends events there", unused);
    for (const std::string& what : cfg_.ignored) spdlog::warn("check: ignored: {}", what);
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
  repl_.start(from == slot->confirmed_flush ? 0 : from);  // 0/0: the slot's confirmed_flush_lsn
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

bool Relay::can_read() const {
  // While stopping, only the transaction already begun is read to its end (so that it can be
  // acknowledged and is not sent again by the next relay); nothing new is started.
  return (!stopping_ || in_txn_) && !blocked_ && !send_full_ && delivery_.accepting() &&
         !(recovery_.active && !recovery_.fetched_all);
}

void Relay::update_gauges() {
  m_.in_flight = static_cast<std::int64_t>(delivery_.in_flight());
  for (std::size_t i = 0; i < sinks_.size(); ++i) {
    Metrics::SinkMetrics& sm = m_.sinks[sink_state_[i].metrics];
    DeliveryStats ds = delivery_.stats(i);
    sm.published = ds.published;
    sm.confirmed = ds.confirmed;
    sm.duplicates = ds.duplicates;
    sm.retries = ds.retries;
    sm.in_flight = static_cast<std::int64_t>(delivery_.in_flight(i));
  }
  m_.held = static_cast<std::int64_t>(delivery_.held());
  const DeliveryStats& st = delivery_.stats();
  m_.events_published = st.published;
  m_.events_confirmed = st.confirmed;
  m_.nacks = st.nacked;
  m_.returns = st.returned;
  m_.exchange_missing = st.exchange_missing;
  m_.retries = st.retries;
  m_.suspects = st.suspects;
  m_.default_exchange_missing = delivery_.default_exchange_missing();
  m_.ack_lsn = tracker_.ack_lsn();
  m_.ack_commit_time_us = tracker_.ack_commit_time_us();
}

void Relay::stream() {
  stopping_ = false;
  while (true) {
    auto now = Clock::now();
    m_.loop_heartbeat_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    if (stop_.load() && !stopping_) {
      stopping_ = true;
      drain_deadline_ = now + std::chrono::milliseconds(cfg_.drain_timeout_ms);
      spdlog::info("stopping: no more reading from the slot; waiting up to {} ms for {} outstanding confirms",
                   cfg_.drain_timeout_ms, delivery_.held());
    }
    if (stopping_) {
      bool drained = delivery_.idle() && !in_txn_ && dead_letters_writing_.empty();
      if (drained || now >= drain_deadline_) {
        if (!drained)
          spdlog::warn("drain timeout: {} events unconfirmed; they were not acknowledged and will be sent again by "
                       "the next relay",
                       delivery_.held());
        maybe_send_status(now, true);
        repl_.flush();
        maybe_checkpoint(now, true);
        admin_.finish(admin_done_);
        return;
      }
    }

    reopen_sinks(now);
    if (recovery_.active && !recovery_.fetched_all && !stopping_) feed_recovery();
    else if (can_read()) process_wal();
    // Not only a POLLOUT clears it: the NATS sink's descriptor is a pipe, and its writer thread
    // drains by itself.
    if (send_full_ && !sinks_full()) send_full_ = false;
    if (!blocked_ && !send_full_) {
      SinkBatch batch(sink_ptrs_);
      pump_delivery();
    }
    act_on_delivery();
    maybe_checkpoint(Clock::now(), false);
    pump_admin();
    update_gauges();
    check_pg_silence(Clock::now());
    maybe_send_status(Clock::now(), false);

    // Wait for something to do.
    now = Clock::now();
    auto next = now + std::chrono::milliseconds(1000);
    auto earliest = [&](Clock::time_point t) {
      if (t < next) next = t;
    };
    earliest(last_status_ + std::chrono::milliseconds(cfg_.status_interval_ms));
    if (tracker_.ack_lsn() > ack_sent_) earliest(last_status_ + kMinStatusGap);
    earliest(next_checkpoint_);
    if (auto due = delivery_.next_due()) earliest(*due);
    if (stopping_) earliest(drain_deadline_);
    if (auto d = admin_.deadline()) earliest(*d);
    earliest(last_heard_ + std::chrono::milliseconds(pinged_ ? repl_silence_ms_ : repl_silence_ms_ / 2));
    if (recovery_.active && !recovery_.fetched_all && delivery_.accepting() && !admin_.busy()) earliest(now);
    // Client libraries send and check heartbeats (and sinks their confirm timeouts) only when
    // called: each sink is polled at least every tick_ms, so that a silent broker is noticed.
    bool sink_work = false, sink_pending = false;
    for (std::size_t i = 0; i < sinks_.size(); ++i) {
      Sink& s = *sinks_[i];
      if (sink_state_[i].down) {
        // An open under way wakes the loop through the wake pipe when it ends.
        if (!openers_[i].running()) earliest(sink_state_[i].retry_at);
        continue;
      }
      if (!s.connected()) continue;
      if (s.tick_ms() > 0) earliest(sink_state_[i].last_poll + std::chrono::milliseconds(s.tick_ms()));
      sink_work = sink_work || s.has_buffered();
      sink_pending = sink_pending || s.pending();
    }
    int timeout = static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
    if (sink_work || (pg_more_ && can_read()) || reply_now_) timeout = 0;
    // Messages waiting for room in a sink's socket buffer (publish never blocks), or a sink that
    // took more than it has written: look again soon.
    if (sink_pending || send_full_) timeout = std::min(timeout, Sink::kRecheckMs);

    bool pg_out = !repl_.flush();
    constexpr std::size_t kFixed = 3;  // replication, wake pipe, admin; then one per sink
    pollfd fds[kFixed + Metrics::kSinkNames.size()];
    fds[0] = {repl_.socket(), static_cast<short>((can_read() ? POLLIN : 0) | (pg_out ? POLLOUT : 0)), 0};
    fds[1] = {wake_pipe_[0], POLLIN, 0};
    fds[2] = {admin_.socket(),
              static_cast<short>((admin_.wants_read() ? POLLIN : 0) | (admin_.wants_write() ? POLLOUT : 0)), 0};
    if (!fds[2].events) fds[2].fd = -1;
    for (std::size_t i = 0; i < sinks_.size(); ++i) {
      Sink& s = *sinks_[i];
      bool live = !sink_state_[i].down && s.connected();
      // POLLOUT only for a sink that cannot take more: a writable socket would wake the loop at once.
      // Nothing is asked of a down sink: its opener's thread may be writing it.
      fds[kFixed + i] = {live ? s.socket() : -1,
                         static_cast<short>(live ? s.poll_events() | (send_full_ && !s.writable() ? POLLOUT : 0) : 0), 0};
    }
    int n = ::poll(fds, static_cast<nfds_t>(kFixed + sinks_.size()), timeout);
    if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("poll failed: ") + std::strerror(errno));
    if (fds[1].revents & POLLIN) drain_wake_pipe();
    // Read each sink when it has something, and at least every tick_ms.
    auto after = Clock::now();
    bool any_out = false;
    for (std::size_t i = 0; i < sinks_.size(); ++i) {
      Sink& s = *sinks_[i];
      if (sink_state_[i].down || !s.connected()) continue;
      short re = fds[kFixed + i].revents;
      if (re & POLLOUT) any_out = true;
      if ((re & (POLLIN | POLLERR | POLLHUP | POLLOUT)) || s.has_buffered() || s.pending() ||
          (s.tick_ms() > 0 && after - sink_state_[i].last_poll >= std::chrono::milliseconds(s.tick_ms()))) {
        sink_state_[i].last_poll = after;
        if (s.pending()) s.send_pending();
        s.poll(outcomes_);
        act_on_broker(i, after);
      }
    }
    if (send_full_ && any_out) send_full_ = false;
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      repl_.consume_input();
      pg_more_ = true;
    }
    if (fds[0].revents & POLLOUT) repl_.flush();
    if (fds[2].revents) pump_admin();
  }
}

void Relay::process_wal() {
  SinkBatch batch(sink_ptrs_);
  for (int i = 0; i < kMaxMessagesPerTurn; ++i) {
    // A full socket send buffer (a slow or blocked broker not reading) is backpressure too:
    // stop reading before the sinks hold more than their sockets take.
    if (i % 32 == 0) {
      if (sinks_full()) {
        send_full_ = true;
        pg_more_ = true;
        return;
      }
      if (i > 0) pump_delivery();
    }
    if (!can_read()) {
      pg_more_ = true;
      return;
    }
    ReplMessage msg = repl_.read();
    if (msg.kind != ReplMessage::Kind::None) {
      last_heard_ = Clock::now();
      pinged_ = false;
    }
    switch (msg.kind) {
      case ReplMessage::Kind::None:
        pg_more_ = false;
        return;
      case ReplMessage::Kind::XLogData:
        m_.server_wal_end = msg.wal_end;
        handle_xlogdata(msg.data_start, msg.data);
        break;
      case ReplMessage::Kind::Keepalive:
        m_.server_wal_end = msg.wal_end;
        tracker_.keepalive(msg.wal_end);
        if (msg.reply_requested) reply_now_ = true;
        break;
    }
  }
  pg_more_ = true;
}

AckTracker::Unit Relay::unit_for(Lsn lsn) {
  if (in_txn_) return tracker_.add_event(txn_, lsn);
  // Outside a transaction (a non-transactional message): a unit of its own, acknowledged at
  // its own LSN once settled.
  AckTracker::TxnId t = tracker_.begin();
  AckTracker::Unit u = tracker_.add_event(t, lsn);
  tracker_.commit(t, lsn, 0);
  return u;
}

bool Relay::skip_settled(Lsn lsn) {
  if (!in_txn_ || !skip_) return false;
  // Both bounds: below the LSN, and never more than were counted (a stream that differs from
  // the one counted on must not make the relay skip what it never settled).
  if (lsn < skip_->settled_before && skipped_ < skip_->settled) {
    tracker_.add_settled(txn_, lsn);
    ++skipped_;
    m_.resent_skipped++;
    return true;
  }
  end_skip();
  return false;
}

void Relay::end_skip() {
  if (!skip_) return;
  if (skipped_ == skip_->settled)
    spdlog::info("transaction xid {} sent again: its first {} events were settled before and are not published again",
                 skip_->txn.xid, skipped_);
  else
    spdlog::warn("transaction xid {} sent again: {} of its events below {} skipped as settled before, where {} were "
                 "counted; the rest is published again",
                 skip_->txn.xid, skipped_, format_lsn(skip_->settled_before), skip_->settled);
  skip_.reset();
}

bool Relay::reject_line(Lsn lsn, const std::string& reason) {
  ++rejected_;
  m_.rejected_lines++;
  if (!(rejected_ <= kRejectLogFirst || rejected_ % kRejectLogEvery == 0)) return false;
  spdlog::error("skipped a line at {} that is not a genuine outbox event ({} such lines so far): {}", format_lsn(lsn),
                rejected_, reason);
  return true;
}

void Relay::use_server_encoding() {
  std::string why = line_encoding_.use(repl_.show("server_encoding"));
  if (!why.empty()) throw PgError(PgErrorKind::Fatal, why);
  if (line_encoding_.converts())
    spdlog::info("the database's encoding is {}: lines are converted to UTF-8", line_encoding_.server_encoding());
}

void Relay::handle_xlogdata(Lsn start, std::string_view data) {
  std::string why;
  if (!line_encoding_.to_utf8(data, data, why)) {
    if (in_txn_) tracker_.hold_progress(txn_, start);
    if (reject_line(start, why) && admin_.connected())
      admin_.queue_rejected(start, in_txn_ ? txn_xid_ : 0, std::nullopt, data.size(), why);
    return;
  }
  ParsedLine line;
  parser_.parse(data, start, line);
  // Before calling a message forged, the keys are read again. A key id the relay does not hold
  // is read every time: a key made without a notice the relay saw (CREATE EXTENSION after a
  // DROP, a notice that went to another shard's relay) must never meet a rate limit, and a
  // forger pays with a WAL record for each query it causes. A key the relay holds never
  // changes (an UPDATE of a key is refused), so a MAC that fails with it is read again at most
  // once a second.
  if (line.kind == LineKind::Rejected && line.unverified && reload_message_keys(!line.unknown_key))
    parser_.parse(data, start, line);
  switch (line.kind) {
    case LineKind::Begin:
      if (in_txn_) throw ParseError("B line inside an open transaction (at " + format_lsn(start) + ")");
      txn_ = tracker_.begin(TxnIdentity{line.xid, start});
      in_txn_ = true;
      txn_time_ = line.timestamp;
      txn_xid_ = line.xid;
      skip_.reset();
      skipped_ = 0;
      // The newest fact about this transaction: the most of it settled.
      for (const TxnProgress& p : resume_)
        if (p.txn == TxnIdentity{line.xid, start} && (!skip_ || p.settled_before > skip_->settled_before)) skip_ = p;
      return;
    case LineKind::Commit:
      if (!in_txn_) throw ParseError("C line without a B line (at " + format_lsn(start) + ")");
      end_skip();
      tracker_.commit(txn_, start, parse_timestamp_us(line.timestamp).value_or(0));
      in_txn_ = false;
      m_.transactions++;
      return;
    case LineKind::Event: {
      Event ev = std::move(line.event);
      if (!ev.transactional && !in_txn_) {
        // A non-transactional outbox message: its own unit, acknowledged at its own LSN.
        delivery_.add(std::move(ev), unit_for(start));
        return;
      }
      if (!in_txn_) throw ParseError("event outside a transaction (at " + format_lsn(start) + ")");
      if (skip_settled(start)) return;
      if (ev.xid == 0) ev.xid = txn_xid_;
      ev.commit_time = txn_time_;
      delivery_.add(std::move(ev), unit_for(start));
      return;
    }
    case LineKind::Control: {
      const ControlMessage& c = line.control;
      if (c.kind == OUTBOX_CONTROL_KEYS) {
        spdlog::info("the message key was rotated (at {}); reading the keys again", format_lsn(start));
        reload_message_keys(false);
        return;
      }
      if (c.slot_name && *c.slot_name != cfg_.slot) return;
      // Applied before the restart: its effect is in outbox.dead_letters (replayed_at), which the
      // parked set is loaded from.
      if (skip_settled(start)) return;
      spdlog::info("release of parked aggregate ({}, {}) at {}", c.aggregate_type.value_or("null"),
                   c.aggregate_id.value_or("null"), format_lsn(start));
      delivery_.add_release(c.aggregate_type, c.aggregate_id, unit_for(start));
      return;
    }
    case LineKind::Rejected:
      // Another session (with the message key it lacks now) may take it for an event: the
      // transaction's progress must not pass it.
      if (in_txn_) tracker_.hold_progress(txn_, start);
      // Recorded as often as logged: a role that forges in a loop must not grow the table
      // without bound either (the metric counts every one).
      if (reject_line(start, line.reject_reason) && admin_.connected())
        admin_.queue_rejected(start, line.xid ? line.xid : (in_txn_ ? txn_xid_ : 0), line.key_id, data.size(),
                              line.reject_reason);
      return;
    case LineKind::Ignored:
      return;
  }
}

void Relay::act_on_broker(std::size_t i, Clock::time_point now) {
  Sink& sink = *sinks_[i];
  Metrics::SinkMetrics& sm = m_.sinks[sink_state_[i].metrics];
  for (auto& o : outcomes_) {
    switch (o.kind) {
      case BrokerOutcome::Kind::Confirmed:
        delivery_.confirmed(o.ticket, now, o.duplicate);
        break;
      case BrokerOutcome::Kind::Refused:
        sm.refused++;
        delivery_.refused(o.ticket, o.why, o.reply, now);
        break;
      case BrokerOutcome::Kind::Blocked:
        sm.blocked = true;
        spdlog::warn("{} blocked publishing ({}); its events wait{}, PostgreSQL keepalives are still answered",
                     sink.display_name(), o.reply, sinks_.size() > 1 ? " (other sinks go on)" : ", the slot is paused");
        break;
      case BrokerOutcome::Kind::Unblocked:
        sm.blocked = false;
        spdlog::info("{} unblocked publishing; resuming", sink.display_name());
        break;
    }
  }
  outcomes_.clear();
  blocked_ = all_sinks_blocked();
  m_.broker_blocked = blocked_;
  act_on_delivery();
  if (sink.broken()) sink_failed(i, sink.broken_reason(), sink.broken_by_message(), now);
}

void Relay::sink_failed(std::size_t i, const std::string& reason, bool by_message, Clock::time_point now) {
  Sink& sink = *sinks_[i];
  // Whatever was in flight has an unknown fate: the Delivery unit remembers it, so that after
  // the reconnect a message that closes the channel is found and charged, not its neighbours.
  delivery_.lost(i, by_message, reason);
  if (other_sink_connected(i)) {
    // The others go on: this sink's messages in flight are sent again once it is back.
    delivery_.requeue(i);
    SinkError e(reason);
    e.sink = sink.display_name();
    sink_down(i, e, now);
    return;
  }
  // Acknowledge what is settled (dead letters included) before the slot is read again, so that
  // the reconnect does not hand the same events over a second time.
  maybe_send_status(now, true);
  repl_.flush();
  SinkError e(reason);
  e.sink = sink.display_name();
  throw e;
}

void Relay::pump_delivery() {
  delivery_.pump(Clock::now(), sink_ptrs_);
  for (auto& [i, why] : delivery_.take_publish_failures())
    if (!sink_state_[i].down) sink_failed(i, why, false, Clock::now());
}

bool Relay::sinks_full() const {
  for (std::size_t i = 0; i < sinks_.size(); ++i)
    if (!sink_state_[i].down && sinks_[i]->connected() && !sinks_[i]->writable()) return true;
  return false;
}

void Relay::open_sinks() {
  std::optional<SinkError> first;
  std::size_t up = 0;
  auto now = Clock::now();
  if (!started_) {
    for (const std::string& unused : cfg_.unused_sinks)
      spdlog::warn("setting {} is given but no [[routes]] rule and not --default-sink sends events there: not connected",
                   unused);
    for (const std::string& what : cfg_.ignored) spdlog::warn("ignored: {}", what);
  }
  for (std::size_t i = 0; i < sinks_.size(); ++i) {
    Sink& s = *sinks_[i];
    Metrics::SinkMetrics& sm = m_.sinks[sink_state_[i].metrics];
    try {
      s.open(started_);
      sink_state_[i] = SinkState{false, {}, now, 0, sink_state_[i].metrics};
      set_down(i, false);
      sm.connected = true;
      if (std::string(s.name()) == "rabbitmq") m_.auth_failing_amqp = false;
      ++up;
    } catch (SinkError& e) {
      e.sink = s.display_name();
      if (e.kind == SinkErrorKind::Auth) sm.auth_failures++;
      // Once running, the settings were good: what looks like one now (a Redis database index
      // gone, a server without headers behind a new proxy) changed on the server: retried.
      if (e.kind == SinkErrorKind::Config && started_) e.kind = SinkErrorKind::Retryable;
      // A settings mistake stops the relay; with one sink there is nothing to go on with.
      if (e.kind == SinkErrorKind::Config || (e.kind == SinkErrorKind::Tls && !started_) || sinks_.size() == 1) throw;
      if (!first) first = e;
      sink_down(i, e, now);
    }
  }
  if (up == 0 && first) throw *first;
  m_.amqp_connected = true;
}

void Relay::sink_down(std::size_t i, const SinkError& e, Clock::time_point now) {
  Sink& s = *sinks_[i];
  SinkState& st = sink_state_[i];
  s.close();
  BackoffPolicy p{std::chrono::milliseconds(cfg_.reconnect_min_ms), std::chrono::milliseconds(cfg_.reconnect_max_ms), 0.5};
  ++st.attempt;
  auto d = backoff_delay(p, st.attempt, rng_);
  set_down(i, true);
  st.retry_at = now + d;
  Metrics::SinkMetrics& sm = m_.sinks[st.metrics];
  sm.connected = false;
  sm.blocked = false;
  sm.reconnects++;
  auto log = e.kind == SinkErrorKind::Retryable ? spdlog::level::warn : spdlog::level::err;
  spdlog::log(log, "{}: {}; its events wait (the slot is not acknowledged past the first of them), the other sinks "
                   "go on until {} events wait in all (twice --max-in-flight), then reading pauses; reconnecting in {} ms",
              s.display_name(), e.what(), 2 * cfg_.max_in_flight, d.count());
}

void Relay::reopen_sinks(Clock::time_point now) {
  for (std::size_t i = 0; i < sinks_.size(); ++i) {
    SinkState& st = sink_state_[i];
    SinkOpener& opener = openers_[i];
    Sink& s = *sinks_[i];
    if (!st.down) continue;
    if (!opener.running()) {
      if (now >= st.retry_at) opener.start(s, true, wake_pipe_[1]);
      continue;
    }
    if (!opener.finished()) continue;
    try {
      if (std::exception_ptr e = opener.take()) std::rethrow_exception(e);
      set_down(i, false);
      st.attempt = 0;
      st.last_poll = Clock::now();
      m_.sinks[st.metrics].connected = true;
      spdlog::info("{}: connected to {} again; its waiting events go out now", s.display_name(), s.node());
    } catch (SinkError& e) {
      e.sink = s.display_name();
      if (e.kind == SinkErrorKind::Auth) m_.sinks[st.metrics].auth_failures++;
      sink_down(i, e, Clock::now());
    }
  }
}

void Relay::set_down(std::size_t i, bool down) {
  sink_state_[i].down = down;
  sink_ptrs_[i] = down ? nullptr : sinks_[i].get();
}

bool Relay::other_sink_connected(std::size_t i) const {
  for (std::size_t j = 0; j < sinks_.size(); ++j)
    if (j != i && !sink_state_[j].down && sinks_[j]->connected()) return true;
  return false;
}

bool Relay::all_sinks_blocked() const {
  bool any = false;
  for (std::size_t j = 0; j < sinks_.size(); ++j) {
    if (sink_state_[j].down || !sinks_[j]->connected()) continue;
    if (!sinks_[j]->blocked()) return false;
    any = true;
  }
  return any;
}

void Relay::act_on_delivery() {
  for (const Settled& s : delivery_.take_settled()) {
    m_.observe_confirm_latency_us(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(s.latency).count()));
    AckTracker::TxnId txn = tracker_.settle(s.txn);  // Delivery hands back the tracker's unit
    ++settled_;
    if (recovery_.active && txn == recovery_.txn) --recovery_.pending;
  }
  for (DeadLetter& d : delivery_.take_dead_letters()) {
    spdlog::error("event {} ({}) at {} becomes a dead letter after {} attempts: {}", d.ev.id, d.ev.event_type,
                  format_lsn(d.ev.lsn), d.attempts, d.reason);
    // Settled once the row is written (pump_admin): if writing fails the session restarts and
    // the slot sends the event again (the Delivery unit still knows its attempts).
    std::uint64_t tag = ++next_dead_letter_tag_;
    admin_.queue_dead_letter(tag, d.ev, d.reason, d.attempts, d.first_failed_us, d.last_failed_us, d.broker_reply);
    dead_letters_writing_.emplace(tag, std::move(d));
  }
  if (recovery_.active && recovery_.fetched_all && recovery_.pending == 0) {
    recovery_.active = false;
    admin_.queue_finish_recovery();
    spdlog::info("slot recovery: the broker confirmed all {} republished events; streaming goes on from the slot",
                 recovery_.total);
  }
  // Not the local acknowledgement: the server may not have taken it when the session ends, and
  // then sends those events again. What lies before this session's start it never sends again.
  delivery_.forget_before(session_start_);
  if (delivery_.default_exchange_missing() && !warned_default_missing_) {
    warned_default_missing_ = true;
    spdlog::error("the default exchange \"{}\" does not exist: events without an exchange wait (not counted as "
                  "attempts) -- fix: declare the exchange, or restart with another --exchange",
                  cfg_.exchange);
  } else if (!delivery_.default_exchange_missing() && warned_default_missing_) {
    warned_default_missing_ = false;
    spdlog::info("the default exchange \"{}\" exists again; resuming", cfg_.exchange);
  }
  // A sink's destination gone at runtime (a JetStream stream deleted): said once per episode.
  if (destination_warned_.size() < sinks_.size()) destination_warned_.resize(sinks_.size());
  std::string paused;
  for (std::size_t i = 0; i < sinks_.size(); ++i) {
    const std::string& why = delivery_.destination_missing(i);
    m_.sinks[sink_state_[i].metrics].destination_missing = !why.empty();
    if (!why.empty()) paused += (paused.empty() ? "" : "; ") + std::string(sinks_[i]->display_name()) + ": " + why;
    if (!why.empty() && destination_warned_[i].empty())
      spdlog::error("{}: {}; its events wait (not counted as attempts, never dead letters for it)",
                    sinks_[i]->display_name(), why);
    else if (why.empty() && !destination_warned_[i].empty())
      spdlog::info("{}: an event that waited for its destination was confirmed; resuming", sinks_[i]->display_name());
    destination_warned_[i] = why;
  }
  m_.set_paused(paused);
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

void Relay::maybe_send_status(Clock::time_point now, bool force) {
  Lsn ack = tracker_.ack_lsn();
  bool progress = ack > ack_sent_ && now - last_status_ >= kMinStatusGap;
  bool due = now - last_status_ >= std::chrono::milliseconds(cfg_.status_interval_ms);
  if (!(force || progress || due || reply_now_)) return;
  repl_.send_status(ack, ack, ack, false);
  m_.status_updates++;
  if (ack != ack_sent_) spdlog::debug("acknowledged {}", format_lsn(ack));
  ack_sent_ = ack;
  last_status_ = now;
  reply_now_ = false;
  m_.ack_lsn = ack;
}

void Relay::maybe_checkpoint(Clock::time_point now, bool force) {
  // Often while events are acknowledged (a restart of PostgreSQL 15 re-sends what was
  // acknowledged after the newest checkpoint), seldom when idle: each one is a transaction, and
  // an idle relay would otherwise acknowledge its own checkpoints forever.
  constexpr auto kIdleEvery = std::chrono::seconds(10);
  Lsn ack = tracker_.ack_lsn();
  auto since = now - last_checkpoint_;
  // Within a large transaction the acknowledged LSN stays put while its progress moves: that is
  // news too (a restart then skips what was settled of it).
  std::optional<TxnProgress> progress = admin_.records_progress() ? tracker_.progress() : std::nullopt;
  bool news = settled_ != settled_at_checkpoint_ && (ack != checkpoint_sent_ || progress != progress_sent_);
  // The fence of the last checkpoint is passed: one more makes it acked_snapshot, so that what
  // it covers is not republished after a failover (without waiting for the idle write).
  bool promote = fence_ && ack >= fence_ && fenced_settled_ > covered_settled_;
  // When the loop must wake up for the next one (not earlier: an idle loop would spin).
  next_checkpoint_ = last_checkpoint_ + ((news || promote) ? std::chrono::duration_cast<Clock::duration>(
                                                                 std::chrono::milliseconds(cfg_.checkpoint_interval_ms))
                                                           : std::chrono::duration_cast<Clock::duration>(kIdleEvery));
  if (!force && !((news || promote) && since >= std::chrono::milliseconds(cfg_.checkpoint_interval_ms)) &&
      since < kIdleEvery)
    return;
  if (!admin_.connected()) return;  // the session restarts and reconnects it
  last_checkpoint_ = now;
  next_checkpoint_ = now + std::chrono::milliseconds(cfg_.checkpoint_interval_ms);
  if (promote) covered_settled_ = fenced_settled_;
  settled_at_checkpoint_ = settled_;
  checkpoint_sent_ = ack;
  progress_sent_ = progress;
  admin_.queue_checkpoint(ack, tracker_.ack_commit_time_us(), progress, session_timeline_, cfg_.shard);
}

void Relay::pump_admin() {
  admin_.pump(admin_done_);
  for (const AdminDone& done : admin_done_) {
    if (done.kind == AdminDone::Kind::Checkpoint && admin_.last_fence() != fence_) {
      fence_ = admin_.last_fence();
      fenced_settled_ = settled_at_checkpoint_;
    }
    if (done.kind != AdminDone::Kind::DeadLetter) continue;
    auto it = dead_letters_writing_.find(done.tag);
    if (it == dead_letters_writing_.end()) continue;
    const DeadLetter& d = it->second;
    delivery_.dead_letter_written(d);
    m_.dead_letters++;
    AckTracker::TxnId txn = tracker_.settle(d.txn);
    ++settled_;
    if (recovery_.active && txn == recovery_.txn) --recovery_.pending;
    dead_letters_writing_.erase(it);
  }
  if (!admin_done_.empty()) {
    admin_done_.clear();
    act_on_delivery();
  }
}

void Relay::check_pg_silence(Clock::time_point now) {
  // Not listening (backpressure, a recovery being read) proves nothing about the server.
  if (!can_read()) {
    last_heard_ = now;
    pinged_ = false;
    return;
  }
  auto quiet = now - last_heard_;
  if (quiet >= std::chrono::milliseconds(repl_silence_ms_)) {
    m_.pg_silences++;
    throw PgError(PgErrorKind::Retryable,
                  "the replication connection sent nothing for " +
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(quiet).count()) +
                      " ms, not even an answer to a ping (a silent network?); reconnecting (limit: --pg-timeout-ms " +
                      std::to_string(cfg_.pg_timeout_ms) + ", at least 3/4 of wal_sender_timeout)");
  }
  if (!pinged_ && quiet >= std::chrono::milliseconds(repl_silence_ms_ / 2)) {
    // A status update with "reply requested": the walsender answers at once with a keepalive.
    pinged_ = true;
    repl_.send_status(tracker_.ack_lsn(), tracker_.ack_lsn(), tracker_.ack_lsn(), true);
    ack_sent_ = tracker_.ack_lsn();
    last_status_ = now;
    m_.status_updates++;
  }
}

void Relay::feed_recovery() {
  constexpr int kPage = 500;
  if (!delivery_.accepting() || admin_.busy()) return;
  std::vector<RecoveredEvent> page = admin_.slot_recovery_events(recovery_.after_id, kPage);
  for (RecoveredEvent& r : page) {
    ParsedLine line;
    parser_.parse(r.line, recovery_.at, line);
    recovery_.after_id = r.id;
    if (line.kind != LineKind::Event) {
      // A row the stream would not have published either (not an outbox row?): say so.
      reject_line(recovery_.at, "republished row " + r.id + ": " +
                                    (line.kind == LineKind::Rejected ? line.reject_reason : std::string("not an event")));
      continue;
    }
    Event ev = std::move(line.event);
    // outbox.events holds every shard's events; the decoder would give this relay only its own.
    if (shard_ && !shard_->owns(ev.aggregate_id)) continue;
    if (ev.xid == 0) ev.xid = r.xid;
    ev.commit_time = r.created_at;  // the commit time is not kept in outbox.events
    delivery_.add(std::move(ev), tracker_.add_event(recovery_.txn, recovery_.at));
    ++recovery_.pending;
    ++recovery_.total;
    m_.republished++;
  }
  if (static_cast<int>(page.size()) < kPage) {
    recovery_.fetched_all = true;
    tracker_.commit(recovery_.txn, recovery_.at, 0);
    spdlog::info("slot recovery: {} events to republish", recovery_.total);
  }
}

}  // namespace outbox
