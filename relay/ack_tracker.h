// The acknowledgement rule (DESIGN 5.2), independent of any I/O.
//
// Transactions are registered in commit order as they arrive from the slot (begin, events, commit).
// Each holds its commit end LSN and its count of unsettled events (published but not yet confirmed
// by the broker, or waiting for a retry). An event is settled when the broker confirmed it or when
// it was written to outbox.dead_letters. The acknowledged LSN is the end LSN of the newest
// transaction such that it and every older one are committed and fully settled. When nothing at all
// is tracked, a keepalive's WAL end may be acknowledged, so an idle outbox never holds WAL back.
// Within a session the acknowledged LSN never goes backwards.
#pragma once
#include <cstdint>
#include <deque>
#include <stdexcept>

#include "lsn.h"

namespace outbox {

class AckTracker {
 public:
  using TxnId = std::uint64_t;

  explicit AckTracker(Lsn start = 0) : ack_(start) {}

  // Forget everything tracked (after a reconnect the server re-sends from the slot) and restart
  // from `start`, the slot's confirmed LSN as the server has it: the server is the authority (a
  // slot dropped and recreated starts lower, and acknowledging our old, higher LSN to it would
  // skip events). Within one session the acknowledged LSN never goes backwards.
  void reset(Lsn start);

  // Opens the next transaction (B line). Throws std::logic_error if one is already open.
  TxnId begin();
  // Adds one unsettled event to the open transaction.
  void add_event(TxnId txn);
  // Closes the open transaction (C line) with its end LSN and commit time (microseconds since
  // the Unix epoch, 0 if unknown).
  void commit(TxnId txn, Lsn end_lsn, std::int64_t commit_time_us = 0);
  // One event of `txn` is settled (confirmed or dead-lettered).
  void settle(TxnId txn);
  // A keepalive (or any server report) says the server has sent everything up to `wal_end`.
  // Acknowledged only when nothing is tracked.
  void keepalive(Lsn wal_end);

  Lsn ack_lsn() const { return ack_; }
  // Commit time of the newest acknowledged transaction (0 if none since start).
  std::int64_t ack_commit_time_us() const { return ack_commit_time_us_; }
  bool idle() const { return txns_.empty(); }
  bool has_open_txn() const { return !txns_.empty() && !txns_.back().closed; }
  std::size_t tracked_txns() const { return txns_.size(); }
  std::uint64_t unsettled_events() const { return unsettled_; }

 private:
  struct Txn {
    Lsn end = 0;
    std::int64_t commit_time_us = 0;
    std::uint32_t pending = 0;
    bool closed = false;
  };
  Txn& get(TxnId id);
  void advance();

  std::deque<Txn> txns_;
  TxnId base_ = 0;  // id of txns_.front()
  TxnId next_ = 0;
  Lsn ack_ = 0;
  std::int64_t ack_commit_time_us_ = 0;
  std::uint64_t unsettled_ = 0;
};

}  // namespace outbox
