// The brokers' side of the loop: opening and reopening sinks (on their own threads), their
// answers, a sink that broke or went down while others go on, and what the Delivery unit hands
// back (dead letters to write, settled transactions).
#include "relay.h"

#include <exception>

#include <spdlog/spdlog.h>

#include "delivery/backoff.h"
#include "delivery/timestamp.h"

namespace outbox {

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
        delivery_.refused(o.ticket, o.why, o.reply, now, o.refusal);
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
  delivery_.take_settled(settled_buf_);
  auto us = [](std::chrono::steady_clock::duration d) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  };
  for (const Settled& s : settled_buf_) {
    if (s.confirmed) {
      m_.observe_confirm_latency_us(us(s.latency));
      m_.receive_to_publish.observe_us(us(s.held));
    }
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

}  // namespace outbox
