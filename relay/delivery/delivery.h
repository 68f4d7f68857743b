// The delivery unit (DESIGN 5.4, 5.9): which event is published when, what a confirm, a refusal
// or a lost channel means for it, retries, dead letters, and what is remembered about failing
// events across reconnects. No I/O: the event loop feeds it what arrived (events from the slot,
// the broker's answers) and carries out what it hands back (publishes through a Sink, settled
// transactions for the AckTracker, dead letters to write).
//
// The ordering rule: events of one ordering key (aggregate_type + aggregate_id; every event
// without an aggregate_id shares one key) are published one at a time, in stream order: the next
// one goes when the previous one is confirmed or has become a dead letter. A nack or a return
// therefore cannot let a later event of the same aggregate overtake it; events of other keys
// keep flowing, pipelined up to the window. Across keys, Ordering::Commit publishes first
// attempts in stream (commit) order, so an event whose key is busy holds back the events behind
// it; Ordering::Aggregate lets them pass (more throughput when aggregates repeat closely, order
// only per aggregate). Retries never hold back other keys. Ordering::None gives every event a key
// of its own: all are pipelined up to the window and a retry can be overtaken by a later event of
// its aggregate (for consumers that need no order: notifications, metrics, search indexing).
//
// Failures the broker pins on one event (return, nack, a missing exchange) are retried with
// capped exponential backoff. A closed channel or connection cannot be pinned when several
// messages were in flight: each of them becomes a suspect and, after the reconnect, is published
// alone, so that the next close (if any) names the culprit. Attempt counts and suspects are kept
// by (LSN, event id) across reset(), because the slot sends the same events again.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <functional>

#include "delivery/ack_tracker.h"
#include "delivery/event.h"
#include "delivery/sink.h"

namespace outbox {

enum class Ordering { Commit, Aggregate, None };

// What a dead letter means for the later events of its aggregate.
enum class OnDeadLetter {
  Continue,  // they are published
  Park,      // they become dead letters too, until outbox.release_parked() re-emits them in order
};

struct DeliveryOptions {
  Ordering ordering = Ordering::Aggregate;
  OnDeadLetter on_dead_letter = OnDeadLetter::Continue;
  int max_attempts = 5;
  std::chrono::milliseconds retry_base{200}, retry_max{10000};
  std::size_t max_in_flight = 1000;
  std::uint64_t max_in_flight_bytes = 16u << 20;
  // Events held (in flight or waiting) beyond which the slot is not read: bounds memory while
  // one aggregate waits for its retries.
  std::size_t max_held = 2000;
  // The default exchange (events whose exchange is null wait, not fail, while it is missing).
  std::string default_exchange;
  // Which sink (an index into the sinks given to pump()) takes an event: the routing rules.
  // Unset: every event goes to sink 0.
  std::function<std::size_t(const Event&)> route;
  // The sink whose exchanges `default_exchange` names (RabbitMQ's index; npos: none): only its
  // events wait while the default exchange is missing.
  std::size_t default_exchange_sink = 0;
};

struct DeadLetter {
  Event ev;
  std::string reason;
  int attempts = 0;
  std::int64_t first_failed_us = 0, last_failed_us = 0;
  std::string broker_reply;
  AckTracker::Unit txn = 0;  // the tracker unit it settles
};

struct Settled {
  AckTracker::Unit txn = 0;  // the tracker unit it settles
  // Only for an event the broker confirmed (not a dead letter, not one settled before):
  bool confirmed = false;
  std::chrono::steady_clock::duration latency{};  // its last publish -> the confirm
  std::chrono::steady_clock::duration held{};     // read from the slot -> its last publish
};

struct DeliveryStats {
  std::uint64_t published = 0, confirmed = 0, returned = 0, nacked = 0, exchange_missing = 0, retries = 0,
                dead_letters = 0, suspects = 0, duplicates = 0;
};

class Delivery {
 public:
  using Clock = std::chrono::steady_clock;
  // The tag given with each event and handed back when it settles (Settled, DeadLetter): the
  // relay passes the AckTracker unit of the event.
  using TxnId = AckTracker::Unit;

  explicit Delivery(DeliveryOptions o) : o_(std::move(o)) {}

