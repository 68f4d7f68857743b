#include "support/build_info.h"

#include <string>

#include <gtest/gtest.h>

namespace outbox {
namespace {

TEST(BuildInfo, ReadsTheExtensionVersionsFromTheOldestSupportedToItsOwnRelease) {
  EXPECT_EQ(unsupported_extension("0.2"), "");
  EXPECT_EQ(unsupported_extension(kMaxExtensionVersion), "");
  // The newest extension is MAJOR.MINOR of the product version.
  std::string own = kRelayVersion;
  EXPECT_EQ(own.rfind(std::string(kMaxExtensionVersion) + ".", 0), 0u) << own << " vs " << kMaxExtensionVersion;
}

TEST(BuildInfo, AnOlderExtensionNamesBothVersionsAndTheUpdate) {
  std::string why = unsupported_extension("0.1");
  EXPECT_NE(why.find("is version 0.1, outbox-relay " + std::string(kRelayVersion) + " reads extension versions 0.2 to " +
                     kMaxExtensionVersion),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("ALTER EXTENSION outbox UPDATE"), std::string::npos) << why;
}

TEST(BuildInfo, ANewerExtensionIsRefusedNamingBothVersions) {
  // 0.10 is newer than 0.9: compared number by number, not as text.
  std::string newer = std::string(kMaxExtensionVersion) + "1";
  std::string why = unsupported_extension("99.0");
  EXPECT_NE(why.find("is version 99.0, newer than this relay: outbox-relay " + std::string(kRelayVersion)),
            std::string::npos)
      << why;
  EXPECT_NE(unsupported_extension(newer), "") << newer;
  EXPECT_EQ(unsupported_extension("0.2.0"), "");
}

TEST(BuildInfo, TheCommitIsKnownOrSaysUnknown) {
  std::string c = kBuildCommit;
  EXPECT_FALSE(c.empty());
  EXPECT_TRUE(c == "unknown" || c.find_first_not_of("0123456789abcdef+dirty") == std::string::npos) << c;
}

}  // namespace
}  // namespace outbox
