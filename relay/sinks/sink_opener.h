// Reconnects a sink that is down on a thread of its own. A broker that accepts the TCP connection
// and then says nothing (stopped, partitioned behind a proxy, swapping) holds open() for the
// connect timeout, 10 s per address by default; on the loop, that would stop the other sinks,
// the answers to PostgreSQL's keepalives and /healthz's heartbeat with it. While an open is under
// way the thread owns the sink: the loop treats it as down and does not touch it until take().
#pragma once
#include <atomic>
#include <exception>
#include <thread>

namespace outbox {

class Sink;

class SinkOpener {
 public:
  SinkOpener() = default;
  SinkOpener(const SinkOpener&) = delete;
  SinkOpener& operator=(const SinkOpener&) = delete;
  ~SinkOpener() { abandon(); }

  // Runs s.open(started) on a thread; one byte is written to wake_fd when it has ended, so that
  // a loop waiting in poll() takes the outcome at once.
  void start(Sink& s, bool started, int wake_fd);
  bool running() const { return thread_.joinable(); }
  bool finished() const { return running() && finished_.load(std::memory_order_acquire); }
  // After finished(): the sink is the caller's again. Null when it connected, else what open() threw.
  std::exception_ptr take();
  // Waits for an open under way, if any, and drops its outcome: the session is ending.
  void abandon();

 private:
  std::thread thread_;
  std::atomic<bool> finished_{false};
  std::exception_ptr error_;
};

}  // namespace outbox
