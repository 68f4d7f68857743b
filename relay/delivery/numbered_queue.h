// Items keyed by a number that only grows (a delivery tag, an ack tracker unit), kept in a deque
// indexed by number - base: no tree node per event, O(1) lookup. An item taken out of the middle
// (an ack out of order) leaves a hole until the front passes it; numbers skipped by put() are
// holes from the start. The confirm window and the ack tracker's unsettled units are both this.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <utility>

namespace outbox {

template <typename T>
class NumberedQueue {
 public:
  // Puts `item` at number n, which must be above every number put since the queue was empty.
  void put(std::uint64_t n, T item) {
    if (slots_.empty()) {
      base_ = n;
    } else if (n < end()) {
      throw std::logic_error("numbered queue: numbers must grow");
    }
    while (end() < n) slots_.push_back(Slot{});
    slots_.push_back(Slot{std::move(item), true});
    ++live_;
  }

  // The item at n, or nullptr when there is none (never put, taken, or passed).
  T* find(std::uint64_t n) {
    if (n < base_ || n >= end()) return nullptr;
    Slot& s = slots_[static_cast<std::size_t>(n - base_)];
    return s.live ? &s.item : nullptr;
  }

  // Takes the item at n out (find(n) must have found it) and drops the holes at the front.
  T take(std::uint64_t n) {
    if (!find(n)) throw std::logic_error("numbered queue: take of a number it does not hold");
    Slot& s = slots_[static_cast<std::size_t>(n - base_)];
    T item = std::move(s.item);
    s.live = false;
    --live_;
    while (!slots_.empty() && !slots_.front().live) {
      slots_.pop_front();
      ++base_;
    }
    return item;
  }

  // Calls f(n, item) for the items numbered [from, to) in order until f returns false.
  template <typename F>
  void each(std::uint64_t from, std::uint64_t to, F&& f) {
    each_of(*this, from, to, f);
  }
  template <typename F>
  void each(std::uint64_t from, std::uint64_t to, F&& f) const {
    each_of(*this, from, to, f);
  }

  void clear() {
    slots_.clear();
    live_ = 0;
  }
  std::size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  std::uint64_t first() const { return base_; }               // the lowest number still held
  std::uint64_t end() const { return base_ + slots_.size(); }  // above the highest

 private:
  struct Slot {
    T item{};
    bool live = false;
  };
  template <typename Self, typename F>
  static void each_of(Self& self, std::uint64_t from, std::uint64_t to, F& f) {
    for (std::uint64_t n = from < self.base_ ? self.base_ : from; n < to && n < self.end(); ++n) {
      auto& s = self.slots_[static_cast<std::size_t>(n - self.base_)];
      if (s.live && !f(n, s.item)) return;
    }
  }

  std::deque<Slot> slots_;  // numbers base_, base_ + 1, ...
  std::uint64_t base_ = 0;
  std::size_t live_ = 0;
};

}  // namespace outbox
