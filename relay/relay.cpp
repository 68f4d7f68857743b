#include "relay.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "backoff.h"
#include "timestamp.h"

namespace outbox {

namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr auto kMinStatusGap = std::chrono::milliseconds(5);   // progress updates at most this often
constexpr int kMaxMessagesPerTurn = 2000;                      // then look at the broker again

struct SessionLost : std::runtime_error {
  bool pg;
  SessionLost(bool is_pg, const std::string& m) : std::runtime_error(m), pg(is_pg) {}
};

}  // namespace

Relay::Relay(Config cfg, Metrics& metrics)
    : cfg_(std::move(cfg)), m_(metrics), admin_(cfg_.slot, cfg_.plugin), repl_(cfg_.slot, cfg_.plugin, cfg_.shard) {
  if (pipe2(wake_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  callbacks_.on_confirm = [this](std::uint64_t tag, bool multiple, bool nack) { on_confirm(tag, multiple, nack); };
  callbacks_.on_return = [this](const std::string& id, const std::string& lsn, const std::string& reply) {
    on_return(id, lsn, reply);
  };
  callbacks_.on_blocked = [this](bool blocked, const std::string& reason) {
    blocked_ = blocked;
    m_.broker_blocked = blocked;
    if (blocked)
      spdlog::warn("RabbitMQ blocked publishing ({}); pausing the slot, still answering PostgreSQL keepalives", reason);
    else
      spdlog::info("RabbitMQ unblocked publishing; resuming");
  };
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

bool Relay::wait_interruptible(std::chrono::milliseconds d) {
  auto until = Clock::now() + d;
  while (!stop_.load()) {
    // A relay waiting (standby, backoff) is healthy: keep /healthz's heartbeat fresh.
    m_.loop_heartbeat_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return true;
    pollfd p{wake_pipe_[0], POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left, 1000)));
  }
  return false;
}

void Relay::close_session() {
  m_.streaming = false;
  m_.pg_connected = false;
  m_.amqp_connected = false;
  repl_.close();
  amqp_.close();
  window_.reset();
  retry_.clear();
  in_flight_bytes_ = 0;
  send_full_ = false;
  in_txn_ = false;
  pg_more_ = false;
  blocked_ = false;
  m_.broker_blocked = false;
  tracker_.reset(tracker_.ack_lsn());
  m_.in_flight = 0;
}

int Relay::run() {
  BackoffPolicy reconnect{std::chrono::milliseconds(cfg_.reconnect_min_ms), std::chrono::milliseconds(cfg_.reconnect_max_ms),
                          0.5};
  int attempt = 0;
  while (!stop_.load()) {
    m_.loop_heartbeat_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    try {
      connect_session();
      attempt = 0;
      stream();
      // stream() returns only when stopping.
      close_session();
      admin_.close();
      spdlog::info("stopped; acknowledged LSN {}", format_lsn(tracker_.ack_lsn()));
      return 0;
    } catch (const PgError& e) {
      close_session();
      if (e.kind == PgErrorKind::Fatal) {
        spdlog::critical("{}", e.what());
        admin_.close();
        return 2;
      }
      ++attempt;
      auto d = backoff_delay(reconnect, attempt, rng_);
      if (e.kind == PgErrorKind::SlotBusy) {
        m_.standby_waits++;
        d = std::min(d, std::chrono::milliseconds(std::max(cfg_.reconnect_min_ms, 1000)));
        spdlog::info("{}; waiting as a standby, retrying in {} ms", e.what(), d.count());
      } else {
        m_.reconnects_pg++;
        spdlog::warn("PostgreSQL: {}; reconnecting in {} ms", e.what(), d.count());
        admin_.close();
      }
      if (!wait_interruptible(d)) break;
    } catch (const AmqpError& e) {
      close_session();
      m_.reconnects_amqp++;
      ++attempt;
      auto d = backoff_delay(reconnect, attempt, rng_);
      spdlog::warn("RabbitMQ: {}; reconnecting in {} ms", e.what(), d.count());
      if (!wait_interruptible(d)) break;
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

int Relay::check() {
  try {
    amqp_.connect(cfg_.amqp, cfg_.heartbeat_s, "outbox-relay check slot=" + cfg_.slot,
                  AmqpPublisher::Tls{cfg_.amqp_cacert, cfg_.amqp_cert, cfg_.amqp_key});
    amqp_.declare_topology(cfg_.topology);
    if (!amqp_.exchange_exists(cfg_.exchange))
      throw AmqpError("the default exchange \"" + cfg_.exchange + "\" does not exist -- fix: declare it, add it to "
                      "[topology], or choose another with --exchange");
    spdlog::info("check: RabbitMQ ok (confirm mode, exchange \"{}\" exists)", cfg_.exchange);
    admin_.connect(cfg_.pg);
    admin_.check_server();
    std::string db = admin_.current_database();
    repl_.connect(cfg_.pg);
    repl_.identify_system();
    auto slot = admin_.slot_info();
    if (!slot) {
      if (!cfg_.create_slot)
        throw PgError(PgErrorKind::Fatal, "replication slot \"" + cfg_.slot + "\" does not exist -- fix: start with "
                                          "--create-slot, or create it: SELECT pg_create_logical_replication_slot('" +
                                              cfg_.slot + "', '" + cfg_.plugin + "')");
      spdlog::info("check: slot \"{}\" does not exist yet; --create-slot will create it with plugin {}", cfg_.slot,
                   cfg_.plugin);
    } else {
      try {
        admin_.check_slot(*slot, db);
        spdlog::info("check: slot \"{}\" ok (plugin {}, confirmed {})", cfg_.slot, slot->plugin,
                     format_lsn(slot->confirmed_flush));
      } catch (const PgError& e) {
        if (e.kind != PgErrorKind::SlotBusy) throw;
        spdlog::info("check: {}; this relay would wait as a standby", e.what());
      }
    }
    std::string missing = admin_.missing_privileges();
    if (!missing.empty())
      throw PgError(PgErrorKind::Fatal, "the relay role lacks: " + missing +
                                            " -- fix: SELECT outbox.grant_relay('<relay role>') (dead letters and "
                                            "checkpoints need it)");
    spdlog::info("check: PostgreSQL ok (database {}, plugin {})", db, cfg_.plugin);
  } catch (const PgError& e) {
    spdlog::critical("check failed: {}", e.what());
    close_session();
    admin_.close();
    return 2;
  } catch (const AmqpError& e) {
    spdlog::critical("check failed: RabbitMQ: {}", e.what());
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
  // Broker first: no point in holding the slot (and keeping a standby out) without a broker.
  amqp_.connect(cfg_.amqp, cfg_.heartbeat_s, "outbox-relay slot=" + cfg_.slot,
                AmqpPublisher::Tls{cfg_.amqp_cacert, cfg_.amqp_cert, cfg_.amqp_key});
  amqp_.declare_topology(cfg_.topology);
  m_.amqp_connected = true;

  if (!admin_.connected()) admin_.connect(cfg_.pg);
  admin_.check_server();
  std::string db = admin_.current_database();
  auto slot = admin_.slot_info();
  repl_.connect(cfg_.pg);
  m_.pg_connected = true;
  repl_.identify_system();
  if (!slot) {
    if (!cfg_.create_slot)
      throw PgError(PgErrorKind::Fatal, "replication slot \"" + cfg_.slot + "\" does not exist -- fix: start with "
                                        "--create-slot, or create it: SELECT pg_create_logical_replication_slot('" +
                                            cfg_.slot + "', '" + cfg_.plugin + "')");
    if (repl_.create_slot()) spdlog::info("created replication slot \"{}\" with plugin {}", cfg_.slot, cfg_.plugin);
    slot = admin_.slot_info();
    if (!slot) throw PgError(PgErrorKind::Retryable, "slot \"" + cfg_.slot + "\" vanished right after creation");
  }
  admin_.check_slot(*slot, db);
  if (!warned_privileges_) {
    warned_privileges_ = true;
    std::string missing = admin_.missing_privileges();
    if (!missing.empty())
      spdlog::warn("the relay role lacks {}: checkpoints are skipped and a dead letter would stop the relay -- fix: "
                   "SELECT outbox.grant_relay('<relay role>')",
                   missing);
  }
  tracker_.reset(slot->confirmed_flush);
  ack_sent_ = slot->confirmed_flush;
  repl_.start(0);  // 0/0: the server starts at the slot's confirmed_flush_lsn
  m_.streaming = true;
  m_.ack_lsn = tracker_.ack_lsn();
  last_status_ = Clock::now();
  last_checkpoint_ = Clock::now() - std::chrono::milliseconds(cfg_.checkpoint_interval_ms);
}

bool Relay::window_full() const {
  return window_.size() >= static_cast<std::size_t>(cfg_.max_in_flight) ||
         (in_flight_bytes_ >= static_cast<std::uint64_t>(cfg_.max_in_flight_bytes) && !window_.empty());
}

bool Relay::can_read() const {
  // While stopping, only the transaction already begun is read to its end (so that it can be
  // acknowledged and is not sent again by the next relay); nothing new is started.
  return (!stopping_ || in_txn_) && !blocked_ && !send_full_ && retry_.empty() && !window_full();
}

void Relay::update_gauges() {
  m_.in_flight = static_cast<std::int64_t>(window_.size());
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
                   cfg_.drain_timeout_ms, window_.size() + retry_.size());
    }
    if (stopping_) {
      bool drained = window_.empty() && retry_.empty() && !in_txn_;
      if (drained || now >= drain_deadline_) {
        if (!drained)
          spdlog::warn("drain timeout: {} events unconfirmed; they were not acknowledged and will be sent again by "
                       "the next relay",
                       window_.size() + retry_.size());
        maybe_send_status(now, true);
        repl_.flush();
        maybe_checkpoint(now, true);
        return;
      }
    }

    if (can_read()) process_wal();
    process_retries(now);
    update_gauges();
    maybe_send_status(Clock::now(), false);
    maybe_checkpoint(Clock::now(), false);

    // Wait for something to do.
    now = Clock::now();
    auto next = now + std::chrono::milliseconds(1000);
    auto earliest = [&](Clock::time_point t) {
      if (t < next) next = t;
    };
    earliest(last_status_ + std::chrono::milliseconds(cfg_.status_interval_ms));
    if (tracker_.ack_lsn() > ack_sent_) earliest(last_status_ + kMinStatusGap);
    earliest(last_checkpoint_ + std::chrono::milliseconds(cfg_.checkpoint_interval_ms));
    if (!retry_.empty()) earliest(retry_.front()->due);
    if (stopping_) earliest(drain_deadline_);
    int timeout = static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
    if (amqp_.has_buffered() || (pg_more_ && can_read()) || reply_now_) timeout = 0;

    bool pg_out = !repl_.flush();
    pollfd fds[3];
    fds[0] = {repl_.socket(), static_cast<short>((can_read() ? POLLIN : 0) | (pg_out ? POLLOUT : 0)), 0};
    fds[1] = {amqp_.socket(), static_cast<short>(POLLIN | (send_full_ ? POLLOUT : 0)), 0};
    fds[2] = {wake_pipe_[0], POLLIN, 0};
    int n = ::poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("poll failed: ") + std::strerror(errno));
    if (fds[2].revents & POLLIN) {
      char buf[64];
      while (::read(wake_pipe_[0], buf, sizeof buf) > 0) {
      }
    }
    // Read the broker when it has something, and at least once a second so rabbitmq-c sends its
    // heartbeats and notices a silent broker.
    auto after = Clock::now();
    if ((fds[1].revents & (POLLIN | POLLERR | POLLHUP)) || amqp_.has_buffered() ||
        after - last_amqp_poll_ >= std::chrono::seconds(1)) {
      last_amqp_poll_ = after;
      amqp_.poll(callbacks_);
    }
    if (send_full_ && (fds[1].revents & POLLOUT)) send_full_ = false;
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      repl_.consume_input();
      pg_more_ = true;
    }
    if (fds[0].revents & POLLOUT) repl_.flush();
  }
}

