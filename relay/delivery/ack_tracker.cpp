#include "delivery/ack_tracker.h"

#include <string>

namespace outbox {

void AckTracker::reset(Lsn start) {
  txns_.clear();
  unsettled_.clear();
  base_ = next_;
  ack_ = start;
}

AckTracker::TxnId AckTracker::begin(TxnIdentity id) {
  if (has_open_txn()) throw std::logic_error("ack tracker: begin while a transaction is open");
  if (txns_.empty()) base_ = next_;
  Txn t;
  t.id = id;
  t.first_unit = t.next_unit = t.run_start = next_unit_;
  txns_.push_back(t);
  return next_++;
}

AckTracker::Txn& AckTracker::get(TxnId id) {
  if (id < base_ || id >= base_ + txns_.size())
    throw std::logic_error("ack tracker: unknown transaction " + std::to_string(id));
  return txns_[static_cast<std::size_t>(id - base_)];
}

AckTracker::Unit AckTracker::add_unit(TxnId txn, Lsn lsn) {
  Txn& t = get(txn);
  if (t.closed) throw std::logic_error("ack tracker: event added to a committed transaction");
  if (t.next_unit != next_unit_) throw std::logic_error("ack tracker: event added to a transaction that is not the newest");
  if (lsn < t.last_lsn || (t.hold_lsn && lsn < *t.hold_lsn)) t.out_of_order = true;
  if (t.next_unit == t.first_unit || lsn > t.last_lsn) t.run_start = next_unit_;
  t.last_lsn = lsn;
  t.next_unit = ++next_unit_;
  return next_unit_ - 1;
}

AckTracker::Unit AckTracker::add_event(TxnId txn, Lsn lsn) {
  Unit u = add_unit(txn, lsn);
  Txn& t = get(txn);
  ++t.pending;
  unsettled_.put(u, Pending{txn, lsn, t.run_start});  // units settled at once are holes
  return u;
}

void AckTracker::add_settled(TxnId txn, Lsn lsn) { add_unit(txn, lsn); }

void AckTracker::hold_progress(TxnId txn, Lsn lsn) {
  Txn& t = get(txn);
  if (t.closed || t.hold_lsn) return;
  if (lsn < t.last_lsn) t.out_of_order = true;
  t.hold_lsn = lsn;
  // Units at the same LSN as the held line (one multi-insert record) do not count either.
  t.below_hold = (t.next_unit == t.first_unit ? t.next_unit : (t.last_lsn < lsn ? t.next_unit : t.run_start)) -
                 t.first_unit;
}

void AckTracker::commit(TxnId txn, Lsn end_lsn, std::int64_t commit_time_us) {
  Txn& t = get(txn);
  if (t.closed) throw std::logic_error("ack tracker: transaction committed twice");
  t.closed = true;
  t.end = end_lsn;
  t.commit_time_us = commit_time_us;
  advance();
}

AckTracker::TxnId AckTracker::settle(Unit unit) {
  if (!unsettled_.find(unit)) throw std::logic_error("ack tracker: settle of an unknown or settled unit");
  TxnId txn = unsettled_.take(unit).txn;
  Txn& t = get(txn);
  --t.pending;
  advance();
  return txn;
}

void AckTracker::keepalive(Lsn wal_end) {
  if (txns_.empty() && wal_end > ack_) ack_ = wal_end;
}

std::optional<TxnProgress> AckTracker::progress() const {
  if (txns_.empty()) return std::nullopt;
  const Txn& t = txns_.front();
  if (!t.id.known() || t.out_of_order || t.next_unit == t.first_unit) return std::nullopt;
  TxnProgress p;
  p.txn = t.id;
  // Its first unsettled unit.
  const Pending* first = nullptr;
  unsettled_.each(t.first_unit, t.next_unit, [&](Unit, const Pending& p) {
    first = &p;
    return false;
  });
  if (first) {
    // The first unsettled unit: everything before its LSN is settled. Units before it at the
    // same LSN are settled too, but a re-send cannot tell them apart from it.
    p.settled_before = first->lsn;
    p.settled = first->run_start - t.first_unit;
  } else {
    // All received units are settled; more rows of the newest one's record may follow.
    p.settled_before = t.last_lsn;
    p.settled = t.run_start - t.first_unit;
  }
  if (t.hold_lsn && *t.hold_lsn <= p.settled_before) {
    p.settled_before = *t.hold_lsn;
    p.settled = t.below_hold;
  }
  if (p.settled == 0) return std::nullopt;
  return p;
}

void AckTracker::advance() {
  while (!txns_.empty() && txns_.front().closed && txns_.front().pending == 0) {
    const Txn& t = txns_.front();
    if (t.end > ack_) ack_ = t.end;
    if (t.commit_time_us != 0) ack_commit_time_us_ = t.commit_time_us;
    txns_.pop_front();
    ++base_;
  }
}

}  // namespace outbox
