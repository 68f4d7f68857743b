// AddressRotation: the order in which the relay tries its --amqp addresses.
#include "sinks/address_rotation.h"

#include <gtest/gtest.h>

using outbox::AddressRotation;
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
