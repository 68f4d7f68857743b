#include "ack_tracker.h"

#include <string>

namespace outbox {

void AckTracker::reset(Lsn start) {
  txns_.clear();
  base_ = next_;
  unsettled_ = 0;
  ack_ = start;
}

AckTracker::TxnId AckTracker::begin() {
  if (has_open_txn()) throw std::logic_error("ack tracker: begin while a transaction is open");
  if (txns_.empty()) base_ = next_;
  txns_.push_back(Txn{});
  return next_++;
}

AckTracker::Txn& AckTracker::get(TxnId id) {
  if (id < base_ || id >= base_ + txns_.size())
    throw std::logic_error("ack tracker: unknown transaction " + std::to_string(id));
  return txns_[static_cast<std::size_t>(id - base_)];
}

void AckTracker::add_event(TxnId txn) {
  Txn& t = get(txn);
  if (t.closed) throw std::logic_error("ack tracker: event added to a committed transaction");
  ++t.pending;
  ++unsettled_;
}

void AckTracker::commit(TxnId txn, Lsn end_lsn, std::int64_t commit_time_us) {
  Txn& t = get(txn);
  if (t.closed) throw std::logic_error("ack tracker: transaction committed twice");
  t.closed = true;
  t.end = end_lsn;
  t.commit_time_us = commit_time_us;
  advance();
}

void AckTracker::settle(TxnId txn) {
  Txn& t = get(txn);
  if (t.pending == 0) throw std::logic_error("ack tracker: settle without an unsettled event");
  --t.pending;
  --unsettled_;
  advance();
}

void AckTracker::keepalive(Lsn wal_end) {
  if (txns_.empty() && wal_end > ack_) ack_ = wal_end;
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
