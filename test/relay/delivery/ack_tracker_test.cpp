#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "delivery/ack_tracker.h"
#include "delivery/confirm_window.h"

using namespace outbox;

TEST(AckTracker, StartsAtStartLsn) {
  AckTracker t(100);
  EXPECT_EQ(t.ack_lsn(), 100u);
  EXPECT_TRUE(t.idle());
}

TEST(AckTracker, EmptyTransactionIsAckedAtCommit) {
  AckTracker t;
  auto a = t.begin();
  EXPECT_FALSE(t.idle());
  t.commit(a, 500, 7);
  EXPECT_EQ(t.ack_lsn(), 500u);
  EXPECT_EQ(t.ack_commit_time_us(), 7);
  EXPECT_TRUE(t.idle());
}

TEST(AckTracker, WaitsForEveryEventOfTheTransaction) {
  AckTracker t;
  auto a = t.begin();
  auto u1 = t.add_event(a);
  auto u2 = t.add_event(a);
  t.commit(a, 200);
  EXPECT_EQ(t.ack_lsn(), 0u);
  EXPECT_EQ(t.settle(u2), a);
  EXPECT_EQ(t.ack_lsn(), 0u);
  t.settle(u1);
  EXPECT_EQ(t.ack_lsn(), 200u);
}

TEST(AckTracker, OpenTransactionIsNotAckedEvenIfSettled) {
  AckTracker t;
  auto a = t.begin();
  t.settle(t.add_event(a));  // confirmed before the C line arrived
  EXPECT_EQ(t.ack_lsn(), 0u);
  EXPECT_TRUE(t.has_open_txn());
  t.keepalive(1000);  // not idle: ignored
  EXPECT_EQ(t.ack_lsn(), 0u);
  t.commit(a, 300);
  EXPECT_EQ(t.ack_lsn(), 300u);
}

TEST(AckTracker, NewerConfirmedTransactionWaitsForOlder) {
  AckTracker t;
  auto a = t.begin();
  auto ua = t.add_event(a);
  t.commit(a, 100);
  auto b = t.begin();
  auto ub = t.add_event(b);
  t.commit(b, 200);
  auto c = t.begin();
  t.commit(c, 300);  // empty
  t.settle(ub);
  EXPECT_EQ(t.ack_lsn(), 0u);
  t.settle(ua);
  EXPECT_EQ(t.ack_lsn(), 300u);  // a, b and the empty c all go at once
}

TEST(AckTracker, KeepaliveOnlyWhenIdleAndNeverBackwards) {
  AckTracker t(50);
  t.keepalive(40);
  EXPECT_EQ(t.ack_lsn(), 50u);
  t.keepalive(80);
  EXPECT_EQ(t.ack_lsn(), 80u);
  auto a = t.begin();
  auto u = t.add_event(a);
  t.commit(a, 120);
  t.keepalive(500);
  EXPECT_EQ(t.ack_lsn(), 80u);
  t.settle(u);
  EXPECT_EQ(t.ack_lsn(), 120u);
  t.keepalive(500);
  EXPECT_EQ(t.ack_lsn(), 500u);
}

TEST(AckTracker, ResetForgetsInFlightAndTakesTheServersLsn) {
  AckTracker t;
  auto a = t.begin();
  t.commit(a, 100);
  auto b = t.begin();
  auto ub = t.add_event(b);
  t.commit(b, 200);
  t.reset(100);  // reconnect: the slot is where we acknowledged
  EXPECT_EQ(t.ack_lsn(), 100u);
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(t.unsettled_events(), 0u);
  EXPECT_THROW(t.settle(ub), std::logic_error);  // stale unit after reset
  auto c = t.begin();
  auto uc = t.add_event(c);
  t.commit(c, 200);
  t.settle(uc);
  EXPECT_EQ(t.ack_lsn(), 200u);
  t.reset(50);  // a recreated slot: the server's position wins
  EXPECT_EQ(t.ack_lsn(), 50u);
}

