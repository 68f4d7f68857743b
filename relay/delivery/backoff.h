// Capped exponential backoff with optional jitter, for publish retries and reconnects.
#pragma once
#include <chrono>
#include <cstdint>
#include <random>

namespace outbox {

struct BackoffPolicy {
  std::chrono::milliseconds base{100};
  std::chrono::milliseconds cap{30000};
  double jitter = 0.0;  // 0..1: the delay is drawn uniformly from [d*(1-jitter), d]
};

// Delay before attempt number `attempt` (1 = first retry): min(cap, base * 2^(attempt-1)),
// then jittered down by up to `jitter` of itself. Never negative, never above cap.
std::chrono::milliseconds backoff_delay(const BackoffPolicy& p, int attempt, std::mt19937_64& rng);

// Deterministic part only (no jitter).
std::chrono::milliseconds backoff_nominal(const BackoffPolicy& p, int attempt);

}  // namespace outbox
