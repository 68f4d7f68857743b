// The event -> AMQP message mapping, and what it refuses before it can reach the broker.
#include "sinks/rabbitmq/message.h"

#include <gtest/gtest.h>

#include "outbox_wire.h"

using namespace outbox;

namespace {

Event base() {
  Event e;
  e.id = "0190f1b2-0000-7000-8000-000000000001";
  e.event_type = "created";
  e.aggregate_type = "order";
  e.aggregate_id = "42";
  e.payload = "{\"n\":1}";
  e.lsn = 0x16B3748;
  e.xid = 750;
  e.created_at = "2026-11-23 05:01:53.002315+00";
  return e;
}

MessageDefaults defs() { return MessageDefaults{"events", "outbox-relay", ""}; }

const AmqpMessage& ok(const std::variant<AmqpMessage, std::string>& r) {
  if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << *e;
  return std::get<AmqpMessage>(r);
}

std::string err(const std::variant<AmqpMessage, std::string>& r) {
  if (auto* e = std::get_if<std::string>(&r)) return *e;
  ADD_FAILURE() << "accepted";
  return {};
}

Header str(const std::string& n, const std::string& v) {
  Header h;
  h.name = n;
  h.value.kind = HeaderValue::Kind::String;
  h.value.s = v;
  return h;
}

TEST(AmqpMessage, DefaultsAndProperties) {
  auto r = build_message(base(), defs(), 0);
  const AmqpMessage& m = ok(r);
  EXPECT_EQ(m.exchange, "events");
  EXPECT_EQ(m.routing_key, "order.created");
  EXPECT_EQ(m.type, "created");
  EXPECT_EQ(m.message_id, base().id);
  EXPECT_EQ(m.timestamp_s, 1795410113u);
  ASSERT_GE(m.headers.size(), 4u);
  EXPECT_EQ(m.headers[0].name, "x-outbox-aggregate-type");
  EXPECT_EQ(m.headers[1].name, "x-outbox-aggregate-id");
  EXPECT_EQ(m.headers[2].value.s, "0/16B3748");
  EXPECT_EQ(*m.body, "{\"n\":1}");
  Event e = base();
  e.aggregate_type.reset();
  e.exchange = "other";
  e.routing_key = "rk";
  const AmqpMessage& m2 = ok(build_message(e, defs(), 0));
  EXPECT_EQ(m2.exchange, "other");
  EXPECT_EQ(m2.routing_key, "rk");
}

TEST(AmqpMessage, CloudEventsAttributes) {
  MessageDefaults d = defs();
  d.cloudevents_source = "/orders-db";
  auto r = build_message(base(), d, 0);
  bool subject = false;
  for (auto& h : ok(r).headers)
    if (h.name == "cloudEvents:subject") subject = h.value.s == "42";
  EXPECT_TRUE(subject);
}

TEST(AmqpMessage, RefusesWhatTheBrokerOrRabbitmqcWouldChokeOn) {
  Event e = base();
  e.headers.push_back(str("CC", "audit"));
  EXPECT_NE(err(build_message(e, defs(), 0)).find("reserved by RabbitMQ"), std::string::npos);
  e = base();
  e.headers.push_back(str("X-Outbox-Lsn", "0/0"));
  EXPECT_NE(err(build_message(e, defs(), 0)).find("reserved prefix"), std::string::npos);
  e = base();
  e.headers.push_back(str(std::string(300, 'k'), "v"));
  EXPECT_NE(err(build_message(e, defs(), 0)).find("1 to 255"), std::string::npos);
  e = base();
  e.headers.push_back(str("big", std::string(300 * 1024, 'v')));
  EXPECT_NE(err(build_message(e, defs(), 0)).find("header table"), std::string::npos);
  e = base();
  e.aggregate_id = std::string(300 * 1024, 'a');
  EXPECT_NE(err(build_message(e, defs(), 0)).find("header table"), std::string::npos);
  e = base();
  e.routing_key = std::string(256, 'r');
  EXPECT_NE(err(build_message(e, defs(), 0)).find("routing_key"), std::string::npos);
  e = base();
  e.exchange = std::string(256, 'x');
  EXPECT_NE(err(build_message(e, defs(), 0)).find("exchange"), std::string::npos);
  e = base();
  e.event_type = std::string(256, 't');
  e.routing_key = "rk";
  EXPECT_NE(err(build_message(e, defs(), 0)).find("event_type"), std::string::npos);
  e = base();
  e.correlation_id = std::string(256, 'c');
  EXPECT_NE(err(build_message(e, defs(), 0)).find("correlation_id"), std::string::npos);
  e = base();
  e.invalid = "column \"headers\" is not a JSON object";
  EXPECT_EQ(err(build_message(e, defs(), 0)), e.invalid);
}

TEST(AmqpMessage, TableSizeFollowsTheWireFormula) {
  std::vector<Header> h = {str("ab", "xyz")};
  EXPECT_EQ(encoded_table_size(h), 4u + 1 + 2 + 1 + 4 + 3);
  Header i;
  i.name = "n";
  i.value.kind = HeaderValue::Kind::Int;
  h.push_back(i);
  EXPECT_EQ(encoded_table_size(h), 4u + 11 + 1 + 1 + 1 + 8);
  // Exactly at the bound is accepted, one byte more is not.
  Event e = base();
  e.aggregate_type.reset();
  e.aggregate_id.reset();
  auto m = std::get<AmqpMessage>(build_message(e, defs(), 0));
  std::size_t rest = encoded_table_size(m.headers);
  std::size_t fill = OUTBOX_HEADER_TABLE_MAX - rest - (1 + 1 + 1 + 4);
  e.headers.push_back(str("f", std::string(fill, 'v')));
  EXPECT_TRUE(std::holds_alternative<AmqpMessage>(build_message(e, defs(), 0)));
  e.headers.back().value.s += "v";
  EXPECT_TRUE(std::holds_alternative<std::string>(build_message(e, defs(), 0)));
}

}  // namespace