void Relay::process_wal() {
  amqp_.cork(true);
  struct Uncork {
    AmqpPublisher& a;
    ~Uncork() { a.cork(false); }
  } uncork{amqp_};
  for (int i = 0; i < kMaxMessagesPerTurn; ++i) {
    // A full socket send buffer (a slow or blocked broker not reading) is backpressure too:
    // rabbitmq-c writes blocking, so stop before a publish would stall the loop.
    if (i % 32 == 0 && !amqp_.writable()) {
      send_full_ = true;
      pg_more_ = true;
      return;
    }
    if (!can_read()) {
      pg_more_ = true;
      return;
    }
    ReplMessage msg = repl_.read();
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

void Relay::handle_xlogdata(Lsn start, std::string_view data) {
  ParsedLine line;
  parser_.parse(data, start, line);
  switch (line.kind) {
    case LineKind::Begin:
      if (in_txn_) throw ParseError("B line inside an open transaction (at " + format_lsn(start) + ")");
      txn_ = tracker_.begin();
      in_txn_ = true;
      txn_time_ = line.timestamp;
      txn_xid_ = line.xid;
      return;
    case LineKind::Commit:
      if (!in_txn_) throw ParseError("C line without a B line (at " + format_lsn(start) + ")");
      tracker_.commit(txn_, start, parse_timestamp_us(line.timestamp).value_or(0));
      in_txn_ = false;
      m_.transactions++;
      return;
    case LineKind::Event: {
      auto item = std::make_unique<Item>();
      item->ev = std::move(line.event);
      if (!item->ev.transactional && !in_txn_) {
        // A non-transactional outbox message: its own unit, acknowledged at its own LSN.
        AckTracker::TxnId t = tracker_.begin();
        tracker_.add_event(t);
        item->txn = t;
        tracker_.commit(t, start, 0);
        publish(std::move(item));
        return;
      }
      if (!in_txn_) throw ParseError("event outside a transaction (at " + format_lsn(start) + ")");
      item->txn = txn_;
      if (item->ev.xid == 0) item->ev.xid = txn_xid_;
      item->ev.commit_time = txn_time_;
      tracker_.add_event(txn_);
      publish(std::move(item));
      return;
    }
    case LineKind::Ignored:
      return;
  }
}

void Relay::publish(ItemPtr item) {
  Event& ev = item->ev;
  PublishSpec spec;
  spec.exchange = ev.exchange ? *ev.exchange : cfg_.exchange;
  spec.routing_key = ev.routing_key ? *ev.routing_key
                                    : (ev.aggregate_type ? *ev.aggregate_type + "." : std::string()) + ev.event_type;
  spec.app_id = cfg_.app_id;
  spec.cloudevents_source = cfg_.cloudevents_source;
  ++ev.attempts;
  if (!amqp_.exchange_exists(spec.exchange)) {
    item->last_reply = "404 NOT_FOUND - no exchange '" + spec.exchange + "'";
    fail(std::move(item), "exchange \"" + spec.exchange + "\" does not exist");
    return;
  }
  amqp_.publish(ev, spec);
  item->published = Clock::now();
  m_.events_published++;
  in_flight_bytes_ += item->ev.payload.size();
  window_.add(std::move(item));
}

void Relay::on_confirm(std::uint64_t tag, bool multiple, bool nack) {
  std::vector<ConfirmWindow<ItemPtr>::Settled> settled;
  window_.confirm(tag, multiple, nack, settled);
  auto now = Clock::now();
  for (auto& s : settled) {
    in_flight_bytes_ -= std::min<std::uint64_t>(in_flight_bytes_, s.item->ev.payload.size());
    if (s.ok) {
      m_.events_confirmed++;
      m_.observe_confirm_latency_us(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - s.item->published).count()));
      tracker_.settle(s.item->txn);
    } else {
      if (nack) {
        m_.nacks++;
        if (s.item->last_reply.empty()) s.item->last_reply = "basic.nack";
      }
      fail(std::move(s.item), nack ? "nacked by the broker" : "unroutable (returned by the broker)");
    }
  }
  m_.in_flight = static_cast<std::int64_t>(window_.size());
}

