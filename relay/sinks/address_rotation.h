// Which broker address to try next (pure, unit-tested). The relay is given one or more AMQP URLs
// (--amqp a,b,c: nodes of one cluster, or brokers behind the same queues). A connect tries them
// in order starting at the preferred one: the last one that worked, or the one after the last one
// that failed. So a relay stays on a healthy node across reconnects that were not the node's
// fault, and moves on, without retrying the same dead node first, when its node went away.
// Also the connect loop over that order that the RabbitMQ and Redis sinks share, and which of
// several failures decides what the relay does.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "delivery/sink.h"

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

// Of two failures, the kind that says more about what to fix: a certificate that does not
// verify, over a refused login, over a settings mistake, over a connection that failed.
SinkErrorKind most_telling(SinkErrorKind a, SinkErrorKind b);

// Tries the addresses in the rotation's order until connect_one(i) returns; returns that i (the
// rotation is told it worked). connect_one throws SinkError when address i fails; after_failure()
// then cleans up. A settings mistake (Config) is the same for every address and is thrown at
// once, as is the error of a single address; else the failure is logged ("<broker> node i of n:
// ...; trying the next one") and the rotation told, and when every address failed a SinkError of
// the most telling kind is thrown, with every node's reason.
std::size_t connect_in_turn(AddressRotation& rotation, const char* broker,
                            const std::function<void(std::size_t)>& connect_one,
                            const std::function<void()>& after_failure);

}  // namespace outbox
