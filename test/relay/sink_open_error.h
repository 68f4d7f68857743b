// For the sinks' tests: what Sink::open() threw (nullopt when it connected), so that a test
// states the expected kind and text instead of repeating try/FAIL/catch.
#pragma once
#include <optional>

#include "sink.h"

namespace outbox::test {

inline std::optional<SinkError> open_error(Sink& s, bool started = false) {
  try {
    s.open(started);
  } catch (const SinkError& e) {
    return e;
  }
  return std::nullopt;
}

}  // namespace outbox::test
