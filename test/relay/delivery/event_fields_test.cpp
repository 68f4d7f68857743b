// The checks of what AMQP and RabbitMQ can carry of an event, which the parser and the AMQP
// mapping share: the bounds exactly, and which header names count as reserved.
#include "delivery/event_fields.h"

#include <gtest/gtest.h>

#include "outbox_wire.h"

using namespace outbox;

namespace {

const std::string k255(OUTBOX_SHORTSTR_MAX, 's');
const std::string k256(OUTBOX_SHORTSTR_MAX + 1, 's');

Event base() {
  Event e;
  e.id = "0190f1b2-0000-7000-8000-000000000001";
  e.event_type = "created";
  e.aggregate_type = "order";
  return e;
}

TEST(EventFields, ShortStringsOfExactly255BytesFit) {
  Event e = base();
  e.id = k255;
  e.event_type = k255;
  e.exchange = k255;
  e.routing_key = k255;
  e.correlation_id = k255;
  LongFields f = long_fields(e, k256);  // the default exchange is not this event's
  EXPECT_FALSE(f.id || f.event_type || f.exchange || f.routing_key || f.correlation_id);
}

TEST(EventFields, EachShortStringOf256BytesIsNamed) {
  auto only = [](LongFields f) {
    int n = 0;
    const LongField* last = nullptr;
    for (const auto* o : {&f.id, &f.event_type, &f.exchange, &f.routing_key, &f.correlation_id})
      if (*o) {
        ++n;
        last = &**o;
      }
    EXPECT_EQ(n, 1);
    return last ? std::string(last->field) + " " + std::to_string(last->bytes) + (last->default_key ? " default" : "")
                : std::string();
  };
  Event e = base();
  e.id = k256;
  EXPECT_EQ(only(long_fields(e)), "id 256");
  e = base();
  e.routing_key = "rk";  // else the default routing key is too long as well
  e.event_type = k256;
  EXPECT_EQ(only(long_fields(e)), "event_type 256");
  e = base();
  e.exchange = k256;
  EXPECT_EQ(only(long_fields(e)), "exchange 256");
  e = base();
  e.routing_key = k256;
  EXPECT_EQ(only(long_fields(e)), "routing_key 256");
  e = base();
  e.correlation_id = k256;
  EXPECT_EQ(only(long_fields(e)), "correlation_id 256");
}

TEST(EventFields, EmptyOrUnsetShortStringsFit) {
  Event e;
  LongFields f = long_fields(e);
  EXPECT_FALSE(f.id || f.event_type || f.exchange || f.routing_key || f.correlation_id);
  e.exchange = "";
  e.routing_key = "";
  e.correlation_id = "";
  f = long_fields(e);
  EXPECT_FALSE(f.exchange || f.routing_key || f.correlation_id);
}

TEST(EventFields, AnEventWithoutExchangeIsMeasuredWithTheDefault) {
  Event e = base();
  EXPECT_FALSE(long_fields(e).exchange);
  EXPECT_FALSE(long_fields(e, k255).exchange);
  ASSERT_TRUE(long_fields(e, k256).exchange);
  EXPECT_EQ(long_fields(e, k256).exchange->bytes, 256u);
}

TEST(EventFields, TheDefaultRoutingKeyIsMeasuredWhenTheEventHasNone) {
  Event e = base();
  e.event_type = "e";
  e.aggregate_type = std::string(253, 'a');  // "<253>.e": 255 bytes
  EXPECT_EQ(default_routing_key(e).size(), 255u);
  EXPECT_FALSE(long_fields(e).routing_key);
  e.aggregate_type = std::string(254, 'a');
  ASSERT_TRUE(long_fields(e).routing_key);
  EXPECT_EQ(long_fields(e).routing_key->bytes, default_routing_key(e).size());
  EXPECT_TRUE(long_fields(e).routing_key->default_key);
  EXPECT_STREQ(long_fields(e).routing_key->field, "routing_key");
  e.routing_key = "rk";  // the event's own key replaces the default
  EXPECT_FALSE(long_fields(e).routing_key);
  e.routing_key = k256;
  ASSERT_TRUE(long_fields(e).routing_key);
  EXPECT_FALSE(long_fields(e).routing_key->default_key);
  e.routing_key.reset();
  e.aggregate_type.reset();
  e.event_type = k255;  // no aggregate type: the key is the event type
  EXPECT_FALSE(long_fields(e).routing_key);
}

TEST(EventFields, DefaultRoutingKey) {
  Event e = base();
  EXPECT_EQ(default_routing_key(e), "order.created");
  e.aggregate_type.reset();
  EXPECT_EQ(default_routing_key(e), "created");
  e.aggregate_type = "";
  EXPECT_EQ(default_routing_key(e), ".created");
}

TEST(EventFields, HeaderNameLengths) {
  EXPECT_EQ(header_name_problem(""), HeaderNameProblem::Empty);
  EXPECT_EQ(header_name_problem("a"), HeaderNameProblem::None);
  EXPECT_EQ(header_name_problem(k255), HeaderNameProblem::None);
  EXPECT_EQ(header_name_problem(k256), HeaderNameProblem::TooLong);
  // Too long comes first: the callers word it without looking further.
  EXPECT_EQ(header_name_problem("x-outbox-" + std::string(300, 'k')), HeaderNameProblem::TooLong);
}

TEST(EventFields, TheReservedPrefixInAnyCase) {
  for (const char* n : {"x-outbox-lsn", "X-Outbox-Lsn", "X-OUTBOX-LSN", "x-OuTbOx-", "x-outbox-"}) {
    EXPECT_EQ(header_name_problem(n), HeaderNameProblem::ReservedPrefix) << n;
    EXPECT_TRUE(has_reserved_prefix(n)) << n;
  }
  for (const char* n : {"x-outbox", "x_outbox-lsn", "xx-outbox-lsn", "outbox-lsn", " x-outbox-lsn", "x-outbox_lsn",
                        "my-x-outbox-lsn"}) {
    EXPECT_EQ(header_name_problem(n), HeaderNameProblem::None) << n;
    EXPECT_FALSE(has_reserved_prefix(n)) << n;
  }
  // Apart from the length (sinks whose header names may be longer check only this).
  EXPECT_TRUE(has_reserved_prefix("X-Outbox-" + std::string(300, 'k')));
  EXPECT_FALSE(has_reserved_prefix(""));
}

TEST(EventFields, CcAndBccOnlyAsRabbitMqSpellsThem) {
  EXPECT_EQ(header_name_problem("CC"), HeaderNameProblem::RabbitMqMeaning);
  EXPECT_EQ(header_name_problem("BCC"), HeaderNameProblem::RabbitMqMeaning);
  for (const char* n : {"cc", "Cc", "cC", "bcc", "Bcc", "bCC", "BcC", "CCC", "CC ", " BCC", "x-CC"})
    EXPECT_EQ(header_name_problem(n), HeaderNameProblem::None) << n;
}

TEST(EventFields, TableSizesFollowTheWireFormula) {
  HeaderValue v;
  v.kind = HeaderValue::Kind::String;
  v.s = "xyz";
  EXPECT_EQ(table_entry_size(2, v), 1u + 2 + 1 + 4 + 3);
  EXPECT_EQ(string_entry_size(2, 3), table_entry_size(2, v));
  v.kind = HeaderValue::Kind::Int;
  EXPECT_EQ(table_entry_size(1, v), 1u + 1 + 1 + 8);
  v.kind = HeaderValue::Kind::Double;
  EXPECT_EQ(table_entry_size(1, v), 1u + 1 + 1 + 8);
  v.kind = HeaderValue::Kind::Bool;
  EXPECT_EQ(table_entry_size(1, v), 1u + 1 + 1 + 1);
  v.kind = HeaderValue::Kind::Null;
  EXPECT_EQ(table_entry_size(1, v), 1u + 1 + 1);
  EXPECT_EQ(encoded_table_size({}), 4u);
  Header a{"ab", {}};
  a.value.kind = HeaderValue::Kind::String;
  a.value.s = "xyz";
  Header b{"n", {}};
  b.value.kind = HeaderValue::Kind::Bool;
  EXPECT_EQ(encoded_table_size({a, b}), 4u + 11 + 4);
}

// The fields of 0.4: the bounds exactly, and the first problem of an event in field order.
TEST(EventFields, PriorityIsZeroToNine) {
  for (std::int64_t p : {0, 5, 9}) EXPECT_FALSE(priority_problem(p)) << p;
  EXPECT_EQ(priority_problem(10), "\"priority\" is 10, outside 0..9");
  EXPECT_EQ(priority_problem(-1), "\"priority\" is -1, outside 0..9");
  EXPECT_TRUE(priority_problem(INT64_MIN));
}

TEST(EventFields, SchemaVersionIsAPositiveInt32) {
  for (std::int64_t v : {std::int64_t{1}, std::int64_t{INT32_MAX}}) EXPECT_FALSE(schema_version_problem(v)) << v;
  EXPECT_EQ(schema_version_problem(0), "\"schema_version\" is 0, not a positive 32-bit integer");
  EXPECT_EQ(schema_version_problem(-3), "\"schema_version\" is -3, not a positive 32-bit integer");
  EXPECT_TRUE(schema_version_problem(std::int64_t{INT32_MAX} + 1));
}

TEST(EventFields, TraceContextSizesAreW3Cs) {
  const std::string v00 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(kTraceparentV00, v00.size());
  EXPECT_FALSE(traceparent_problem(v00));
  EXPECT_FALSE(traceparent_problem(""));
  EXPECT_EQ(traceparent_problem(v00 + "-"),
            "\"traceparent\" has 56 bytes, more than the 55 of a W3C traceparent of version 00");
  // A higher version may carry fields to come (outbox_emit lets them through): only the header
  // budget bounds it.
  EXPECT_FALSE(traceparent_problem("cc" + v00.substr(2) + "-" + std::string(200, 'x')));
  // 32 members of a 256-character key and value, 31 commas.
  EXPECT_EQ(kTracestateMax, 16447u);
  EXPECT_FALSE(tracestate_problem(std::string(16447, 'a')));
  EXPECT_EQ(tracestate_problem(std::string(16448, 'a')),
            "\"tracestate\" has 16448 bytes, more than the 16447 of a W3C tracestate (32 list members)");
}

TEST(EventFields, TheFirstContractFieldProblemIsReported) {
  Event e = base();
  EXPECT_FALSE(contract_field_problem(e));
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tracestate = "a=1";
  e.priority = 9;
  e.schema_version = 1;
  EXPECT_FALSE(contract_field_problem(e));
  e.schema_version = 0;
  EXPECT_EQ(contract_field_problem(e), "\"schema_version\" is 0, not a positive 32-bit integer");
  e.priority = 10;
  EXPECT_EQ(contract_field_problem(e), "\"priority\" is 10, outside 0..9");
  e.tracestate = std::string(kTracestateMax + 1, 'a');
  EXPECT_NE(contract_field_problem(e)->find("\"tracestate\""), std::string::npos);
  e.traceparent = "00-" + std::string(kTraceparentV00 - 2, 'a');
  EXPECT_NE(contract_field_problem(e)->find("\"traceparent\""), std::string::npos);
}

}  // namespace
