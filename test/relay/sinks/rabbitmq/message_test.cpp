// The event -> AMQP message mapping, and what it refuses before it can reach the broker.
#include "sinks/rabbitmq/message.h"

#include <gtest/gtest.h>

#include <algorithm>

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
  AmqpMessage m2 = ok(build_message(e, defs(), 0));
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

const char* const kTp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

Event traced() {
  Event e = base();
  e.traceparent = kTp;
  e.tracestate = "congo=t61rcWkgMzE";
  e.priority = 7;
  e.schema_version = 3;
  return e;
}

std::vector<std::string> names(const AmqpMessage& m) {
  std::vector<std::string> v;
  for (const auto& h : m.headers) v.push_back(h.name);
  return v;
}

const Header* find(const AmqpMessage& m, const std::string& name) {
  for (const auto& h : m.headers)
    if (h.name == name) return &h;
  return nullptr;
}

// Priority is the AMQP property; the trace context the W3C headers; the schema version an
// integer x-outbox- header. Without them, none of it.
TEST(AmqpMessage, PriorityTraceContextAndSchemaVersion) {
  AmqpMessage m = ok(build_message(traced(), defs(), 0));
  EXPECT_TRUE(m.has_priority);
  EXPECT_EQ(m.priority, 7);
  EXPECT_EQ(names(m), (std::vector<std::string>{"traceparent", "tracestate", "x-outbox-aggregate-type",
                                                "x-outbox-aggregate-id", "x-outbox-lsn", "x-outbox-xid",
                                                "x-outbox-schema-version"}));
  EXPECT_EQ(find(m, "traceparent")->value.s, kTp);
  EXPECT_EQ(find(m, "tracestate")->value.s, "congo=t61rcWkgMzE");
  EXPECT_EQ(find(m, "x-outbox-schema-version")->value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(find(m, "x-outbox-schema-version")->value.i, 3);
  Event zero = traced();
  zero.priority = 0;
  AmqpMessage z = ok(build_message(zero, defs(), 0));
  EXPECT_TRUE(z.has_priority);  // 0 is a priority, not "unset"
  EXPECT_EQ(z.priority, 0);
  AmqpMessage plain = ok(build_message(base(), defs(), 0));
  EXPECT_FALSE(plain.has_priority);
  EXPECT_FALSE(find(plain, "traceparent") || find(plain, "tracestate") || find(plain, "x-outbox-schema-version"));
}

// The field wins over an own header of the same name (in any case): one header, the field's value.
// An own header stays when the field is not set.
TEST(AmqpMessage, AFieldReplacesTheOwnHeaderOfItsName) {
  Event e = traced();
  e.headers = {str("TraceParent", "00-old"), str("tracestate", "old=1"), str("keep", "v")};
  AmqpMessage m = ok(build_message(e, defs(), 0));
  std::vector<std::string> n = names(m);
  EXPECT_EQ(n[0], "keep");
  EXPECT_EQ(find(m, "traceparent")->value.s, kTp);
  EXPECT_FALSE(find(m, "TraceParent"));
  EXPECT_EQ(find(m, "tracestate")->value.s, "congo=t61rcWkgMzE");
  EXPECT_EQ(std::count(n.begin(), n.end(), "tracestate"), 1);
  Event own = base();
  own.headers = {str("traceparent", "00-own")};
  AmqpMessage o = ok(build_message(own, defs(), 0));
  EXPECT_EQ(find(o, "traceparent")->value.s, "00-own");
  // With CloudEvents on, an own "cloudEvents:id" gives way as well.
  MessageDefaults d = defs();
  d.cloudevents_source = "/orders-db";
  own.headers = {str("cloudEvents:id", "forged")};
  AmqpMessage c = ok(build_message(own, d, 0));
  EXPECT_EQ(find(c, "cloudEvents:id")->value.s, own.id);
}

// Values the parser would have refused are refused here too, in the same words.
TEST(AmqpMessage, ContractFieldsOutOfRangeAreRefused) {
  Event e = traced();
  e.priority = 10;
  EXPECT_EQ(err(build_message(e, defs(), 0)), "\"priority\" is 10, outside 0..9");
  e = traced();
  e.schema_version = 0;
  EXPECT_EQ(err(build_message(e, defs(), 0)), "\"schema_version\" is 0, not a positive 32-bit integer");
  e = traced();
  e.traceparent = "00-" + std::string(53, 'a');
  EXPECT_NE(err(build_message(e, defs(), 0)).find("W3C traceparent"), std::string::npos);
}

TEST(AmqpMessage, CloudEventsWithSchemaAndTraceContext) {
  MessageDefaults d = defs();
  d.cloudevents_source = "/orders-db";
  Event e = traced();
  e.event_type = "order created/v";  // a space and a '/' cannot break dataschema's path
  e.routing_key = "rk";
  AmqpMessage m = ok(build_message(e, d, 0));
  std::vector<std::string> ce;
  for (const auto& n : names(m))
    if (n.rfind("cloudEvents:", 0) == 0) ce.push_back(n);
  EXPECT_EQ(ce, (std::vector<std::string>{"cloudEvents:specversion", "cloudEvents:id", "cloudEvents:source",
                                          "cloudEvents:type", "cloudEvents:time", "cloudEvents:subject",
                                          "cloudEvents:dataschema", "cloudEvents:traceparent",
                                          "cloudEvents:tracestate"}));
  EXPECT_EQ(find(m, "cloudEvents:dataschema")->value.s, "/orders-db/schemas/order%20created%2Fv/3");
  EXPECT_EQ(find(m, "cloudEvents:traceparent")->value.s, kTp);
  EXPECT_EQ(find(m, "cloudEvents:tracestate")->value.s, "congo=t61rcWkgMzE");
  EXPECT_EQ(find(m, "cloudEvents:time")->value.s, "2026-11-23T05:01:53.002315Z");
  EXPECT_EQ(find(m, "cloudEvents:type")->value.s, "order created/v");
  AmqpMessage b = ok(build_message(base(), d, 0));
  EXPECT_FALSE(find(b, "cloudEvents:dataschema"));
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

// What a dead letter says RabbitMQ refused: the exchange (and routing key) named, in RabbitMQ's
// words, short and stable (the broker's reply text is kept apart).
TEST(AmqpRefusal, NamesTheExchangeAndRoutingKey) {
  EXPECT_EQ(amqp_refusal(Refusal::ExchangeMissing, "orders", "order.created"),
            R"(RabbitMQ: exchange "orders" does not exist)");
  EXPECT_EQ(amqp_refusal(Refusal::Returned, "orders", "order.created"),
            R"(RabbitMQ: unroutable, no queue bound to exchange "orders" for routing key "order.created")");
  EXPECT_EQ(amqp_refusal(Refusal::Nacked, "", "k\"1"), R"(RabbitMQ: nacked (exchange "", routing key "k\"1"))");
}
