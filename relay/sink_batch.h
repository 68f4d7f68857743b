// The loop's scope of batched sink writes (one pump, one read of the slot).
#pragma once
#include <vector>

#include "delivery/sink.h"

namespace outbox {

// The usable sinks batch their writes for a scope (one pump, one read of the slot), and the same
// ones (the list is copied) end the batch, also one that broke and was closed meanwhile: closing
// drops what a sink held, and ending a batch then has nothing to write.
class SinkBatch {
 public:
  explicit SinkBatch(const std::vector<Sink*>& live) : sinks_(live) {
    for (Sink* s : sinks_)
      if (s) s->batch(true);
  }
  ~SinkBatch() {
    for (Sink* s : sinks_)
      if (s) s->batch(false);
  }
  SinkBatch(const SinkBatch&) = delete;
  SinkBatch& operator=(const SinkBatch&) = delete;

 private:
  std::vector<Sink*> sinks_;
};

}  // namespace outbox