TEST(AckTracker, MisuseIsALogicError) {
  AckTracker t;
  auto a = t.begin();
  EXPECT_THROW(t.begin(), std::logic_error);
  EXPECT_THROW(t.settle(12345), std::logic_error);
  auto u = t.add_event(a);
  t.settle(u);
  EXPECT_THROW(t.settle(u), std::logic_error);  // settled twice
  t.commit(a, 10);
  EXPECT_THROW(t.add_event(a), std::logic_error);
  EXPECT_THROW(t.commit(a, 10), std::logic_error);
}

// Large transactions (DESIGN 6.1): how far into the oldest unacknowledged transaction
// everything is settled, as the relay records it with its checkpoint.
TEST(AckTrackerProgress, CountsTheLeadingSettledEventsOfTheOldestTransaction) {
  AckTracker t;
  auto a = t.begin(TxnIdentity{42, 1000});
  EXPECT_FALSE(t.progress()) << "nothing received";
  auto u1 = t.add_event(a, 1010);
  auto u2 = t.add_event(a, 1020);
  auto u3 = t.add_event(a, 1030);
  auto u4 = t.add_event(a, 1040);
  t.settle(u2);
  EXPECT_FALSE(t.progress()) << "the first event is unsettled: nothing leads";
  t.settle(u1);
  auto p = t.progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->txn, (TxnIdentity{42, 1000}));
  EXPECT_EQ(p->settled, 2u);
  EXPECT_EQ(p->settled_before, 1030u) << "the first unsettled event's line";
  t.settle(u4);
  EXPECT_EQ(t.progress()->settled, 2u) << "a settled event behind an unsettled one does not count";
  t.settle(u3);
  // All received are settled while the transaction goes on: the newest line's LSN may be shared
  // by rows still to come (one multi-insert record), so it does not count.
  EXPECT_EQ(t.progress()->settled, 3u);
  EXPECT_EQ(t.progress()->settled_before, 1040u);
  t.commit(a, 2000);
  EXPECT_EQ(t.ack_lsn(), 2000u);
  EXPECT_FALSE(t.progress()) << "acknowledged: nothing to say";
}

TEST(AckTrackerProgress, RowsOfOneRecordCountOnlyTogether) {
  AckTracker t;
  auto a = t.begin(TxnIdentity{7, 100});
  auto u1 = t.add_event(a, 110);
  auto u2 = t.add_event(a, 120);  // three rows of one multi-insert record
  auto u3 = t.add_event(a, 120);
  auto u4 = t.add_event(a, 120);
  t.add_event(a, 130);
  t.settle(u1);
  t.settle(u2);
  t.settle(u3);
  auto p = t.progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->settled, 1u) << "a re-send cannot tell u2 and u3 from u4";
  EXPECT_EQ(p->settled_before, 120u);
  t.settle(u4);
  EXPECT_EQ(t.progress()->settled, 4u);
  EXPECT_EQ(t.progress()->settled_before, 130u);
}

TEST(AckTrackerProgress, OnlyTheOldestTransactionAndOnlyWithAnIdentity) {
  AckTracker t;
  auto a = t.begin(TxnIdentity{1, 100});
  auto ua = t.add_event(a, 110);
  t.commit(a, 150);
  auto b = t.begin(TxnIdentity{2, 200});
  t.settle(t.add_event(b, 210));
  t.add_event(b, 220);
  EXPECT_FALSE(t.progress()) << "the oldest (a) has nothing settled";
  t.settle(ua);
  ASSERT_TRUE(t.progress());
  EXPECT_EQ(t.progress()->txn.xid, 2u);
  EXPECT_EQ(t.progress()->settled, 1u);

  AckTracker n;
  auto c = n.begin();  // no xid: a slot recovery's unit, a B line without one
  n.settle(n.add_event(c, 10));
  n.add_event(c, 20);
  EXPECT_FALSE(n.progress());
}

