// The slot's side of the loop: lines read from the replication stream, converted to UTF-8,
// parsed, bound to transactions in the AckTracker and handed to the Delivery unit; rejected lines;
// the slot recovery's pages.
#include "relay.h"

#include <spdlog/spdlog.h>

#include "delivery/timestamp.h"
#include "sink_batch.h"

namespace outbox {

namespace {

constexpr int kMaxMessagesPerTurn = 2000;  // then look at the broker again

// Rejected lines are logged one by one up to this many, then one in kRejectLogEvery: a role that
// forges messages in a loop must not be able to flood the log (the metric counts them all).
constexpr std::uint64_t kRejectLogFirst = 20;
constexpr std::uint64_t kRejectLogEvery = 1000;

}  // namespace

void Relay::process_wal() {
  SinkBatch batch(sink_ptrs_);
  // One clock read per turn, not per line: silence is measured in seconds.
  const Clock::time_point heard = Clock::now();
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
      last_heard_ = heard;
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
      {
        std::int64_t commit_us = parse_timestamp_us(line.timestamp).value_or(0);
        tracker_.commit(txn_, start, commit_us);
        // Where a commit-to-delivery tail comes from: before the relay (PostgreSQL, the
        // network), or after it (confirm_latency). A clock behind PostgreSQL's counts as 0.
        if (commit_us > 0) {
          std::int64_t waited = wall_us() - commit_us;
          m_.commit_to_receive.observe_us(waited > 0 ? static_cast<std::uint64_t>(waited) : 0);
        }
      }
      in_txn_ = false;
      m_.transactions++;
      return;
    case LineKind::Event: {
      Event ev = std::move(line.event);
      if (!ev.transactional && !in_txn_) {
        // A non-transactional outbox message: its own unit, acknowledged at its own LSN.
        delivery_.add(std::move(ev), unit_for(start), turn_at_);
        return;
      }
      if (!in_txn_) throw ParseError("event outside a transaction (at " + format_lsn(start) + ")");
      if (skip_settled(start)) return;
      if (ev.xid == 0) ev.xid = txn_xid_;
      ev.commit_time = txn_time_;
      delivery_.add(std::move(ev), unit_for(start), turn_at_);
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
    delivery_.add(std::move(ev), tracker_.add_event(recovery_.txn, recovery_.at), turn_at_);
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
