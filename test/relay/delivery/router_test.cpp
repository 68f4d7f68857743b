// The routing rules: order, first match wins, globs, null fields, the default sink.
#include "delivery/router.h"

#include <gtest/gtest.h>

using namespace outbox;

namespace {

Event event(std::string type, std::optional<std::string> agg = std::nullopt, std::optional<std::string> ex = std::nullopt) {
  Event e;
  e.event_type = std::move(type);
  e.aggregate_type = std::move(agg);
  e.exchange = std::move(ex);
  return e;
}

Route rule(std::optional<std::string> type, std::string sink, std::optional<std::string> agg = std::nullopt,
           std::optional<std::string> ex = std::nullopt) {
  Route r;
  r.event_type = std::move(type);
  r.aggregate_type = std::move(agg);
  r.exchange = std::move(ex);
  r.sink = std::move(sink);
  return r;
}

const std::vector<std::string> kSinks{"rabbitmq", "nats", "redis"};

}  // namespace

TEST(Router, FirstMatchingRuleWinsElseTheDefault) {
  Router r({rule("user.*", "nats"), rule("user.deleted", "redis"), rule("order.*", "redis")}, "rabbitmq", kSinks);
  EXPECT_EQ(r.route(event("user.deleted")), 1u) << "the earlier rule wins";
  EXPECT_EQ(r.route(event("order.placed")), 2u);
  EXPECT_EQ(r.route(event("invoice.sent")), 0u);
  EXPECT_EQ(r.route(event("user")), 0u) << "user.* needs the dot";
}

TEST(Router, AllConditionsOfARuleMustMatchAndNullFieldsNeverDo) {
  Router r({rule(std::nullopt, "nats", std::string("Order")), rule("*", "redis", std::nullopt, std::string("audit*"))},
           "rabbitmq", kSinks);
  EXPECT_EQ(r.route(event("anything", std::string("Order"))), 1u);
  EXPECT_EQ(r.route(event("anything", std::nullopt)), 0u) << "no aggregate_type: the aggregate rule does not match";
  EXPECT_EQ(r.route(event("x", std::string("User"), std::string("audit.log"))), 2u);
  EXPECT_EQ(r.route(event("x", std::string("User"), std::nullopt)), 0u);
}

TEST(Router, GlobsAreShellStyleAndStarCrossesDots) {
  EXPECT_TRUE(Router::glob("user.*", "user.a.b"));
  EXPECT_TRUE(Router::glob("user.?", "user.a"));
  EXPECT_FALSE(Router::glob("user.?", "user.ab"));
  EXPECT_TRUE(Router::glob("[ou]*", "order"));
  EXPECT_FALSE(Router::glob("User.*", "user.x")) << "case matters";
  EXPECT_TRUE(Router::glob("*", ""));
}

TEST(Router, ARouteToASinkNotInUseIsRefused) {
  EXPECT_THROW(Router({rule("*", "kafka")}, "rabbitmq", kSinks), std::invalid_argument);
  EXPECT_THROW(Router({}, "nats", {"rabbitmq"}), std::invalid_argument);
}

// match = "user.#" (RabbitMQ's habit) was accepted and matched no event: '#' is literal in a
// glob. The glob it meant is named, so that the settings can refuse it with the fix.
TEST(Router, AmqpHashWildcardIsRecognisedWithTheGlobMeant) {
  EXPECT_FALSE(Router::glob("user.#", "user.created")) << "the reason: a literal '#'";
  EXPECT_EQ(Router::amqp_wildcard_meant("user.#"), std::optional<std::string>("user.*"));
  EXPECT_EQ(Router::amqp_wildcard_meant("#"), std::optional<std::string>("*"));
  EXPECT_EQ(Router::amqp_wildcard_meant("#.created"), std::optional<std::string>("*.created"));
  EXPECT_EQ(Router::amqp_wildcard_meant("a.#.b"), std::optional<std::string>("a.*.b"));
  EXPECT_EQ(Router::amqp_wildcard_meant("a.#.#"), std::optional<std::string>("a.*"));
  EXPECT_EQ(Router::amqp_wildcard_meant("user.*"), std::nullopt);
  EXPECT_EQ(Router::amqp_wildcard_meant("user.[#]"), std::nullopt) << "a literal '#' has a spelling";
  EXPECT_EQ(Router::amqp_wildcard_meant("issue#1"), std::nullopt) << "'#' inside a word is the text's own";
}
