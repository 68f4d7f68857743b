#include "sinks/address_rotation.h"

#include <string>

#include <spdlog/spdlog.h>

namespace outbox {

AddressRotation::AddressRotation(std::size_t count) : count_(count == 0 ? 1 : count) {}

std::vector<std::size_t> AddressRotation::order() const {
  std::vector<std::size_t> out;
  out.reserve(count_);
  for (std::size_t k = 0; k < count_; ++k) out.push_back((preferred_ + k) % count_);
  return out;
}

void AddressRotation::worked(std::size_t i) {
  if (i < count_) preferred_ = i;
}

void AddressRotation::failed(std::size_t i) {
  if (i == preferred_) preferred_ = (preferred_ + 1) % count_;
}

namespace {

int rank(SinkErrorKind k) {
  switch (k) {
    case SinkErrorKind::Tls: return 3;
    case SinkErrorKind::Auth: return 2;
    case SinkErrorKind::Config: return 1;
    case SinkErrorKind::Retryable: return 0;
  }
  return 0;
}

}  // namespace

SinkErrorKind most_telling(SinkErrorKind a, SinkErrorKind b) { return rank(b) > rank(a) ? b : a; }

std::size_t connect_in_turn(AddressRotation& rotation, const char* broker,
                            const std::function<void(std::size_t)>& connect_one,
                            const std::function<void()>& after_failure) {
  const std::size_t n = rotation.size();
  std::vector<SinkError> failures;
  for (std::size_t i : rotation.order()) {
    try {
      connect_one(i);
      rotation.worked(i);
      return i;
    } catch (const SinkError& e) {
      after_failure();
      if (e.kind == SinkErrorKind::Config || n == 1) throw;
      rotation.failed(i);
      spdlog::warn("{} node {} of {}: {}; trying the next one", broker, i + 1, n, e.what());
      failures.push_back(e);
    }
  }
  // The most telling kind decides what the relay does (a certificate that does not verify stops
  // the start, refused logins are logged as such); the text has them all.
  SinkErrorKind kind = SinkErrorKind::Retryable;
  for (const auto& f : failures) kind = most_telling(kind, f.kind);
  std::string msg = std::string("no ") + broker + " node of " + std::to_string(n) + " accepted the connection:";
  for (std::size_t k = 0; k < failures.size(); ++k) msg += (k ? "; " : " ") + std::string(failures[k].what());
  throw SinkError(msg, kind);
}

}  // namespace outbox