  // An event from the slot, in stream order.
  // received: when the relay read the event's line (Settled::held counts from it).
  void add(Event ev, TxnId txn, Clock::time_point received = {});
  // A release of a parked aggregate (control message), in stream order: it takes effect when
  // the aggregate's earlier events are done. Settled like an event of `txn`.
  void add_release(const std::optional<std::string>& aggregate_type, const std::optional<std::string>& aggregate_id,
                   TxnId txn);
  // An aggregate with an unreplayed dead letter (loaded from the database at session start).
  void park(const std::optional<std::string>& aggregate_type, const std::optional<std::string>& aggregate_id);
  std::size_t parked() const { return parked_.size(); }
  // Publishes what may go now: per-key order, the window, suspects alone, retry due times. An
  // event whose sink is not connected or is blocked waits; with Ordering::Aggregate the events of
  // other sinks go on past it, with Ordering::Commit nothing passes it.
  void pump(Clock::time_point now, const std::vector<Sink*>& sinks);
  void pump(Clock::time_point now, Sink& sink) { pump(now, std::vector<Sink*>{&sink}); }
  // The broker's answers, by the ticket given to Sink::publish.
  void confirmed(std::uint64_t ticket, Clock::time_point now, bool duplicate = false);
  // `refusal`: the sink's words for it (BrokerOutcome::refusal), the dead letter's reason.
  void refused(std::uint64_t ticket, Refusal why, const std::string& reply, Clock::time_point now,
               const std::string& refusal = std::string());
  // The channel or connection of `sink` is gone with messages in flight. `pinnable`: the broker
  // closed it (a reply code that an event can cause), not a lost socket or a broker shutting down.
  void lost(std::size_t sink, bool pinnable, const std::string& reply);
  void lost(bool pinnable, const std::string& reply) { lost(kAllSinks, pinnable, reply); }
  // The session goes on without `sink` (other sinks still connected): its messages in flight
  // are published again, in their order, once it is back. Call after lost().
  void requeue(std::size_t sink);
  static constexpr std::size_t kAllSinks = static_cast<std::size_t>(-1);
  // A new session: forget the events (the slot sends them again), keep what was learned.
  void reset();
  // The slot is acknowledged up to `ack`: what was learned about events before it is no longer
  // needed (the slot will not send them again).
  void forget_before(Lsn ack);

  // What the loop must act on (pull, then act).
  std::vector<Settled> take_settled() { return std::exchange(settled_, {}); }
  // The same into a buffer the caller keeps: a fresh vector per loop turn grew by doubling, and
  // glibc consolidates its free lists before every allocation of that size (5 % of a drain).
  void take_settled(std::vector<Settled>& into) {
    into.clear();
    into.swap(settled_);
  }
  // Sinks whose publish() threw (a connection found broken while writing), with the reason:
  // their events stayed unpublished; the loop treats the sink as lost.
  std::vector<std::pair<std::size_t, std::string>> take_publish_failures() { return std::exchange(publish_failures_, {}); }
  std::vector<DeadLetter> take_dead_letters() { return std::exchange(dead_, {}); }
  // The loop wrote it to outbox.dead_letters: if the slot sends the event again (its transaction
  // not acknowledged yet), it is settled instead of written twice. Not before the write: a
  // session that ends first must let the event come again and be written then.
  void dead_letter_written(const DeadLetter& d);

  bool accepting() const { return held_ < o_.max_held && held_bytes_ < 2 * o_.max_in_flight_bytes; }
  bool idle() const { return held_ == 0; }
  std::size_t held() const { return held_; }
  std::size_t in_flight() const { return inflight_.size(); }
  std::optional<Clock::time_point> next_due() const;
  // True while events to the default exchange wait because it does not exist (a configuration
  // problem: they are not charged attempts and never become dead letters for it).
  bool default_exchange_missing() const { return default_missing_; }
  // The reply of the latest Refusal::DestinationMissing of `sink` while its events wait for
  // their destination ("" when none waits for it): not charged, never dead letters for it.
  const std::string& destination_missing(std::size_t sink) const;
  std::size_t remembered() const { return memory_.size(); }
  const DeliveryStats& stats() const { return stats_; }
  // The same counts for the events routed to one sink.
  DeliveryStats stats(std::size_t sink) const { return sink < sink_stats_.size() ? sink_stats_[sink] : DeliveryStats{}; }
  // Messages of one sink in flight (published, not answered).
  std::size_t in_flight(std::size_t sink) const { return sink < windows_.size() ? windows_[sink].count : 0; }

