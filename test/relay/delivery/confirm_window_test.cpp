// Publisher-confirm bookkeeping: delivery tags, `multiple` acks, nacks and returns.
#include "delivery/confirm_window.h"

#include <gtest/gtest.h>

#include <vector>

using namespace outbox;

TEST(ConfirmWindow, SingleMultipleNackAndReturn) {
  ConfirmWindow<int> w;
  EXPECT_EQ(w.add(10), 1u);
  EXPECT_EQ(w.add(11), 2u);
  EXPECT_EQ(w.add(12), 3u);
  EXPECT_EQ(w.add(13), 4u);
  std::vector<ConfirmWindow<int>::Settled> out;
  w.confirm(3, false, false, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].item, 12);
  EXPECT_TRUE(out[0].ok);
  EXPECT_TRUE(w.mark_returned([](const int& v) { return v == 11; }));
  out.clear();
  w.confirm(2, true, false, out);  // acks 1 and 2; 2 was returned
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].item, 10);
  EXPECT_TRUE(out[0].ok);
  EXPECT_EQ(out[1].item, 11);
  EXPECT_FALSE(out[1].ok);
  out.clear();
  w.confirm(2, false, false, out);  // duplicate: ignored
  EXPECT_TRUE(out.empty());
  w.confirm(4, true, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].ok);
  EXPECT_TRUE(w.empty());
  w.add(1);
  auto lost = w.reset();
  EXPECT_EQ(lost.size(), 1u);
  EXPECT_EQ(w.next_tag(), 1u);
}

// Single acks out of order leave holes inside the window; a later multiple ack settles only
// what is still open, once each, and the window empties.
TEST(ConfirmWindow, OutOfOrderSingleAcksThenAMultipleOne) {
  outbox::ConfirmWindow<int> w;
  for (int i = 1; i <= 6; ++i) w.add(i * 10);
  std::vector<outbox::ConfirmWindow<int>::Settled> out;
  w.confirm(3, false, false, out);
  w.confirm(5, false, true, out);
  w.confirm(9, false, false, out);  // never published: ignored
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].item, 30);
  EXPECT_FALSE(out[1].ok);
  EXPECT_EQ(w.size(), 4u);
  out.clear();
  w.confirm(6, true, false, out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].tag, 1u);
  EXPECT_EQ(out[1].tag, 2u);
  EXPECT_EQ(out[2].tag, 4u);
  EXPECT_EQ(out[3].tag, 6u);
  EXPECT_TRUE(w.empty());
  out.clear();
  w.confirm(6, true, false, out);  // again: nothing left
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(w.add(70), 7u);
}
