// What the three bare publishers share besides their broker: the optional paced mode, in which a
// publisher sends RATE messages per second for SECONDS, each stamped with the time it was sent
// as x-outbox-commit-time, so that the consumers bench/sinks uses for the relay measure the
// broker's own publish-to-delivery latency the same way (the relay's tail over the broker's);
// and the process's CPU per message (user + sys of all its threads, the client library's too).
#pragma once
#include <sys/resource.h>
#include <sys/time.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace bench {

// user + sys of the whole process so far, in microseconds per message.
inline double cpu_us_per_message(long messages) {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  double us = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
              static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  return messages > 0 ? us / static_cast<double>(messages) : 0.0;
}

// Now in PostgreSQL's text form of a timestamptz in UTC ("2026-12-06 20:18:07.859123+00"),
// which is what x-outbox-commit-time holds and the consumers' latency script reads.
inline std::string timestamp_now() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm t{};
  ::gmtime_r(&tv.tv_sec, &t);
  char b[64];
  std::snprintf(b, sizeof b, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(tv.tv_usec));
  return b;
}

// The schedule of the paced mode: message i is due at start + i / rate.
struct Pacing {
  long rate = 0;  // 0: not paced (as fast as the window allows)
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool on() const { return rate > 0; }
  std::chrono::steady_clock::time_point due(long i) const {
    return start + std::chrono::microseconds(rate > 0 ? i * 1000000 / rate : 0);
  }
};

// The printed result: "<count> <seconds> <rate> <cpu us per message>".
inline void print_result(long count, std::chrono::steady_clock::time_point t0) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%ld %.3f %.0f %.2f\n", count, secs, count / secs, cpu_us_per_message(count));
}

}  // namespace bench
