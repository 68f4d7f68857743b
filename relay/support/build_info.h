// What this build is: the product version (the top-level VERSION file, via CMake), the commit it
// was built from (baked at build time), and the outbox extension versions whose events it reads.
#pragma once

#include <string>

namespace outbox {

// "0.4.0": the product version; the packages carry it too.
extern const char* const kRelayVersion;
// The git commit (12 hex digits, "+dirty" when the work tree had changes), or "unknown" when built
// from a tree without .git whose COMMIT file git archive did not fill in.
extern const char* const kBuildCommit;

// The extension versions this relay reads: from 0.2 (slot recovery, message keys) up to the
// MAJOR.MINOR of its own version. A newer extension may write a wire format this relay misreads.
extern const char* const kMinExtensionVersion;
extern const char* const kMaxExtensionVersion;

// "" when an extension of `version` is one this relay reads, else why not and the fix, naming
// both versions.
std::string unsupported_extension(const std::string& version);

}  // namespace outbox
