#include <gtest/gtest.h>

#include "sinks/nats/streams.h"

using namespace outbox;

// --nats-subject-prefix evts (no trailing '.') with streams on the server, none of which could
// take a subject starting with it: --check said "cannot tell which stream captures it" and passed,
// and every event became a dead letter. Now that is None (exit 2); a stream that might is Unknown.
TEST(NatsStreams, APrefixInsideATokenNoStreamCanTakeIsNone) {
  StreamFilters others{{"ORDERS", "orders.>"}, {"AUDIT", "audit.*"}};
  EXPECT_EQ(capture_of(others, "evts").state, StreamCapture::State::None);
  EXPECT_EQ(capture_of({}, "evts").state, StreamCapture::State::None);
  StreamFilters some = others;
  some.emplace_back("EVTS", "evtsOrder.>");
  EXPECT_EQ(capture_of(some, "evts").state, StreamCapture::State::Unknown);
  EXPECT_EQ(capture_of({{"ALL", ">"}}, "evts").state, StreamCapture::State::Unknown);
  // With the '.' the answer is exact, as before.
  EXPECT_EQ(capture_of(others, "evts.").state, StreamCapture::State::None);
  EXPECT_EQ(capture_of({{"E", "evts.>"}}, "evts.").state, StreamCapture::State::Whole);
}

// The fix named subjects = ["evts>"], which no server takes (">" must be a whole token).
TEST(NatsStreams, NoStreamTextNamesAFilterAServerTakes) {
  std::string t = no_stream_text("evts");
  EXPECT_EQ(t.find("evts>"), std::string::npos) << t;
  EXPECT_NE(t.find("--nats-subject-prefix \"evts.\""), std::string::npos) << t;
  EXPECT_NE(t.find("subjects = [\"evts.>\"]"), std::string::npos) << t;
  t = no_stream_text("evts.");
  EXPECT_NE(t.find("subjects = [\"evts.>\"]"), std::string::npos) << t;
}
