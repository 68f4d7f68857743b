// What every sink adds to an event, computed once: the CloudEvents attributes and their values,
// the time an event carries, header names in any case, percent-encoding.
#include "sinks/event_metadata.h"

#include <gtest/gtest.h>

using namespace outbox;

namespace {

Event base() {
  Event e;
  e.id = "0190f1b2-0000-7000-8000-000000000001";
  e.event_type = "order.created";
  e.aggregate_id = "42";
  e.created_at = "2026-11-23 05:01:53.002315+00";
  e.commit_time = "2026-11-23 05:01:54+00";
  return e;
}

}  // namespace

TEST(EventMetadata, CloudEventsAttributesInOrder) {
  Event e = base();
  e.schema_version = 4;
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tracestate = "a=1";
  Attributes a = cloudevents_attributes(e, "https://example.com/orders", event_time_us(e, 0));
  EXPECT_EQ(a, (Attributes{{"specversion", "1.0"},
                           {"id", e.id},
                           {"source", "https://example.com/orders"},
                           {"type", "order.created"},
                           {"time", "2026-11-23T05:01:53.002315Z"},
                           {"subject", "42"},
                           {"dataschema", "https://example.com/orders/schemas/order.created/4"},
                           {"traceparent", *e.traceparent},
                           {"tracestate", "a=1"}}));
  Event bare = base();
  bare.aggregate_id.reset();
  EXPECT_EQ(cloudevents_attributes(bare, "/s", 0).size(), 5u) << "no subject, dataschema or trace context";
}

TEST(EventMetadata, TheTimeIsCreatedAtElseTheCommitTimeElseNow) {
  Event e = base();
  EXPECT_EQ(event_time_us(e, 7), 1795410113002315);
  e.created_at = "not a time";
  EXPECT_EQ(event_time_us(e, 7), 1795410114000000);
  e.commit_time.clear();
  EXPECT_EQ(event_time_us(e, 7), 7);
}

TEST(EventMetadata, EachBrokersNaming) {
  Event e = base();
  e.priority = 3;
  e.schema_version = 2;
  auto names = [](const std::vector<Header>& hs) {
    std::vector<std::string> v;
    for (const auto& h : hs) v.push_back(h.name);
    return v;
  };
  EXPECT_EQ(names(event_metadata(e, {false, "cloudEvents:", false}, "", 0)),
            (std::vector<std::string>{"x-outbox-aggregate-id", "x-outbox-lsn", "x-outbox-xid", "x-outbox-commit-time",
                                      "x-outbox-schema-version"}));
  auto ce = event_metadata(e, {true, "ce-", true}, "/s", 0);
  EXPECT_EQ(ce[0].name, "priority");
  EXPECT_EQ(ce[0].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(ce.back().name, "ce-datacontenttype");
  EXPECT_EQ(ce.back().value.s, "application/json");
}

TEST(EventMetadata, HeaderNamesInAnyCase) {
  EXPECT_TRUE(same_header_name("TraceParent", "traceparent"));
  EXPECT_FALSE(same_header_name("traceparent", "traceparent "));
  EXPECT_TRUE(has_header({string_header("Content-Type", "x")}, "content-type"));
  EXPECT_FALSE(has_header({}, "x"));
}

TEST(EventMetadata, PercentEncoding) {
  auto letters = [](unsigned char c) { return c >= 'a' && c <= 'z'; };
  EXPECT_EQ(percent_encode("ab/c d\xc3\xa9", letters), "ab%2Fc%20d%C3%A9");
  EXPECT_EQ(percent_encode("", letters), "");
}
