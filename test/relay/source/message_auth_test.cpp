#include <gtest/gtest.h>

#include <string>

#include "source/message_auth.h"

using namespace outbox;

// RFC 4231 (HMAC-SHA256 test vectors).
TEST(MessageAuth, Rfc4231Vectors) {
  // Test case 1: key = 20 bytes of 0x0b, data = "Hi There".
  EXPECT_EQ(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: key = "Jefe", data = "what do ya want for nothing?".
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block size (131 bytes of 0xaa).
  EXPECT_EQ(hmac_sha256_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(MessageAuth, KeyedContextMatchesOneShotAndIsReusable) {
  MessageAuth a;
  EXPECT_FALSE(a.has_key());
  EXPECT_FALSE(a.verify_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                            "what do ya want for nothing?"));
  a.set_key("Jefe");
  ASSERT_TRUE(a.has_key());
  EXPECT_EQ(a.key_size(), 4u);
  unsigned char out[kHmacSha256Bytes];
  for (int round = 0; round < 3; ++round) {  // each MAC starts again from the keyed state
    a.mac("what do ya want for nothing?", out);
    EXPECT_EQ(to_hex(out, sizeof out), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    a.mac("", out);
    EXPECT_EQ(to_hex(out, sizeof out), hmac_sha256_hex("Jefe", ""));
  }
}

TEST(MessageAuth, VerifyHex) {
  MessageAuth a;
  a.set_key("Jefe");
  const std::string good = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  EXPECT_TRUE(a.verify_hex(good, "what do ya want for nothing?"));
  EXPECT_FALSE(a.verify_hex(good, "what do ya want for nothing!"));  // data changed by one byte
  std::string flipped = good;
  flipped[63] = '2';
  EXPECT_FALSE(a.verify_hex(flipped, "what do ya want for nothing?"));
  std::string upper = good;
  upper[0] = 'B';  // the wire format is lower-case hex
  EXPECT_FALSE(a.verify_hex(upper, "what do ya want for nothing?"));
  EXPECT_FALSE(a.verify_hex(good.substr(0, 62), "what do ya want for nothing?"));
  EXPECT_FALSE(a.verify_hex(std::string(64, 'z'), "what do ya want for nothing?"));
  a.set_key("");  // forgets the key
  EXPECT_FALSE(a.has_key());
  EXPECT_FALSE(a.verify_hex(good, "what do ya want for nothing?"));
  a.set_key("other key");
  EXPECT_FALSE(a.verify_hex(good, "what do ya want for nothing?"));
}
