#include "delivery/delivery.h"

#include <algorithm>

#include "delivery/backoff.h"
#include "delivery/timestamp.h"

namespace outbox {

namespace {

constexpr std::size_t kMaxMemory = 100000;  // remembered failing events (oldest LSN forgotten first)

// The dead letter's reason for an event the broker refused every time.
std::string refusal_reason(const std::string& refusal, int attempts) {
  return refusal + ", " + std::to_string(attempts) + (attempts == 1 ? " time" : " times");
}

}  // namespace

std::string Delivery::ordering_key(const std::optional<std::string>& aggregate_type,
                                   const std::optional<std::string>& aggregate_id) {
  if (!aggregate_id) return std::string();
  // Type and id, separated by a byte neither may hold in a UTF-8 database: ("a", "b\0c") and
  // ("a\0b", "c") stay apart. Events without an aggregate_id all share the empty key.
  std::string k = aggregate_type ? *aggregate_type : std::string();
  k += '\0';
  k += *aggregate_id;
  return k;
}

// A key no aggregate has (theirs hold a '\0' between type and id, or are empty): the event
// waits for nobody.
std::string Delivery::unordered_key(std::uint64_t seq) {
  std::string k(1, '\x01');
  k += std::to_string(seq);
  return k;
}

void Delivery::park(const std::optional<std::string>& aggregate_type, const std::optional<std::string>& aggregate_id) {
  parked_.insert(ordering_key(aggregate_type, aggregate_id));
}

void Delivery::add_release(const std::optional<std::string>& aggregate_type,
                           const std::optional<std::string>& aggregate_id, TxnId txn) {
  auto it = std::make_unique<Item>();
  it->release = true;
  it->txn = txn;
  it->seq = next_seq_++;
  enqueue(std::move(it), ordering_key(aggregate_type, aggregate_id));
}

void Delivery::add(Event ev, TxnId txn, Clock::time_point received) {
  auto it = std::make_unique<Item>();
  it->ev = std::move(ev);
  it->received = received;
  it->txn = txn;
  it->seq = next_seq_++;
  // memory_ is empty unless events failed: no key (a copy of the id) is built for nothing.
  auto m = memory_.empty() ? memory_.end() : memory_.find(memory_key(it->ev));
  if (m != memory_.end() && m->second.dead) {
    // Already a dead letter in an earlier session whose transaction was not acknowledged yet
    // (a later transaction's event can become a dead letter before an earlier one settles).
    settled_.push_back(Settled{txn});
    return;
  }
  if (m != memory_.end()) {
    it->failures = m->second.failures;
    it->first_failed_us = m->second.first_failed_us;
    it->last_reply = m->second.last_reply;
    it->last_refusal = m->second.last_refusal;
    it->solo = m->second.solo;
  }
  it->bytes = it->ev.payload.size();
  if (o_.route) it->sink = o_.route(it->ev);
  std::string key = o_.ordering == Ordering::None ? unordered_key(it->seq) : ordering_key(it->ev);
  enqueue(std::move(it), std::move(key));
}

void Delivery::enqueue(std::unique_ptr<Item> it, std::string key) {
  if (o_.ordering == Ordering::Commit) unpublished_.insert(it->seq);
  ++held_;
  held_bytes_ += it->bytes;
  auto kit = keys_.find(key);
  if (kit == keys_.end()) {
    if (spare_keys_.empty()) {
      kit = keys_.try_emplace(key).first;
    } else {
      // A node a drained aggregate left, with its queue's buffers: with many aggregates each
      // event is a new one, and a fresh node and queue were three allocations per event.
      auto node = std::move(spare_keys_.back());
      spare_keys_.pop_back();
      node.key() = key;
      kit = keys_.insert(std::move(node)).position;
    }
    kit->second.key = std::move(key);
  }
  KeyQueue& k = kit->second;
  k.items.push_back(std::move(it));
  if (k.items.size() == 1) ready_.emplace(head(k).seq, &k);
}

void Delivery::advance(KeyQueue* k) {
  --held_;
  held_bytes_ -= std::min<std::uint64_t>(held_bytes_, head(*k).bytes);
  k->items.pop_front();
  if (k->items.empty()) {
    auto node = keys_.extract(k->key);  // k is out of keys_ now
    if (spare_keys_.size() < kSpareKeys) spare_keys_.push_back(std::move(node));
    return;
  }
  ready_.emplace(head(*k).seq, k);
}

void Delivery::dead_letter(KeyQueue* k, std::string reason) {
  Item& it = head(*k);
  unpublished_.erase(it.seq);
  DeadLetter d;
  d.reason = std::move(reason);
  d.attempts = it.failures;
  d.first_failed_us = it.first_failed_us ? it.first_failed_us : wall_us();
  d.last_failed_us = wall_us();
  d.broker_reply = it.last_reply;
  d.txn = it.txn;
  if (o_.on_dead_letter == OnDeadLetter::Park) parked_.insert(k->key);
  remember(it);  // its failures, so that if the write is lost with the session it is a dead letter again at once
  d.ev = std::move(it.ev);
  dead_.push_back(std::move(d));
  ++stats_.dead_letters;
  advance(k);
}

void Delivery::remember(const Item& it) {
  Memory& m = memory_[memory_key(it.ev)];
  m.failures = it.failures;
  m.first_failed_us = it.first_failed_us;
  m.last_reply = it.last_reply;
  m.last_refusal = it.last_refusal;
  m.solo = it.solo;
  while (memory_.size() > kMaxMemory) memory_.erase(memory_.begin());
}

void Delivery::pump(Clock::time_point now, const std::vector<Sink*>& sinks) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    KeyQueue* k = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    ready_.emplace(head(*k).seq, k);
  }
  // Events done here (settled, dead letters) make their key's next event ready with a higher
  // seq: the walk goes on from the seq just handled, so it sees that one too, and skips nothing
  // that waits for its sink.
  // Sinks that take nothing more this turn (down, blocked, window full, publish() threw): once
  // all are, the walk stops.
  std::vector<bool> closed(sinks.size(), false);
  std::size_t n_closed = 0;
  auto close = [&](std::size_t sink) {
    if (sink < closed.size() && !closed[sink]) {
      closed[sink] = true;
      ++n_closed;
    }
  };
  auto rit = ready_.begin();
  while (rit != ready_.end() && (sinks.empty() || n_closed < sinks.size())) {
    const std::uint64_t seq = rit->first;
    KeyQueue* k = rit->second;
    Item& it = head(*k);
    auto done = [&] { rit = ready_.upper_bound(seq); };
    if (it.release) {
      parked_.erase(k->key);
      unpublished_.erase(it.seq);
      settled_.push_back(Settled{it.txn});
      ready_.erase(rit);
      advance(k);
      done();
      continue;
    }
    if (parked_.count(k->key)) {
      ready_.erase(rit);
      dead_letter(k, "parked: an earlier event of this aggregate is a dead letter (--on-dead-letter=park); "
                     "SELECT outbox.release_parked(aggregate_type, aggregate_id) re-emits them in order");
      done();
      continue;
    }
    if (it.failures >= o_.max_attempts) {
      ready_.erase(rit);
      dead_letter(k, it.last_refusal.empty()
                         ? "failed " + std::to_string(it.failures) + " times: " + it.last_reply
                         : refusal_reason(it.last_refusal, it.failures));
      done();
      continue;
    }
    if (!it.ev.invalid.empty()) {
      ready_.erase(rit);
      dead_letter(k, "cannot be published: " + it.ev.invalid);
      done();
      continue;
    }
    if (o_.ordering == Ordering::Commit && !unpublished_.empty() && it.seq > *unpublished_.begin())
      break;  // an earlier event waits for its key: first attempts go in commit order
    Sink* sink = it.sink < sinks.size() ? sinks[it.sink] : nullptr;
    Window& w = window(it.sink);
    // A suspect goes alone: it waits for its sink's window to empty, and nothing passes it
    // there meanwhile, or the window might never empty.
    if (!sink || !sink->connected() || sink->blocked() || sink->broken() || closed[it.sink] || w.solo ||
        (it.solo && w.count > 0) || w.count >= o_.max_in_flight || (w.count > 0 && w.bytes >= o_.max_in_flight_bytes)) {
      close(it.sink);
      ++rit;  // waits for its sink; with Ordering::Commit the check above stops the events behind it
      continue;
    }
    std::uint64_t ticket = next_ticket_;
    std::optional<std::string> err;
    try {
      err = sink->publish(ticket, it.ev);
    } catch (const SinkError& e) {
      // The connection broke while writing: not this event's fault, and its fate is that of the
      // messages in flight. It stays first in its key; the loop deals with the sink.
      close(it.sink);
      publish_failures_.emplace_back(it.sink, e.what());
      ++rit;
      continue;
    }
    if (err) {
      ready_.erase(rit);
      dead_letter(k, std::string("cannot be published to ") + sink->display_name() + ": " + *err);
      done();
      continue;
    }
    ++next_ticket_;
    rit = ready_.erase(rit);
    unpublished_.erase(it.seq);
    inflight_.emplace(ticket, k);
    ++w.count;
    w.bytes += it.bytes;
    it.published = now;
    if (it.solo) w.solo = true;
    ++stats_.published;
    ++sstats(it.sink).published;
  }
}