  static std::string ordering_key(const Event& ev) { return ordering_key(ev.aggregate_type, ev.aggregate_id); }
  static std::string ordering_key(const std::optional<std::string>& aggregate_type,
                                  const std::optional<std::string>& aggregate_id);
  // Ordering::None: a key of the event's own.
  static std::string unordered_key(std::uint64_t seq);

 private:
  struct Item {
    Event ev;
    TxnId txn = 0;
    std::uint64_t seq = 0;
    std::size_t bytes = 0;  // payload size, kept: the event may have moved into a dead letter
    int failures = 0;
    std::int64_t first_failed_us = 0;
    std::string last_reply;
    std::string last_refusal;  // the sink's words for the latest refusal
    bool solo = false;
    bool release = false;  // a release marker, not an event
    bool waited_destination = false;  // refused with DestinationMissing at least once
    std::size_t sink = 0;
    Clock::time_point published{};
    Clock::time_point received{};
  };
  struct KeyQueue {
    std::string key;
    std::deque<std::unique_ptr<Item>> items;  // this key's events in stream order; front() is next
  };
  struct Memory {
    int failures = 0;
    std::int64_t first_failed_us = 0;
    std::string last_reply;
    std::string last_refusal;
    bool solo = false;
    bool dead = false;  // written to outbox.dead_letters: settle it if the slot sends it again
  };
  using MemoryKey = std::pair<Lsn, std::string>;

  static Item& head(KeyQueue& k) { return *k.items.front(); }
  void advance(KeyQueue* k);  // the head is done: the next one (if any) becomes ready
  void dead_letter(KeyQueue* k, std::string reason);
  void remember(const Item& it);
  void enqueue(std::unique_ptr<Item> it, std::string key);
  static MemoryKey memory_key(const Event& ev) { return {ev.lsn, ev.id}; }
  DeliveryStats& sstats(std::size_t sink);
  bool uses_default_exchange(const Item& it) const {
    return it.sink == o_.default_exchange_sink && (!it.ev.exchange || *it.ev.exchange == o_.default_exchange);
  }

  DeliveryOptions o_;
  std::unordered_map<std::string, KeyQueue> keys_;  // node-based: KeyQueue* stay valid
  // Nodes of drained aggregates (empty queues), reused by the next new ones.
  static constexpr std::size_t kSpareKeys = 256;
  std::vector<std::unordered_map<std::string, KeyQueue>::node_type> spare_keys_;
  std::map<std::uint64_t, KeyQueue*> ready_;         // head seq -> key, published in this order
  std::set<std::uint64_t> unpublished_;              // seqs never published yet (Ordering::Commit)
  std::multimap<Clock::time_point, KeyQueue*> waiting_;  // retry due time -> key
  std::unordered_map<std::uint64_t, KeyQueue*> inflight_;  // ticket -> key whose head is out
  std::map<MemoryKey, Memory> memory_;
  std::unordered_set<std::string> parked_;
  std::vector<Settled> settled_;
  std::vector<DeadLetter> dead_;
  DeliveryStats stats_;
  std::vector<DeliveryStats> sink_stats_;
  std::vector<std::pair<std::size_t, std::string>> publish_failures_;
  std::uint64_t next_ticket_ = 1, next_seq_ = 0;
  std::size_t held_ = 0;
  std::uint64_t held_bytes_ = 0;
  // Each sink's confirm window (--max-in-flight, --max-in-flight-bytes): a slow or silent
  // broker fills its own, not the others'. A suspect (solo) goes alone within its sink.
  struct Window {
    std::size_t count = 0;
    std::uint64_t bytes = 0;
    bool solo = false;  // a suspect is in flight: nothing else goes to this sink
  };
  std::vector<Window> windows_;
  Window& window(std::size_t sink);
  void leave_window(const Item& it);  // it was answered or taken back
  bool default_missing_ = false;
  std::vector<std::string> destination_missing_;  // by sink
};

}  // namespace outbox
