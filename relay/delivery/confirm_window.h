// Publisher-confirm bookkeeping: delivery tags (counted from 1 per channel) to in-flight items.
// basic.ack / basic.nack may carry `multiple` (every tag up to and including it); basic.return
// arrives before the ack of the returned message and marks it failed. Header-only so the unit
// tests can drive it with plain values.
#pragma once
#include <cstdint>
#include <algorithm>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

namespace outbox {

// Tags only grow, so the window is a deque indexed by tag - base_: no tree node per publish.
// Settled entries in the middle (a single ack out of order) stay as holes until the front
// passes them.
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
    if (slots_.empty()) base_ = next_tag_;
    slots_.push_back(Slot{Entry{std::move(item), false}, true});
    ++live_;
    return next_tag_++;
  }

  // Marks the oldest unsettled entry matching `pred` as returned (unroutable). Returns the item
  // (to attach the broker's reply) or nullptr if none matched.
  T* mark_returned(const std::function<bool(const T&)>& pred) {
    for (Slot& s : slots_) {
      if (s.live && !s.e.returned && pred(s.e.item)) {
        s.e.returned = true;
        return &s.e.item;
      }
    }
    return nullptr;
  }

  // Applies basic.ack (nack=false) or basic.nack; appends the settled entries in tag order.
  void confirm(std::uint64_t tag, bool multiple, bool nack, std::vector<Settled>& out) {
    if (tag < base_ || slots_.empty()) return;  // unknown or duplicate tag: ignore
    std::uint64_t last = std::min<std::uint64_t>(tag, base_ + slots_.size() - 1);
    if (!multiple && last != tag) return;
    for (std::uint64_t t = multiple ? base_ : tag; t <= last; ++t) {
      Slot& s = slots_[static_cast<std::size_t>(t - base_)];
      if (!s.live) continue;
      out.push_back(Settled{t, std::move(s.e.item), !nack && !s.e.returned});
      s.live = false;
      --live_;
    }
    while (!slots_.empty() && !slots_.front().live) {
      slots_.pop_front();
      ++base_;
    }
  }

  // A new channel numbers tags from 1 again; everything in flight is lost (returned to caller).
  std::vector<T> reset() {
    std::vector<T> lost;
    for (Slot& s : slots_)
      if (s.live) lost.push_back(std::move(s.e.item));
    slots_.clear();
    live_ = 0;
    next_tag_ = 1;
    base_ = 1;
    return lost;
  }

  std::size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  std::uint64_t next_tag() const { return next_tag_; }

 private:
  struct Slot {
    Entry e;
    bool live = false;
  };
  std::deque<Slot> slots_;  // tags base_, base_ + 1, ...
  std::uint64_t base_ = 1;
  std::size_t live_ = 0;
  std::uint64_t next_tag_ = 1;
};

}  // namespace outbox
