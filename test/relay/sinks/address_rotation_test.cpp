// AddressRotation: the order in which the relay tries its --amqp addresses; connect_in_turn, the
// loop over that order the RabbitMQ and Redis sinks share, and what it throws when all fail.
#include "sinks/address_rotation.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

using outbox::AddressRotation;
using outbox::SinkError;
using outbox::SinkErrorKind;
using V = std::vector<std::size_t>;

TEST(AddressRotation, StartsWithTheFirstAndTriesEachOnce) {
  AddressRotation r(3);
  EXPECT_EQ(r.order(), (V{0, 1, 2}));
}

TEST(AddressRotation, OneAddressIsAlwaysTheOne) {
  AddressRotation r(1);
  r.failed(0);
  EXPECT_EQ(r.order(), (V{0}));
  AddressRotation none(0);  // treated as one address, never an empty order
  EXPECT_EQ(none.order(), (V{0}));
}

TEST(AddressRotation, AFailedAddressMovesTheStartToTheNextOne) {
  AddressRotation r(3);
  r.failed(0);
  EXPECT_EQ(r.order(), (V{1, 2, 0}));
  r.failed(1);
  EXPECT_EQ(r.order(), (V{2, 0, 1}));
  r.failed(2);  // wraps around
  EXPECT_EQ(r.order(), (V{0, 1, 2}));
}

TEST(AddressRotation, StaysOnTheAddressThatWorked) {
  AddressRotation r(3);
  r.failed(0);  // 0 refused, 1 accepted
  r.worked(1);
  EXPECT_EQ(r.order(), (V{1, 2, 0}));
  r.worked(1);  // reconnects that were not the node's fault start there again
  EXPECT_EQ(r.order(), (V{1, 2, 0}));
}

TEST(AddressRotation, LosingTheConnectedNodeStartsAfterIt) {
  AddressRotation r(3);
  r.worked(2);
  r.failed(2);  // its established connection was lost (node killed)
  EXPECT_EQ(r.order(), (V{0, 1, 2})) << "the dead node is tried last, not first";
}

TEST(AddressRotation, AFailureOfAnotherAddressKeepsThePreferredOne) {
  AddressRotation r(3);
  r.worked(1);
  r.failed(0);  // a stale report about an address that is not the preferred one
  EXPECT_EQ(r.order(), (V{1, 2, 0}));
  r.worked(7);  // out of range: ignored
  EXPECT_EQ(r.preferred(), 1u);
}

// A connect loop as the publisher runs it: every address but the last refuses; the next connect
// after losing that one starts over at the first.
TEST(AddressRotation, ConnectLoopFindsTheOnlyLiveNode) {
  AddressRotation r(4);
  std::vector<bool> up{false, false, false, true};
  std::size_t connected = 99;
  for (std::size_t i : r.order()) {
    if (!up[i]) {
      r.failed(i);
      continue;
    }
    r.worked(i);
    connected = i;
    break;
  }
  EXPECT_EQ(connected, 3u);
  EXPECT_EQ(r.order().front(), 3u);
  r.failed(3);
  EXPECT_EQ(r.order().front(), 0u);
}

namespace {

// Runs connect_in_turn over addresses that fail with the given errors (nullopt: it connects).
struct Loop {
  std::vector<std::optional<SinkError>> outcome;
  std::vector<std::size_t> tried;
  int cleanups = 0;
  std::size_t run(AddressRotation& r) {
    return outbox::connect_in_turn(
        r, "Broker",
        [&](std::size_t i) {
          tried.push_back(i);
          if (outcome[i]) throw *outcome[i];
        },
        [&] { ++cleanups; });
  }
  // What run() threw (nullopt when it connected).
  std::optional<SinkError> error(AddressRotation& r) {
    try {
      run(r);
    } catch (const SinkError& e) {
      return e;
    }
    return std::nullopt;
  }
};

SinkError fails(const std::string& what, SinkErrorKind k = SinkErrorKind::Retryable) { return SinkError(what, k); }

}  // namespace

TEST(ConnectInTurn, ReturnsTheFirstAddressThatConnectsAndPrefersItNextTime) {
  AddressRotation r(3);
  Loop l{{fails("a down"), std::nullopt, std::nullopt}};
  EXPECT_EQ(l.run(r), 1u);
  EXPECT_EQ(l.tried, (V{0, 1}));
  EXPECT_EQ(l.cleanups, 1);
  EXPECT_EQ(r.order().front(), 1u);
}

TEST(ConnectInTurn, WhenAllFailTheMostTellingKindIsThrownWithEveryReason) {
  AddressRotation r(3);
  Loop l{{fails("a down"), fails("b bad cert", SinkErrorKind::Tls), fails("c login", SinkErrorKind::Auth)}};
  auto e = l.error(r);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, SinkErrorKind::Tls);
  EXPECT_STREQ(e->what(), "no Broker node of 3 accepted the connection: a down; b bad cert; c login");
  EXPECT_EQ(l.cleanups, 3);
}

TEST(ConnectInTurn, ASettingsMistakeOrTheOnlyAddressFailingIsThrownAsItIs) {
  AddressRotation r(3);
  Loop l{{fails("a down"), fails("unreadable CA file", SinkErrorKind::Config), std::nullopt}};
  auto e = l.error(r);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, SinkErrorKind::Config);
  EXPECT_STREQ(e->what(), "unreadable CA file");
  EXPECT_EQ(l.tried, (V{0, 1})) << "the other addresses would fail the same way";

  AddressRotation one(1);
  Loop single{{fails("refused", SinkErrorKind::Auth)}};
  auto only = single.error(one);
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->kind, SinkErrorKind::Auth);
  EXPECT_STREQ(only->what(), "refused");
}

TEST(ConnectInTurn, MostTellingRanksTlsOverAuthOverConfigOverRetryable) {
  using outbox::most_telling;
  EXPECT_EQ(most_telling(SinkErrorKind::Retryable, SinkErrorKind::Auth), SinkErrorKind::Auth);
  EXPECT_EQ(most_telling(SinkErrorKind::Tls, SinkErrorKind::Auth), SinkErrorKind::Tls);
  EXPECT_EQ(most_telling(SinkErrorKind::Auth, SinkErrorKind::Tls), SinkErrorKind::Tls);
  EXPECT_EQ(most_telling(SinkErrorKind::Config, SinkErrorKind::Retryable), SinkErrorKind::Config);
  EXPECT_EQ(most_telling(SinkErrorKind::Auth, SinkErrorKind::Config), SinkErrorKind::Auth);
}
