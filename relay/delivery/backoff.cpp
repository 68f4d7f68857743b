#include "delivery/backoff.h"

#include <algorithm>

namespace outbox {

std::chrono::milliseconds backoff_nominal(const BackoffPolicy& p, int attempt) {
  if (attempt < 1) attempt = 1;
  std::int64_t base = std::max<std::int64_t>(0, p.base.count());
  std::int64_t cap = std::max<std::int64_t>(0, p.cap.count());
  std::int64_t d = base;
  for (int i = 1; i < attempt && d < cap; ++i) d *= 2;
  return std::chrono::milliseconds(std::min(d, cap));
}

std::chrono::milliseconds backoff_delay(const BackoffPolicy& p, int attempt, std::mt19937_64& rng) {
  auto nominal = backoff_nominal(p, attempt).count();
  double j = std::clamp(p.jitter, 0.0, 1.0);
  if (j == 0.0 || nominal == 0) return std::chrono::milliseconds(nominal);
  std::uniform_real_distribution<double> dist(static_cast<double>(nominal) * (1.0 - j), static_cast<double>(nominal));
  return std::chrono::milliseconds(static_cast<std::int64_t>(dist(rng)));
}

}  // namespace outbox
