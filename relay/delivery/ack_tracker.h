// The acknowledgement rule (DESIGN 5.3), independent of any I/O.
//
// Transactions are registered in commit order as they arrive from the slot (begin, events, commit).
// Each holds its commit end LSN and its unsettled units (events published but not yet confirmed
// by the broker, or waiting for a retry; releases not yet applied). A unit is settled when the
// broker confirmed it or it was written to outbox.dead_letters. The acknowledged LSN is the end LSN
// of the newest transaction such that it and every older one are committed and fully settled. When
// nothing at all is tracked, a keepalive's WAL end may be acknowledged, so an idle outbox never
// holds WAL back. Within a session the acknowledged LSN never goes backwards.
//
// The slot is acknowledged only at commit boundaries, so a restart re-sends the oldest
// unacknowledged transaction whole. progress() says how far into it everything is settled (DESIGN
// 6.1, "large transactions"): every unit of it whose line lies below an LSN, identified by what the
// slot sends again unchanged (the xid and the LSN of its B line, the transaction's first WAL record).
// The relay stores that with its checkpoint and does not publish those units again.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>

#include "delivery/lsn.h"
#include "delivery/numbered_queue.h"

namespace outbox {

// What identifies a transaction across re-sends of the slot: its xid and its first WAL record
// (the XLogData start of its B line). Both 0: no identity (a slot recovery's unit, a
// non-transactional message, a B line without an xid); no progress is kept for it.
struct TxnIdentity {
  std::uint64_t xid = 0;
  Lsn begin_lsn = 0;
  bool known() const { return xid != 0 && begin_lsn != 0; }
  bool operator==(const TxnIdentity& o) const { return xid == o.xid && begin_lsn == o.begin_lsn; }
};

// How far into a transaction everything is settled: each of its units (events and releases, in
// stream order) whose line starts below `settled_before` is settled, and there are `settled`
// of them. A unit at exactly `settled_before` may be settled or not (several rows of one
// multi-insert WAL record share an LSN), so it never counts.
struct TxnProgress {
  TxnIdentity txn;
  Lsn settled_before = 0;
  std::uint64_t settled = 0;
  bool operator==(const TxnProgress& o) const {
    return txn == o.txn && settled_before == o.settled_before && settled == o.settled;
  }
  bool operator!=(const TxnProgress& o) const { return !(*this == o); }
};

class AckTracker {
 public:
  using TxnId = std::uint64_t;
  using Unit = std::uint64_t;  // one event or release, handed back to settle()

  explicit AckTracker(Lsn start = 0) : ack_(start) {}

  // Forget everything tracked (after a reconnect the server re-sends from the slot) and restart
  // from `start`, the slot's confirmed LSN as the server has it: the server is the authority (a
  // slot dropped and recreated starts lower, and acknowledging our old, higher LSN to it would
  // skip events). Within one session the acknowledged LSN never goes backwards.
  void reset(Lsn start);

  // Opens the next transaction (B line). Throws std::logic_error if one is already open.
  TxnId begin(TxnIdentity id = {});
  // Adds one unsettled unit to the open transaction; `lsn` is the XLogData start of its line.
  Unit add_event(TxnId txn, Lsn lsn = 0);
  // A unit the broker settled before a restart, received again and not published: settled at
  // once, so that progress() keeps counting it.
  void add_settled(TxnId txn, Lsn lsn);
  // A line of the open transaction at `lsn` that is not a unit but could be one in another
  // session (a message the relay could not verify): progress() never passes it.
  void hold_progress(TxnId txn, Lsn lsn);
  // Closes the open transaction (C line) with its end LSN and commit time (microseconds since
  // the Unix epoch, 0 if unknown).
  void commit(TxnId txn, Lsn end_lsn, std::int64_t commit_time_us = 0);
  // A unit is settled (confirmed or dead-lettered). Returns its transaction.
  TxnId settle(Unit unit);
  // A keepalive (or any server report) says the server has sent everything up to `wal_end`.
  // Acknowledged only when nothing is tracked.
  void keepalive(Lsn wal_end);

  // How far into the oldest unacknowledged transaction everything is settled; nullopt when it
  // has no identity or nothing of it counts yet.
  std::optional<TxnProgress> progress() const;

  Lsn ack_lsn() const { return ack_; }
  // Commit time of the newest acknowledged transaction (0 if none since start).
  std::int64_t ack_commit_time_us() const { return ack_commit_time_us_; }
  bool idle() const { return txns_.empty(); }
  bool has_open_txn() const { return !txns_.empty() && !txns_.back().closed; }
  std::size_t tracked_txns() const { return txns_.size(); }
  std::uint64_t unsettled_events() const { return unsettled_.size(); }

 private:
  struct Txn {
    Lsn end = 0;
    std::int64_t commit_time_us = 0;
    std::uint32_t pending = 0;
    bool closed = false;
    TxnIdentity id;
    Unit first_unit = 0, next_unit = 0;  // its units are [first_unit, next_unit)
    // The LSN of its newest unit, and the first unit at that LSN (the start of a run of rows
    // of one multi-insert record).
    Lsn last_lsn = 0;
    Unit run_start = 0;
    // A line progress() must not pass (hold_progress), and how many units lie below it.
    std::optional<Lsn> hold_lsn;
    std::uint64_t below_hold = 0;
    bool out_of_order = false;  // lines not in LSN order: no progress is kept (never seen)
  };
  struct Pending {
    TxnId txn = 0;
    Lsn lsn = 0;
    Unit run_start = 0;
  };
  Txn& get(TxnId id);
  Unit add_unit(TxnId txn, Lsn lsn);
  void advance();

  std::deque<Txn> txns_;
  TxnId base_ = 0;  // id of txns_.front()
  TxnId next_ = 0;
  Unit next_unit_ = 0;
  // Units only grow: the unsettled ones by unit, in stream order.
  NumberedQueue<Pending> unsettled_;
  Lsn ack_ = 0;
  std::int64_t ack_commit_time_us_ = 0;
};

}  // namespace outbox