TEST(AckTrackerProgress, ARejectedLineStopsIt) {
  AckTracker t;
  auto a = t.begin(TxnIdentity{9, 100});
  auto u1 = t.add_event(a, 110);
  auto u2 = t.add_event(a, 120);
  t.hold_progress(a, 120);  // a message it could not verify, in the same record as u2
  auto u3 = t.add_event(a, 130);
  for (auto u : {u1, u2, u3}) t.settle(u);
  auto p = t.progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->settled_before, 120u) << "never past the rejected line";
  EXPECT_EQ(p->settled, 1u);
}

TEST(AckTrackerProgress, EventsSkippedAfterARestartKeepCounting) {
  AckTracker t;
  auto a = t.begin(TxnIdentity{5, 100});
  t.add_settled(a, 110);  // settled by the relay before the restart, not published again
  t.add_settled(a, 120);
  auto u3 = t.add_event(a, 130);
  t.add_event(a, 140);
  EXPECT_EQ(t.unsettled_events(), 2u);
  auto p = t.progress();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->settled, 2u);
  EXPECT_EQ(p->settled_before, 130u);
  t.settle(u3);
  EXPECT_EQ(t.progress()->settled, 3u);
}

// Units settled at once (add_settled) between unsettled ones, and settles out of order: the
// holes they leave are never settled twice, and the progress is the first unit still open.
TEST(AckTrackerProgress, HolesBetweenUnsettledUnits) {
  AckTracker t;
  auto a = t.begin(TxnIdentity{6, 100});
  auto u1 = t.add_event(a, 110);
  t.add_settled(a, 120);
  auto u3 = t.add_event(a, 130);
  t.add_settled(a, 140);
  auto u5 = t.add_event(a, 150);
  t.commit(a, 200);
  t.settle(u3);
  EXPECT_THROW(t.settle(u3), std::logic_error);
  EXPECT_THROW(t.settle(u1 + 1), std::logic_error) << "a unit settled at once is not open";
  EXPECT_FALSE(t.progress()) << "the first unit is still open";
  t.settle(u1);
  EXPECT_EQ(t.unsettled_events(), 1u);
  EXPECT_EQ(t.progress()->settled_before, 150u);
  EXPECT_EQ(t.progress()->settled, 4u);
  t.settle(u5);
  EXPECT_EQ(t.ack_lsn(), 200u);
  EXPECT_EQ(t.unsettled_events(), 0u);
}

