#include <gtest/gtest.h>

#include "support/mask.h"

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

// Every secret-bearing libpq keyword is masked, not only password: sslpassword (the client key's
// passphrase) and whatever PQconndefaults() marks with dispchar "*".
TEST(Mask, EverySecretKeyword) {
  EXPECT_TRUE(secret_conninfo_keys().count("password"));
  EXPECT_TRUE(secret_conninfo_keys().count("sslpassword"));
  EXPECT_FALSE(secret_conninfo_keys().count("user"));
  EXPECT_EQ(mask_conninfo("host=h sslkey=/k.pem sslpassword=KeyPass1 user=u"),
            "host=h sslkey=/k.pem sslpassword=*** user=u");
  EXPECT_EQ(mask_conninfo("sslpassword = 'Key Pass' password=p2 dbname=d"), "sslpassword = *** password=*** dbname=d");
  EXPECT_EQ(mask_conninfo("postgresql://u@h/db?sslpassword=KeyPass1&sslmode=verify-full"),
            "postgresql://u@h/db?sslpassword=***&sslmode=verify-full");
  EXPECT_EQ(mask_conninfo("postgresql://u:pw@h/db?sslmode=require&sslpassword=KeyPass1"),
            "postgresql://u:***@h/db?sslmode=require&sslpassword=***");
  EXPECT_EQ(mask_conninfo("postgres://h/db?password=a&sslpassword=b&password=c"),
            "postgres://h/db?password=***&sslpassword=***&password=***");
  EXPECT_EQ(mask_conninfo("postgres://h/db?mypassword=visible"), "postgres://h/db?mypassword=visible");
}

TEST(Mask, SecretValuesOfAConninfo) {
  auto v = conninfo_secret_values("host=h password=Pw1 sslpassword=Kp2 user=u");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(mask_secrets("failed for Pw1 and Kp2 as u", v), "failed for *** and *** as u");
  EXPECT_EQ(conninfo_secret_values("postgresql://u:Pw1@h/db?sslpassword=Kp2").size(), 2u);
  EXPECT_TRUE(conninfo_secret_values("host=h").empty());
  EXPECT_TRUE(conninfo_secret_values("not a conninfo").empty());
}

TEST(Mask, ArbitraryText) {
  EXPECT_EQ(mask_secrets("connection to x failed: password secret wrong", {"secret", ""}),
            "connection to x failed: password *** wrong");
}

// Issue 15 item 4: a NATS token, and passwords with characters a URL parser stops at, were
// printed in clear (the start line; exit-2 errors of the settings).
TEST(Mask, TokensAndMalformedPasswords) {
  EXPECT_EQ(mask_url("nats://S3cretTok3n@127.0.0.1:4222"), "nats://***@127.0.0.1:4222");
  EXPECT_EQ(mask_url("tls://S3cretTok3n@h:4222"), "tls://***@h:4222");
  EXPECT_EQ(mask_url("nats://u:S3cret@h:4222"), "nats://u:***@h:4222");
  EXPECT_EQ(mask_url("natz://S3cretTok3n@h"), "natz://***@h");  // an unknown scheme: may be a token
  EXPECT_EQ(mask_url("redis://S3cret@h"), "redis://***@h");
  EXPECT_EQ(mask_url("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(mask_url("amqp://u:pa/ss?w0rd@h/"), "amqp://u:***@h/");
  EXPECT_EQ(mask_url("redis://u:pa/ss?w0rd@h:6379/2"), "redis://u:***@h:6379/2");
  EXPECT_EQ(mask_url("amqp://u:pa#ss@h/vh"), "amqp://u:***@h/vh");
  EXPECT_EQ(mask_url("amqp://u:pa"), "amqp://u:***");  // "amqp://u:pa,ss@h" split at its comma
  EXPECT_EQ(mask_url("amqp://h:5672,h2:x"), "amqp://h:5672,h2:***");
  EXPECT_EQ(mask_url("amqp://[::1]:5672/"), "amqp://[::1]:5672/");
  EXPECT_EQ(mask_url("u:S3cret@h"), "u:***@h");  // no scheme
  EXPECT_EQ(mask_url("S3cret@h"), "***@h");
  EXPECT_EQ(mask_url("postgresql://h/db?password=S3cret&application_name=a@b"), "postgresql://***@b");
  EXPECT_EQ(mask_url("postgresql://h/db?password=S3cret&x=a:b@c"), "postgresql://***@c");
  EXPECT_EQ(mask_conninfo("postgresql://u:pa/ss?w0rd@h/db"), "postgresql://u:***@h/db");
}

TEST(Mask, UnquotedSecretRunsToTheNextKeyword) {
  EXPECT_EQ(mask_conninfo("host=x password=pa ss?w0rd dbname=d"), "host=x password=*** dbname=d");
  EXPECT_EQ(mask_conninfo("password=pa ss=w0rd host = x"), "password=*** host = x");
  EXPECT_EQ(mask_conninfo("host=x password='pa ss?w0rd"), "host=x password=***");
  EXPECT_EQ(mask_conninfo("host=x PASSWORD=S3cret"), "host=x PASSWORD=***");
}

TEST(Mask, FreeText) {
  EXPECT_EQ(mask_text("The following argument was not expected: amqp://u:S3cret@h (see --help)"),
            "The following argument was not expected: amqp://u:***@h (see --help)");
  EXPECT_EQ(mask_text("not expected: password=S3cret x=y"), "not expected: password=*** x=y");
  EXPECT_EQ(mask_text("\"nats://S3cretTok3n@h\" is bad"), "\"nats://***@h\" is bad");
  EXPECT_EQ(mask_text("no secrets here: 1 = 2"), "no secrets here: 1 = 2");
}
