#include "sinks/address_rotation.h"

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

}  // namespace outbox
