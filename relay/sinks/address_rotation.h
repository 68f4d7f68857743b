// Which broker address to try next (pure, unit-tested). The relay is given one or more AMQP URLs
// (--amqp a,b,c: nodes of one cluster, or brokers behind the same queues). A connect tries them
// in order starting at the preferred one: the last one that worked, or the one after the last one
// that failed. So a relay stays on a healthy node across reconnects that were not the node's
// fault, and moves on, without retrying the same dead node first, when its node went away.
#pragma once
#include <cstddef>
#include <vector>

namespace outbox {

class AddressRotation {
 public:
  explicit AddressRotation(std::size_t count = 1);
  std::size_t size() const { return count_; }
  // The indexes to try for the next connect, each once: preferred(), preferred()+1, ... wrapping.
  std::vector<std::size_t> order() const;
  std::size_t preferred() const { return preferred_; }
  // A connection to `i` was established: it is tried first next time.
  void worked(std::size_t i);
  // Connecting to `i` failed, or its established connection was lost: if it was the preferred
  // one, the next address becomes preferred (another address that failed changes nothing: the
  // preferred one has not failed since it last worked).
  void failed(std::size_t i);

 private:
  std::size_t count_;
  std::size_t preferred_ = 0;
};

}  // namespace outbox