DeliveryStats& Delivery::sstats(std::size_t sink) {
  if (sink >= sink_stats_.size()) sink_stats_.resize(sink + 1);
  return sink_stats_[sink];
}

Delivery::Window& Delivery::window(std::size_t sink) {
  if (sink >= windows_.size()) windows_.resize(sink + 1);
  return windows_[sink];
}

void Delivery::leave_window(const Item& it) {
  Window& w = window(it.sink);
  if (w.count) --w.count;
  w.bytes -= std::min<std::uint64_t>(w.bytes, it.bytes);
  if (it.solo) w.solo = false;
}

void Delivery::confirmed(std::uint64_t ticket, Clock::time_point now, bool duplicate) {
  auto f = inflight_.find(ticket);
  if (f == inflight_.end()) return;  // from before a reset, or a duplicate
  KeyQueue* k = f->second;
  inflight_.erase(f);
  Item& it = head(*k);
  leave_window(it);
  if (uses_default_exchange(it)) default_missing_ = false;
  // One event that waited for its destination got through: it exists again.
  if (it.waited_destination && it.sink < destination_missing_.size()) destination_missing_[it.sink].clear();
  Settled s{it.txn, true, now - it.published, {}};
  if (it.received != Clock::time_point{} && it.published > it.received) s.held = it.published - it.received;
  settled_.push_back(s);
  if (!memory_.empty()) memory_.erase(memory_key(it.ev));
  ++stats_.confirmed;
  ++sstats(it.sink).confirmed;
  if (duplicate) {
    ++stats_.duplicates;
    ++sstats(it.sink).duplicates;
  }
  advance(k);
}