void Relay::on_return(const std::string& id, const std::string& lsn, const std::string& reply) {
  m_.returns++;
  ItemPtr* found = window_.mark_returned([&](const ItemPtr& it) {
    return it->ev.id == id && (lsn.empty() || format_lsn(it->ev.lsn) == lsn);
  });
  if (!found) {
    spdlog::warn("basic.return for unknown message {} ({}) ignored", id, reply);
    return;
  }
  (*found)->last_reply = reply;
  spdlog::warn("event {} at {} is unroutable: {}", id, lsn, reply);
}

void Relay::fail(ItemPtr item, const std::string& reason) {
  auto t = now_us();
  if (item->first_failed_us == 0) item->first_failed_us = t;
  if (item->ev.attempts >= cfg_.max_attempts) {
    spdlog::error("event {} ({}) failed {} times ({}); writing it to outbox.dead_letters", item->ev.id,
                  item->ev.event_type, item->ev.attempts, reason);
    admin_.insert_dead_letter(item->ev, reason, item->ev.attempts, item->first_failed_us, t, item->last_reply);
    m_.dead_letters++;
    tracker_.settle(item->txn);
    return;
  }
  BackoffPolicy p{std::chrono::milliseconds(cfg_.retry_base_ms), std::chrono::milliseconds(cfg_.retry_max_ms), 0.0};
  auto d = backoff_delay(p, item->ev.attempts, rng_);
  spdlog::warn("event {} ({}) {}; retry {} of {} in {} ms", item->ev.id, item->ev.event_type, reason,
               item->ev.attempts + 1, cfg_.max_attempts, d.count());
  item->due = Clock::now() + d;
  m_.retries++;
  // Keep the original order among retries: insert by LSN.
  auto pos = retry_.end();
  while (pos != retry_.begin() && (*(pos - 1))->ev.lsn > item->ev.lsn) --pos;
  retry_.insert(pos, std::move(item));
}

void Relay::process_retries(Clock::time_point now) {
  while (!retry_.empty() && retry_.front()->due <= now && !blocked_ && !send_full_ && !window_full()) {
    ItemPtr it = std::move(retry_.front());
    retry_.pop_front();
    publish(std::move(it));
  }
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
  if (!force && now - last_checkpoint_ < std::chrono::milliseconds(cfg_.checkpoint_interval_ms)) return;
  last_checkpoint_ = now;
  if (!admin_.connected()) {
    try {
      admin_.connect(cfg_.pg);
    } catch (const PgError& e) {
      spdlog::warn("checkpoint skipped: {}", e.what());
      return;
    }
  }
  if (admin_.record_checkpoint(tracker_.ack_lsn(), tracker_.ack_commit_time_us())) checkpointed_ = tracker_.ack_lsn();
}

}  // namespace outbox
