#include "sinks/nats/encoded_message.h"

#include <string>

#include <gtest/gtest.h>
#include <nats/nats.h>

namespace outbox {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

TEST(NatsEncodedMessage, TheHeaderBlockIsTheProtocolsInTheOrderGiven) {
  std::string out = "kept";
  append_nats_header_block(out, {{"Nats-Msg-Id", "e-1"}, {"b", ""}, {"a", "x y"}});
  EXPECT_EQ(out, "keptNATS/1.0\r\nNats-Msg-Id: e-1\r\nb: \r\na: x y\r\n\r\n");
}

// The relay's build of nats.c reads back what it sends; were it not, every message would silently
// fall back to the public API (and this figure of the bench would lie).
TEST(NatsEncodedMessage, ThisNatsCReadsBackAMessageMadeWithItsBlock) { EXPECT_TRUE(encoded_messages_work()); }

TEST(NatsEncodedMessage, NatsCReadsEveryHeaderTheSubjectAndTheDataBack) {
  const Headers headers = {{"Nats-Msg-Id", "id-7"},          {"x-outbox-event-type", "order created"},
                           {"traceparent", "00-ab-cd-01"},  {"tenant", "acme"},
                           {"x-outbox-aggregate-id", "42"}};
  const std::string data("{\"a\": 1}\0tail", 13);  // binary data: a NUL is the data's own
  std::string scratch = "left over from the last message";
  int status = -1;
  natsMsg* m = make_nats_message("orders.created", headers, data, scratch, status);
  ASSERT_NE(m, nullptr) << status;
  EXPECT_STREQ(natsMsg_GetSubject(m), "orders.created");
  EXPECT_EQ(natsMsg_GetReply(m), nullptr);
  ASSERT_EQ(natsMsg_GetDataLength(m), 13);
  EXPECT_EQ(std::string(natsMsg_GetData(m), 13), data);
  for (const auto& [k, v] : headers) {
    const char* got = nullptr;
    ASSERT_EQ(natsMsgHeader_Get(m, k.c_str(), &got), NATS_OK) << k;
    EXPECT_EQ(std::string(got), v) << k;
  }
  const char** keys = nullptr;
  int count = 0;
  ASSERT_EQ(natsMsgHeader_Keys(m, &keys, &count), NATS_OK);
  EXPECT_EQ(count, 5);
  free(keys);
  natsMsg_Destroy(m);
}

// The scratch buffer is kept between messages, but not at the size of one large event.
TEST(NatsEncodedMessage, ALargeMessageLeavesNoLargeScratchBehind) {
  std::string scratch, big(4u << 20, 'x');
  int status = -1;
  natsMsg* m = make_nats_message("s", {{"k", "v"}}, big, scratch, status);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(natsMsg_GetDataLength(m), static_cast<int>(big.size()));
  natsMsg_Destroy(m);
  EXPECT_LE(scratch.capacity(), 64u * 1024);
}

TEST(NatsEncodedMessage, NoHeadersMakeAMessageWithoutABlock) {
  std::string scratch;
  int status = -1;
  natsMsg* m = make_nats_message("s", {}, "payload", scratch, status);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(std::string(natsMsg_GetData(m), natsMsg_GetDataLength(m)), "payload");
  const char** keys = nullptr;
  int count = 0;
  EXPECT_EQ(natsMsgHeader_Keys(m, &keys, &count), NATS_NOT_FOUND);
  natsMsg_Destroy(m);
}

}  // namespace
}  // namespace outbox