void Delivery::refused(std::uint64_t ticket, Refusal why, const std::string& reply, Clock::time_point now,
                       const std::string& refusal) {
  auto f = inflight_.find(ticket);
  if (f == inflight_.end()) return;
  KeyQueue* k = f->second;
  inflight_.erase(f);
  Item& it = head(*k);
  leave_window(it);
  for (DeliveryStats* st : {&stats_, &sstats(it.sink)}) switch (why) {
      case Refusal::Returned: ++st->returned; break;
      case Refusal::Nacked: ++st->nacked; break;
      case Refusal::ExchangeMissing: ++st->exchange_missing; break;
      case Refusal::DestinationMissing: break;
    }
  it.last_reply = reply;
  // Each broker names its refusals in its own words (a sink without words: the kind and the reply).
  if (!refusal.empty()) it.last_refusal = refusal;
  else it.last_refusal = std::string(why == Refusal::Returned ? "returned" : why == Refusal::Nacked ? "nacked"
                                                                                                   : "no destination") +
                         ": " + reply;
  if (why == Refusal::ExchangeMissing && uses_default_exchange(it)) {
    // Not this event's fault: every event without an exchange would fail the same way. Wait for
    // the exchange (the loop reports it) instead of turning the whole stream into dead letters.
    default_missing_ = true;
    waiting_.emplace(now + o_.retry_max, k);
    return;
  }
  if (why == Refusal::DestinationMissing) {
    // The sink's settings are wrong now (a stream deleted), not the event: it waits the same way.
    if (it.sink >= destination_missing_.size()) destination_missing_.resize(it.sink + 1);
    destination_missing_[it.sink] = reply;
    it.waited_destination = true;
    waiting_.emplace(now + o_.retry_max, k);
    return;
  }
  ++it.failures;
  if (!it.first_failed_us) it.first_failed_us = wall_us();
  if (it.failures >= o_.max_attempts) {
    dead_letter(k, refusal_reason(it.last_refusal, it.failures));
    return;
  }
  remember(it);
  ++stats_.retries;
  ++sstats(it.sink).retries;
  BackoffPolicy p{o_.retry_base, o_.retry_max, 0.0};
  waiting_.emplace(now + backoff_nominal(p, it.failures), k);
}

