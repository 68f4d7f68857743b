#include <gtest/gtest.h>

#include "mask.h"

using namespace outbox;

TEST(Mask, AmqpUrls) {
  EXPECT_EQ(mask_url("amqp://guest:guest@127.0.0.1:5672/"), "amqp://guest:***@127.0.0.1:5672/");
  EXPECT_EQ(mask_url("amqps://u:p%40ss@h/vh?x=1"), "amqps://u:***@h/vh?x=1");
  EXPECT_EQ(mask_url("amqp://u@h"), "amqp://u@h");
  EXPECT_EQ(mask_url("amqp://h:5672"), "amqp://h:5672");
  EXPECT_EQ(mask_url("amqp://u:a:b@c@h/"), "amqp://u:***@h/");
}

TEST(Mask, ConninfoKeyValue) {
  EXPECT_EQ(mask_conninfo("host=h password=secret user=u"), "host=h password=*** user=u");
  EXPECT_EQ(mask_conninfo("password = 'se cret\\' x' dbname=d"), "password = *** dbname=d");
  EXPECT_EQ(mask_conninfo("host=h"), "host=h");
  EXPECT_EQ(mask_conninfo(""), "");
}

TEST(Mask, ConninfoUri) {
  EXPECT_EQ(mask_conninfo("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(mask_conninfo("postgres://h/db?user=u&password=secret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require");
}

TEST(Mask, ArbitraryText) {
  EXPECT_EQ(mask_secrets("connection to x failed: password secret wrong", {"secret", ""}),
            "connection to x failed: password *** wrong");
}
