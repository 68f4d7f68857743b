// The loop itself: construction, run() with its reconnects and standby waiting, stream() and its
// steps, status updates, checkpoints and the database writes. The session's start is in
// relay_start.cpp, the slot's side in relay_wal.cpp, the brokers' side in relay_sinks.cpp.
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
#include "sink_batch.h"

namespace outbox {

namespace {

constexpr auto kMinStatusGap = std::chrono::milliseconds(5);   // progress updates at most this often

DeliveryOptions delivery_options(const Config& c) {
  DeliveryOptions o;
  o.ordering = c.ordering == "commit" ? Ordering::Commit : c.ordering == "none" ? Ordering::None : Ordering::Aggregate;
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
    st.metrics = m_.sink_index(s->name());
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
    if (stop_done(now)) return;
    turn(now);
    poll_and_read(poll_timeout_ms(Clock::now()));
  }
}

bool Relay::stop_done(Clock::time_point now) {
  if (stop_.load() && !stopping_) {
    stopping_ = true;
    drain_deadline_ = now + std::chrono::milliseconds(cfg_.drain_timeout_ms);
    spdlog::info("stopping: no more reading from the slot; waiting up to {} ms for {} outstanding confirms",
                 cfg_.drain_timeout_ms, delivery_.held());
  }
  if (!stopping_) return false;
  bool drained = delivery_.idle() && !in_txn_ && dead_letters_writing_.empty();
  if (!drained && now < drain_deadline_) return false;
  if (!drained)
    spdlog::warn("drain timeout: {} events unconfirmed; they were not acknowledged and will be sent again by "
                 "the next relay",
                 delivery_.held());
  maybe_send_status(now, true);
  repl_.flush();
  maybe_checkpoint(now, true);
  admin_.finish(admin_done_);
  return true;
}

void Relay::turn(Clock::time_point now) {
  turn_at_ = now;
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
}

int Relay::poll_timeout_ms(Clock::time_point now) {
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
  return timeout;
}

void Relay::poll_and_read(int timeout_ms) {
  bool pg_out = !repl_.flush();
  constexpr std::size_t kFixed = 3;  // replication, wake pipe, admin; then one per sink
  fds_.resize(kFixed + sinks_.size());
  pollfd* fds = fds_.data();
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
  int n = ::poll(fds, static_cast<nfds_t>(kFixed + sinks_.size()), timeout_ms);
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

}  // namespace outbox
