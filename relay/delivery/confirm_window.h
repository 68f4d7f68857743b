// Publisher-confirm bookkeeping: delivery tags (counted from 1 per channel) to in-flight items.
// basic.ack / basic.nack may carry `multiple` (every tag up to and including it); basic.return
// arrives before the ack of the returned message and marks it failed. Header-only so the unit
// tests can drive it with plain values.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

namespace outbox {

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
    std::uint64_t tag = next_tag_++;
    entries_.emplace(tag, Entry{std::move(item), false});
    return tag;
  }

  // Marks the oldest unsettled entry matching `pred` as returned (unroutable). Returns the item
  // (to attach the broker's reply) or nullptr if none matched.
  T* mark_returned(const std::function<bool(const T&)>& pred) {
    for (auto& [tag, e] : entries_) {
      if (!e.returned && pred(e.item)) {
        e.returned = true;
        return &e.item;
      }
    }
    return nullptr;
  }

  // Applies basic.ack (nack=false) or basic.nack; appends the settled entries in tag order.
  void confirm(std::uint64_t tag, bool multiple, bool nack, std::vector<Settled>& out) {
    if (multiple) {
      auto end = entries_.upper_bound(tag);
      for (auto it = entries_.begin(); it != end;) {
        out.push_back(Settled{it->first, std::move(it->second.item), !nack && !it->second.returned});
        it = entries_.erase(it);
      }
    } else {
      auto it = entries_.find(tag);
      if (it == entries_.end()) return;  // unknown or duplicate tag: ignore
      out.push_back(Settled{it->first, std::move(it->second.item), !nack && !it->second.returned});
      entries_.erase(it);
    }
  }

  // A new channel numbers tags from 1 again; everything in flight is lost (returned to caller).
  std::vector<T> reset() {
    std::vector<T> lost;
    for (auto& [tag, e] : entries_) lost.push_back(std::move(e.item));
    entries_.clear();
    next_tag_ = 1;
    return lost;
  }

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::uint64_t next_tag() const { return next_tag_; }

 private:
  std::map<std::uint64_t, Entry> entries_;
  std::uint64_t next_tag_ = 1;
};

}  // namespace outbox