void Delivery::lost(std::size_t sink, bool pinnable, const std::string& reply) {
  std::vector<Item*> out;
  for (auto& [ticket, k] : inflight_) {
    Item& it = head(*k);
    if (sink == kAllSinks || it.sink == sink) out.push_back(&it);
  }
  if (out.empty()) return;
  if (pinnable && out.size() == 1) {
    Item& it = *out.front();
    ++it.failures;
    if (!it.first_failed_us) it.first_failed_us = wall_us();
    it.last_reply = reply;
    it.solo = true;  // it stays alone until it succeeds or becomes a dead letter
    remember(it);
    return;
  }
  if (!pinnable) return;  // a lost socket or a broker shutting down is no event's fault
  for (Item* it : out) {
    if (!it->solo) {
      ++stats_.suspects;
      ++sstats(it->sink).suspects;
    }
    it->solo = true;
    if (it->last_reply.empty()) it->last_reply = reply;
    remember(*it);
  }
}

void Delivery::requeue(std::size_t sink) {
  for (auto f = inflight_.begin(); f != inflight_.end();) {
    KeyQueue* k = f->second;
    Item& it = head(*k);
    if (it.sink != sink) {
      ++f;
      continue;
    }
    leave_window(it);
    ready_.emplace(it.seq, k);  // its key's head again: it goes first when the sink is back
    f = inflight_.erase(f);
  }
}

const std::string& Delivery::destination_missing(std::size_t sink) const {
  static const std::string none;
  return sink < destination_missing_.size() ? destination_missing_[sink] : none;
}

void Delivery::reset() {
  default_missing_ = false;  // known again after the reconnect's checks
  destination_missing_.clear();
  keys_.clear();
  ready_.clear();
  unpublished_.clear();
  parked_.clear();  // reloaded from the database with the next session
  waiting_.clear();
  inflight_.clear();
  settled_.clear();
  dead_.clear();
  publish_failures_.clear();
  held_ = 0;
  held_bytes_ = 0;
  windows_.clear();
}

void Delivery::dead_letter_written(const DeadLetter& d) {
  Memory& m = memory_[memory_key(d.ev)];
  m = Memory{};
  m.dead = true;
  while (memory_.size() > kMaxMemory) memory_.erase(memory_.begin());
}

void Delivery::forget_before(Lsn ack) {
  while (!memory_.empty() && memory_.begin()->first.first < ack) memory_.erase(memory_.begin());
}

std::optional<Delivery::Clock::time_point> Delivery::next_due() const {
  if (waiting_.empty()) return std::nullopt;
  return waiting_.begin()->first;
}

}  // namespace outbox
