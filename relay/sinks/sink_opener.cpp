#include "sinks/sink_opener.h"

#include <unistd.h>

#include "delivery/sink.h"

namespace outbox {

void SinkOpener::start(Sink& s, bool started, int wake_fd) {
  abandon();
  finished_.store(false);
  error_ = nullptr;
  thread_ = std::thread([this, &s, started, wake_fd] {
    try {
      s.open(started);
    } catch (...) {
      error_ = std::current_exception();
    }
    finished_.store(true, std::memory_order_release);
    char c = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &c, 1);  // non-blocking pipe: full means awake already
  });
}

std::exception_ptr SinkOpener::take() {
  if (thread_.joinable()) thread_.join();
  std::exception_ptr e = error_;
  error_ = nullptr;
  return e;
}

void SinkOpener::abandon() {
  if (thread_.joinable()) thread_.join();
  error_ = nullptr;
}

}  // namespace outbox
