#include "support/build_info.h"

#include <cstdlib>
#include <sstream>

#ifndef OUTBOX_VERSION
#error "OUTBOX_VERSION (from the top-level VERSION file) is set by CMakeLists.txt"
#endif
#ifndef OUTBOX_EXTENSION_VERSION
#error "OUTBOX_EXTENSION_VERSION (MAJOR.MINOR of VERSION) is set by CMakeLists.txt"
#endif

namespace outbox {

const char* const kRelayVersion = OUTBOX_VERSION;
const char* const kMinExtensionVersion = "0.2";
const char* const kMaxExtensionVersion = OUTBOX_EXTENSION_VERSION;

namespace {

// Numeric, component by component ("0.10" > "0.9"); a missing component counts as 0.
bool version_less(const std::string& a, const std::string& b) {
  std::stringstream x(a), y(b);
  std::string p, q;
  while (true) {
    bool more_a = static_cast<bool>(std::getline(x, p, '.')), more_b = static_cast<bool>(std::getline(y, q, '.'));
    if (!more_a && !more_b) return false;
    long long u = more_a ? std::atoll(p.c_str()) : 0, v = more_b ? std::atoll(q.c_str()) : 0;
    if (u != v) return u < v;
  }
}

}  // namespace

std::string unsupported_extension(const std::string& version) {
  std::string range = std::string("outbox-relay ") + kRelayVersion + " reads extension versions " +
                      kMinExtensionVersion + " to " + kMaxExtensionVersion;
  if (version_less(version, kMinExtensionVersion))
    return "is version " + version + ", " + range +
           " -- fix: ALTER EXTENSION outbox UPDATE in that database (as a superuser)";
  if (version_less(kMaxExtensionVersion, version))
    return "is version " + version + ", newer than this relay: " + range +
           " (a newer extension may write events this relay would misread) -- fix: install the outbox-relay of the "
           "same release as the extension";
  return "";
}

}  // namespace outbox
