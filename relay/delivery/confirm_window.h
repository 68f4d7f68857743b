// Publisher-confirm bookkeeping: delivery tags (counted from 1 per channel) to in-flight items.
// basic.ack / basic.nack may carry `multiple` (every tag up to and including it); basic.return
// arrives before the ack of the returned message and marks it failed. Header-only so the unit
// tests can drive it with plain values.
#pragma once
#include <cstdint>
#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "delivery/numbered_queue.h"

namespace outbox {

// Tags only grow: the window is a NumberedQueue by tag.
template <typename T>
class ConfirmWindow {
 public:
  struct Entry {
    T item;
    bool returned = false;
  };
  struct Settled {
    std::uint64_t tag;
    T item;
    bool ok;  // false: nacked or returned
  };

  // Registers the next publish; returns its delivery tag.
  std::uint64_t add(T item) {
    slots_.put(next_tag_, Entry{std::move(item), false});
    return next_tag_++;
  }

  // Marks the oldest unsettled entry matching `pred` as returned (unroutable). Returns the item
  // (to attach the broker's reply) or nullptr if none matched.
  T* mark_returned(const std::function<bool(const T&)>& pred) {
    T* found = nullptr;
    slots_.each(slots_.first(), slots_.end(), [&](std::uint64_t, Entry& e) {
      if (e.returned || !pred(e.item)) return true;
      e.returned = true;
      found = &e.item;
      return false;
    });
    return found;
  }

  // Applies basic.ack (nack=false) or basic.nack; appends the settled entries in tag order.
  void confirm(std::uint64_t tag, bool multiple, bool nack, std::vector<Settled>& out) {
    if (slots_.empty() || tag < slots_.first()) return;  // unknown or duplicate tag: ignore
    std::uint64_t last = std::min<std::uint64_t>(tag, slots_.end() - 1);
    if (!multiple && last != tag) return;
    for (std::uint64_t t = multiple ? slots_.first() : tag; t <= last; ++t) {
      if (!slots_.find(t)) continue;
      Entry e = slots_.take(t);
      out.push_back(Settled{t, std::move(e.item), !nack && !e.returned});
    }
  }

  // A new channel numbers tags from 1 again; everything in flight is lost (returned to caller).
  std::vector<T> reset() {
    std::vector<T> lost;
    slots_.each(slots_.first(), slots_.end(), [&](std::uint64_t, Entry& e) {
      lost.push_back(std::move(e.item));
      return true;
    });
    slots_.clear();
    next_tag_ = 1;
    return lost;
  }

  std::size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  std::uint64_t next_tag() const { return next_tag_; }

 private:
  NumberedQueue<Entry> slots_;
  std::uint64_t next_tag_ = 1;
};

}  // namespace outbox