// Randomized: random transactions (0..6 events), a random confirm window, random broker answers
// (single and multiple acks, nacks, returns followed by acks, out-of-order single acks), retries
// and dead letters, keepalives, and random crashes (everything in flight lost, the server re-sends
// from the acknowledged LSN). Invariants after every step:
//  - safety: every event of every transaction at or below the ack LSN was confirmed or
//    dead-lettered at least once;
//  - liveness: the ack LSN equals the model's: the end of the newest fully settled committed
//    prefix, or the keepalive's WAL end when nothing is tracked.
namespace {

struct Txn {
  Lsn end;
  int events;
  Lsn begin = 0;
  std::vector<Lsn> lsn;  // each event's line, nondecreasing (equal: rows of one multi-insert record)
  int hold = -1;         // a rejected line just before this event (at its LSN), -1: none
};
struct Ref {
  int txn;    // index in the workload
  int event;  // index inside the transaction
  AckTracker::TxnId tid;
  int attempts;
};

std::uint64_t g_skipped = 0;  // events skipped as settled before a crash, over all seeds

void run_random(std::uint64_t seed, bool with_crashes) {
  std::mt19937_64 rng(seed);
  auto rnd = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  const int ntx = 60 + rnd(120);
  std::vector<Txn> wl;
  Lsn lsn = 1000;
  for (int i = 0; i < ntx; ++i) {
    Txn t{0, rnd(4) == 0 ? 0 : rnd(7)};
    t.begin = lsn + 1;
    Lsn at = t.begin;
    for (int e = 0; e < t.events; ++e) {
      if (e == 0 || rnd(3) != 0) at += 1 + static_cast<Lsn>(rnd(5));
      t.lsn.push_back(at);
    }
    if (t.events > 0 && rnd(6) == 0) t.hold = rnd(t.events);
    lsn = at + 10 + static_cast<Lsn>(rnd(100));
    t.end = lsn;
    wl.push_back(t);
  }
  // What each crash left known about the oldest unacknowledged transaction, and how many of a
  // re-sent transaction's events were skipped as settled (it must never skip an unsettled one).
  std::vector<TxnProgress> facts;
  std::optional<TxnProgress> skip;
  std::uint64_t skipped = 0;
  const int max_attempts = 1 + rnd(4);
  const std::size_t window = 1 + static_cast<std::size_t>(rnd(12));

  AckTracker tracker(900);
  ConfirmWindow<Ref> win;
  std::vector<std::set<int>> done(ntx);  // events confirmed or dead-lettered at least once
  // Stream position: next txn to receive and the part of it already received.
  int next_txn = 0, next_event = -1;     // -1: B not yet received
  AckTracker::TxnId open_tid = 0;
  std::vector<Ref> retry;  // failed events waiting for republish, in order
  std::vector<int> recv_pending(ntx, 0);  // model: unsettled events per received txn
  std::vector<bool> recv_committed(ntx, false);
  int first_tracked = 0;  // model: first received txn not yet acknowledged
  Lsn model_ack = 900;
  bool model_open = false;

  auto model_advance = [&]() {
    while (first_tracked < next_txn && recv_committed[first_tracked] && recv_pending[first_tracked] == 0) {
      model_ack = std::max(model_ack, wl[first_tracked].end);
      ++first_tracked;
    }
  };
  auto settle = [&](const Ref& r) {
    done[r.txn].insert(r.event);
    tracker.settle(r.tid);
    --recv_pending[r.txn];
  };
  auto check = [&]() {
    ASSERT_EQ(tracker.ack_lsn(), model_ack) << "seed " << seed;
    for (int i = 0; i < ntx && wl[i].end <= tracker.ack_lsn(); ++i)
      ASSERT_EQ(static_cast<int>(done[i].size()), wl[i].events) << "seed " << seed << " txn " << i;
  };

  int steps = 0;
  while (tracker.ack_lsn() < wl.back().end) {
    ASSERT_LT(++steps, 1000000) << "no progress, seed " << seed;
    int action = rnd(100);
    if (action < 40) {
      // Receive the next stream item, unless the window is full or retries are pending.
      if (next_txn >= ntx || win.size() >= window || !retry.empty()) continue;
      const Txn& w = wl[next_txn];
      if (next_event == -1) {
        TxnIdentity id{static_cast<std::uint64_t>(next_txn) + 1, w.begin};
        open_tid = tracker.begin(id);
        model_open = true;
        next_event = 0;
        skip.reset();
        skipped = 0;
        for (const TxnProgress& f : facts)
          if (f.txn == id && (!skip || f.settled_before > skip->settled_before)) skip = f;
      } else if (next_event < w.events) {
        if (next_event == w.hold) tracker.hold_progress(open_tid, w.lsn[next_event]);
        Lsn at = w.lsn[next_event];
        if (skip && at < skip->settled_before && skipped < skip->settled) {
          ASSERT_TRUE(done[next_txn].count(next_event)) << "skipped an unsettled event, seed " << seed;
          tracker.add_settled(open_tid, at);
          ++skipped;
          ++g_skipped;
          ++next_event;
          continue;
        }
        if (skip) {
          EXPECT_EQ(skipped, skip->settled) << "the same stream: every counted event skipped, seed " << seed;
          skip.reset();
        }
        win.add(Ref{next_txn, next_event, tracker.add_event(open_tid, at), 1});
        ++recv_pending[next_txn];
        ++next_event;
      } else {
        tracker.commit(open_tid, wl[next_txn].end);
        recv_committed[next_txn] = true;
        model_open = false;
        ++next_txn;
        next_event = -1;
        model_advance();
      }
    } else if (action < 75) {
      // The broker answers for a random in-flight tag.
      if (win.empty()) continue;
      std::uint64_t lo = win.next_tag() - win.size();  // tags are not contiguous; pick near the front
      std::uint64_t tag = lo + static_cast<std::uint64_t>(rnd(static_cast<int>(win.size()) + 1));
      int kind = rnd(10);
      if (kind == 0) {
        // basic.return for the oldest entry, then its ack comes later
        win.mark_returned([](const Ref&) { return true; });
        continue;
      }
      std::vector<ConfirmWindow<Ref>::Settled> out;
      win.confirm(tag, rnd(2) == 0, kind == 1, out);
      for (auto& s : out) {
        if (s.ok) {
          settle(s.item);
        } else if (s.item.attempts >= max_attempts) {
          settle(s.item);  // dead letter
        } else {
          Ref r = s.item;
          ++r.attempts;
          retry.push_back(r);
        }
      }
      model_advance();
    } else if (action < 85) {
      // Republish the retries (the backoff delay is the caller's business).
      if (retry.empty() || win.size() >= window) continue;
      win.add(retry.front());
      retry.erase(retry.begin());
    } else if (action < 95) {
      // A keepalive: the server has sent everything before the next txn's commit.
      Lsn wal_end = next_txn < ntx ? wl[next_txn].end - 1 - static_cast<Lsn>(rnd(5)) : wl.back().end + 5;
      if (next_txn > 0) wal_end = std::max(wal_end, wl[next_txn - 1].end);
      bool idle = !model_open && first_tracked == next_txn;
      EXPECT_EQ(tracker.idle(), idle) << "seed " << seed;
      tracker.keepalive(wal_end);
      if (idle) model_ack = std::max(model_ack, wal_end);
    } else if (with_crashes && action < 97) {
      // Crash: everything in flight is lost; the server re-sends from the first txn past the ack.
      // What the tracker says of the oldest unacknowledged transaction must hold exactly.
      if (auto p = tracker.progress()) {
        ASSERT_LT(first_tracked, ntx);
        const Txn& f = wl[first_tracked];
        ASSERT_EQ(p->txn, (TxnIdentity{static_cast<std::uint64_t>(first_tracked) + 1, f.begin})) << "seed " << seed;
        std::uint64_t below = 0;
        for (int e = 0; e < f.events; ++e)
          if (f.lsn[e] < p->settled_before) {
            ++below;
            ASSERT_TRUE(done[first_tracked].count(e)) << "counted an unsettled event, seed " << seed;
          }
        ASSERT_EQ(below, p->settled) << "seed " << seed;
        if (f.hold >= 0) ASSERT_LE(p->settled_before, f.lsn[f.hold]) << "passed a held line, seed " << seed;
        facts.push_back(*p);
      }
      skip.reset();
      win.reset();
      retry.clear();
      tracker.reset(tracker.ack_lsn());
      int restart = 0;
      while (restart < ntx && wl[restart].end <= tracker.ack_lsn()) ++restart;
      for (int i = restart; i < ntx; ++i) {
        recv_pending[i] = 0;
        recv_committed[i] = false;
      }
      next_txn = restart;
      first_tracked = restart;
      next_event = -1;
      model_open = false;
    }
    check();
    if (::testing::Test::HasFatalFailure()) return;
  }
  check();
  for (int i = 0; i < ntx; ++i) ASSERT_EQ(static_cast<int>(done[i].size()), wl[i].events);
}

}  // namespace

TEST(AckTrackerRandomized, NoCrashes) {
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    run_random(seed, false);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(AckTrackerRandomized, WithCrashes) {
  g_skipped = 0;
  for (std::uint64_t seed = 1000; seed <= 1300; ++seed) {
    run_random(seed, true);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(g_skipped, 0u) << "re-sent transactions skipped what was settled before a crash";
}
