// The event -> JetStream message mapping: the subject, the headers in their order, and what is
// refused before it can reach the server (unsafe subjects, headers NATS would misread, too large).
#include "sinks/nats/message.h"

#include "delivery/event_fields.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <variant>

using namespace outbox;

namespace {

Event order_created() {
  Event e;
  e.id = "0190f1b2-0000-7000-8000-0000000000aa";
  e.aggregate_type = "order";
  e.aggregate_id = "42";
  e.event_type = "order_created";
  e.payload = R"({"n":1})";
  e.lsn = 0x1A2B3C4D;
  e.xid = 777;
  e.commit_time = "2026-12-02 02:40:00+00";
  return e;
}

const std::int64_t kMaxPayload = 1 << 20;

NatsMessage built(const Event& ev, const std::string& prefix = "outbox.") {
  auto r = build_nats_message(ev, prefix, kMaxPayload);
  if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << *e;
  return std::get<NatsMessage>(r);
}

std::string refusal(const Event& ev, const std::string& prefix = "outbox.", std::int64_t max_payload = kMaxPayload) {
  auto r = build_nats_message(ev, prefix, max_payload);
  if (auto* e = std::get_if<std::string>(&r)) return *e;
  ADD_FAILURE() << "accepted, subject " << std::get<NatsMessage>(r).subject;
  return {};
}

std::vector<std::string> names(const NatsMessage& m) {
  std::vector<std::string> v;
  for (const auto& h : m.headers) v.push_back(h.first);
  return v;
}

std::map<std::string, std::string> values(const NatsMessage& m) {
  return std::map<std::string, std::string>(m.headers.begin(), m.headers.end());
}

Header header(const std::string& name, HeaderValue::Kind kind) {
  Header h;
  h.name = name;
  h.value.kind = kind;
  return h;
}

Header text_header(const std::string& name, const std::string& value) {
  Header h = header(name, HeaderValue::Kind::String);
  h.value.s = value;
  return h;
}

}  // namespace

TEST(NatsMessage, SubjectIsThePrefixAndTheRoutingKeyOrTheDefaultOne) {
  Event ev = order_created();
  EXPECT_EQ(built(ev).subject, "outbox.order.order_created");
  ev.aggregate_type.reset();
  EXPECT_EQ(built(ev).subject, "outbox.order_created");
  ev.routing_key = "custom.key";
  EXPECT_EQ(built(ev).subject, "outbox.custom.key");
  EXPECT_EQ(built(ev, "").subject, "custom.key");
  EXPECT_EQ(built(ev, "tenant.a.").subject, "tenant.a.custom.key");
  EXPECT_EQ(nats_subject("p.", ev), "p.custom.key");
}

TEST(NatsMessage, HeadersAreTheEventsOwnThenMsgIdThenTheMetadata) {
  Event ev = order_created();
  ev.correlation_id = "corr-1";
  ev.causation_id = "cause-1";
  ev.headers.push_back(text_header("tenant", "acme"));
  Header attempt = header("attempt", HeaderValue::Kind::Int);
  attempt.value.i = 3;
  ev.headers.push_back(attempt);
  Header urgent = header("urgent", HeaderValue::Kind::Bool);
  urgent.value.b = true;
  ev.headers.push_back(urgent);
  Header ratio = header("ratio", HeaderValue::Kind::Double);
  ratio.value.d = 0.5;
  ev.headers.push_back(ratio);
  ev.headers.push_back(header("note", HeaderValue::Kind::Null));
  NatsMessage m = built(ev);
  EXPECT_EQ(names(m), (std::vector<std::string>{"tenant", "attempt", "urgent", "ratio", "note", "Nats-Msg-Id",
                                                "x-outbox-event-id", "x-outbox-event-type", "x-outbox-correlation-id",
                                                "x-outbox-aggregate-type", "x-outbox-aggregate-id", "x-outbox-lsn",
                                                "x-outbox-xid", "x-outbox-commit-time", "x-outbox-causation-id"}));
  auto v = values(m);
  EXPECT_EQ(v["tenant"], "acme");
  EXPECT_EQ(v["attempt"], "3");
  EXPECT_EQ(v["urgent"], "true");
  EXPECT_EQ(v["ratio"], "0.5");
  EXPECT_EQ(v["note"], "") << "an empty value is sent as it is";
  EXPECT_EQ(v["Nats-Msg-Id"], ev.id) << "JetStream de-duplicates by the event id";
  EXPECT_EQ(v["x-outbox-event-id"], ev.id);
  EXPECT_EQ(v["x-outbox-event-type"], "order_created");
  EXPECT_EQ(v["x-outbox-lsn"], "0/1A2B3C4D");
  EXPECT_EQ(v["x-outbox-xid"], "777");
  ASSERT_NE(m.data, nullptr);
  EXPECT_EQ(*m.data, ev.payload);
}

const char* const kTp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

Event traced() {
  Event e = order_created();
  e.traceparent = kTp;
  e.tracestate = "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7";
  e.priority = 7;
  e.schema_version = 3;
  return e;
}

NatsMessage with_cloudevents(const Event& ev, const std::string& source = "/orders-db") {
  auto r = build_nats_message(ev, "outbox.", kMaxPayload, source, 0);
  if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << *e;
  return std::get<NatsMessage>(r);
}

// traceparent and tracestate under their W3C names, the priority and the schema version as
// decimal text, after the ids and before the other metadata; none of it when not set.
TEST(NatsMessage, TraceContextPriorityAndSchemaVersionAreHeaders) {
  NatsMessage m = built(traced());
  EXPECT_EQ(names(m), (std::vector<std::string>{"Nats-Msg-Id", "x-outbox-event-id", "x-outbox-event-type",
                                                "traceparent", "tracestate", "priority", "x-outbox-aggregate-type",
                                                "x-outbox-aggregate-id", "x-outbox-lsn", "x-outbox-xid",
                                                "x-outbox-commit-time", "x-outbox-schema-version"}));
  auto v = values(m);
  EXPECT_EQ(v["traceparent"], kTp);
  EXPECT_EQ(v["tracestate"], "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7") << "W3C headers are sent as they are";
  EXPECT_EQ(v["priority"], "7");
  EXPECT_EQ(v["x-outbox-schema-version"], "3");
  for (const auto& n : names(built(order_created())))
    EXPECT_TRUE(n != "traceparent" && n != "tracestate" && n != "priority" && n != "x-outbox-schema-version") << n;
}

TEST(NatsMessage, AFieldReplacesTheOwnHeaderOfItsName) {
  Event ev = traced();
  ev.headers = {text_header("Priority", "high"), text_header("traceparent", "00-old"), text_header("keep", "v")};
  NatsMessage m = built(ev);
  auto n = names(m);
  EXPECT_EQ(n[0], "keep");
  EXPECT_EQ(std::count(n.begin(), n.end(), "traceparent"), 1);
  EXPECT_EQ(std::count(n.begin(), n.end(), "Priority"), 0);
  EXPECT_EQ(values(m)["traceparent"], kTp);
  EXPECT_EQ(values(m)["priority"], "7");
  Event own = order_created();
  own.headers = {text_header("priority", "high")};
  EXPECT_EQ(values(built(own))["priority"], "high") << "kept while the event has no priority";
}

TEST(NatsMessage, ContractFieldsOutOfRangeAreRefused) {
  Event ev = traced();
  ev.priority = 10;
  EXPECT_EQ(refusal(ev), "\"priority\" is 10, outside 0..9");
  ev = traced();
  ev.tracestate = std::string(kTracestateMax + 1, 'a');
  EXPECT_NE(refusal(ev).find("W3C tracestate"), std::string::npos);
}

// The NATS protocol binding, binary mode: every attribute a ce-* header, string values
// percent-encoded (space, '"', '%', non-ASCII); datacontenttype also as Content-Type.
TEST(NatsMessage, CloudEventsAreCeHeaders) {
  Event ev = traced();
  ev.event_type = "order créé";
  ev.aggregate_id = "42 \"x\" 100%";
  ev.routing_key = "order.created";
  ev.created_at = "2026-11-23 05:01:53.002315+00";
  NatsMessage m = with_cloudevents(ev);
  std::vector<std::string> ce;
  for (const auto& n : names(m))
    if (n.rfind("ce-", 0) == 0 || n == "Content-Type") ce.push_back(n);
  EXPECT_EQ(ce, (std::vector<std::string>{"ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject",
                                          "ce-dataschema", "ce-traceparent", "ce-tracestate", "ce-datacontenttype",
                                          "Content-Type"}));
  auto v = values(m);
  EXPECT_EQ(v["ce-specversion"], "1.0");
  EXPECT_EQ(v["ce-id"], ev.id);
  EXPECT_EQ(v["ce-source"], "/orders-db");
  EXPECT_EQ(v["ce-type"], "order%20cr%C3%A9%C3%A9");
  EXPECT_EQ(v["ce-time"], "2026-11-23T05:01:53.002315Z");
  EXPECT_EQ(v["ce-subject"], "42%20%22x%22%20100%25");
  // The URI's own %XX are encoded again (the binding's rule: a consumer decodes one round).
  EXPECT_EQ(v["ce-dataschema"], "/orders-db/schemas/order%2520cr%25C3%25A9%25C3%25A9/3");
  EXPECT_EQ(v["ce-traceparent"], kTp);
  EXPECT_EQ(v["ce-tracestate"], "congo=t61rcWkgMzE,%20rojo=00f067aa0ba902b7");
  EXPECT_EQ(v["ce-datacontenttype"], "application/json");
  EXPECT_EQ(v["Content-Type"], "application/json");
  // Without a source, none; without created_at the commit time is the time.
  for (const auto& n : names(built(ev))) EXPECT_TRUE(n.rfind("ce-", 0) != 0 && n != "Content-Type") << n;
  EXPECT_EQ(values(with_cloudevents(order_created()))["ce-time"], "2026-12-02T02:40:00.000000Z");
}

TEST(NatsMessage, AnEventWithoutIdHasNoMsgIdAndNoCorrelationHeaderWhenUnset) {
  Event ev = order_created();
  ev.id.clear();
  auto n = names(built(ev));
  EXPECT_EQ(std::count(n.begin(), n.end(), "Nats-Msg-Id"), 0);
  EXPECT_EQ(std::count(n.begin(), n.end(), "x-outbox-event-id"), 0);
  EXPECT_EQ(std::count(n.begin(), n.end(), "x-outbox-correlation-id"), 0);
}

TEST(NatsMessage, AnEventMarkedInvalidIsRefusedWithItsReason) {
  Event ev = order_created();
  ev.invalid = "headers: not an object";
  EXPECT_EQ(refusal(ev), "headers: not an object");
}

TEST(NatsMessage, UnsafeRoutingKeysAreRefusedNamingWhereTheSubjectCameFrom) {
  struct Case {
    std::string routing_key, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"a..b", "an empty token"},
           {"a.", "an empty token"},
           {".a", "an empty token"},
           {"", "an empty token"},
           {"a b", "whitespace or a control character (0x20)"},
           {"a\tb", "(0x09)"},
           {std::string("a\x01") + "b", "control character (0x01)"},
           {"a\x7f", "(0x7f)"},
           {"a.*", "the wildcard token \"*\""},
           {"a.>", "the wildcard token \">\""},
           {">", "wildcard"},
           {std::string(2000, 'a'), "more than the 1024 a subject may have"},
       }) {
    Event ev = order_created();
    ev.routing_key = c.routing_key;
    std::string r = refusal(ev);
    EXPECT_EQ(r.rfind("NATS subject \"", 0), 0u) << r;
    EXPECT_NE(r.find("from routing_key: "), std::string::npos) << r;
    EXPECT_NE(r.find(c.expect), std::string::npos) << c.routing_key << ": " << r;
  }
  Event ev = order_created();
  ev.event_type = "order created";
  EXPECT_NE(refusal(ev).find("from aggregate_type/event_type (the default routing key): holds whitespace"),
            std::string::npos);
}

TEST(NatsMessage, ALongSubjectIsShownShortened) {
  Event ev = order_created();
  ev.routing_key = std::string(2000, 'a');
  std::string r = refusal(ev);
  EXPECT_NE(r.find("\"outbox." + std::string(193, 'a') + "...\""), std::string::npos) << r;
  ev.routing_key = std::string(kMaxNatsSubject - 7, 'a');  // with "outbox.": exactly the limit
  EXPECT_EQ(built(ev).subject.size(), kMaxNatsSubject);
}

TEST(NatsMessage, TheServersApiAndReplySubjectsAreNeverReachedWhateverThePrefix) {
  for (const std::string& key : {"$JS.API.STREAM.PURGE.X", "$KV.bucket.k", "$SYS.REQ.SERVER.PING", "_INBOX.abc"}) {
    Event ev = order_created();
    ev.routing_key = key;
    EXPECT_NE(refusal(ev, "").find("starts with '$' or \"_INBOX.\""), std::string::npos) << key;
    EXPECT_EQ(built(ev, "outbox.").subject, "outbox." + key) << "under a prefix it is an ordinary subject";
  }
  Event ev = order_created();
  ev.routing_key = "STREAM.PURGE.X";
  EXPECT_NE(refusal(ev, "$JS.API.").find("starts with '$'"), std::string::npos);
  EXPECT_NE(refusal(ev, "_INBOX.").find("\"_INBOX.\""), std::string::npos);
}

TEST(NatsMessage, HeadersNatsWouldMisreadOrTheServerOwnsAreRefused) {
  struct Case {
    Header h;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {text_header("Nats-Msg-Id", "x"), "header \"Nats-Msg-Id\" uses the prefix Nats-"},
           {text_header("nAtS-Rollup", "all"), "uses the prefix Nats-"},
           {text_header("X-Outbox-Lsn", "0/0"), "reserved prefix x-outbox-"},
           {text_header("", "v"), "a header name is empty"},
           {text_header("a:b", "v"), "header name \"a:b\" holds ':', whitespace or a control character"},
           {text_header("a b", "v"), "header name \"a b\""},
           {text_header("a\x01", "v"), "holds ':', whitespace or a control character"},
           {text_header("k", "v\r\nNats-Rollup: all"), "header \"k\" holds a CR or LF"},
           {text_header("k", "v\n"), "header \"k\" holds a CR or LF"},
           {text_header("k", std::string("v\0w", 3)), "header \"k\" holds a NUL byte"},
       }) {
    Event ev = order_created();
    ev.headers.push_back(c.h);
    std::string r = refusal(ev);
    EXPECT_EQ(r.rfind("headers: ", 0), 0u) << r;
    EXPECT_NE(r.find(c.expect), std::string::npos) << c.h.name << ": " << r;
  }
}

TEST(NatsMessage, ACrOrLfInAValueTheRelaySetsNamesThatValue) {
  Event ev = order_created();
  ev.correlation_id = "c\nd";
  EXPECT_EQ(refusal(ev), "headers: the value of x-outbox-correlation-id holds a CR or LF");
  ev = order_created();
  ev.id = "id\r";
  EXPECT_EQ(refusal(ev), "headers: the value of Nats-Msg-Id holds a CR or LF");
  ev = order_created();
  ev.aggregate_id = "4\n2";
  EXPECT_EQ(refusal(ev), "headers: the value of x-outbox-aggregate-id holds a CR or LF");
}

TEST(NatsMessage, PayloadAndHeadersTogetherMustFitTheServersMaxPayload) {
  Event ev = order_created();
  auto r = build_nats_message(ev, "outbox.", 1 << 20);
  ASSERT_TRUE(std::holds_alternative<NatsMessage>(r));
  // The header block: "NATS/1.0\r\n", "name: value\r\n" per header, "\r\n".
  std::size_t hdr_bytes = 12;
  for (const auto& [k, v] : std::get<NatsMessage>(r).headers) hdr_bytes += k.size() + v.size() + 4;
  std::int64_t exact = static_cast<std::int64_t>(ev.payload.size() + hdr_bytes);
  EXPECT_TRUE(std::holds_alternative<NatsMessage>(build_nats_message(ev, "outbox.", exact)));
  EXPECT_EQ(refusal(ev, "outbox.", exact - 1),
            "payload: " + std::to_string(ev.payload.size()) + " bytes with " + std::to_string(hdr_bytes) +
                " bytes of headers, more than the server's max_payload of " + std::to_string(exact - 1));
}

TEST(NatsMessage, TheSubjectIsCheckedBeforeTheHeaders) {
  Event ev = order_created();
  ev.routing_key = "a b";
  ev.headers.push_back(text_header("Nats-Rollup", "all"));
  EXPECT_EQ(refusal(ev).rfind("NATS subject", 0), 0u);
}

TEST(NatsSubjectFilters, CoversWhenEverySubjectOfThePatternMatches) {
  EXPECT_TRUE(filter_covers("outbox.>", "outbox.>"));
  EXPECT_TRUE(filter_covers(">", "outbox.>"));
  EXPECT_TRUE(filter_covers("outbox.*", "outbox.order"));
  EXPECT_TRUE(filter_covers("outbox.*.created", "outbox.*.created"));
  EXPECT_FALSE(filter_covers("outbox.*", "outbox.>")) << "> also matches outbox.a.b";
  EXPECT_FALSE(filter_covers("outbox.order.>", "outbox.>"));
  EXPECT_FALSE(filter_covers("outbox.order", "outbox.*"));
  EXPECT_FALSE(filter_covers("outbox.>", "outbox")) << "> needs one token at least";
  EXPECT_FALSE(filter_covers("other.>", "outbox.>"));
}

TEST(NatsSubjectFilters, OverlapWhenSomeSubjectMatchesBoth) {
  EXPECT_TRUE(filters_overlap("outbox.order.>", "outbox.>"));
  EXPECT_TRUE(filters_overlap("outbox.*.created", "outbox.order.*"));
  EXPECT_TRUE(filters_overlap("a.b", "a.b"));
  EXPECT_FALSE(filters_overlap("a.b", "a.c"));
  EXPECT_FALSE(filters_overlap("a.*", "a.b.c"));
  EXPECT_FALSE(filters_overlap("other.>", "outbox.>"));
}

// What a dead letter says NATS refused: the subject named, in NATS's words (not RabbitMQ's
// "unroutable" or "nacked").
TEST(NatsRefusal, NamesTheSinkAndTheSubject) {
  EXPECT_EQ(nats_refusal(Refusal::Returned, "evts.order"), R"(NATS: no JetStream stream captures subject "evts.order")");
  EXPECT_EQ(nats_refusal(Refusal::Nacked, "evts.order", 10077),
            R"(NATS: JetStream refused subject "evts.order" (error 10077))");
  EXPECT_EQ(nats_refusal(Refusal::Nacked, "evts.order"), R"(NATS: publishing to subject "evts.order" is not permitted)");
  for (Refusal r : {Refusal::Returned, Refusal::Nacked, Refusal::ExchangeMissing, Refusal::DestinationMissing}) {
    std::string t = nats_refusal(r, "s");
    EXPECT_EQ(t.rfind("NATS: ", 0), 0u) << t;
    EXPECT_EQ(t.find("unroutable"), std::string::npos) << t;
    EXPECT_EQ(t.find("nacked"), std::string::npos) << t;
  }
}

// A prefix that ends inside a token ("evts": subjects evtsOrder.created): which filters could
// take one of its subjects.
TEST(NatsMessage, FilterMayTakeAPrefixThatEndsInsideAToken) {
  EXPECT_TRUE(filter_may_take_prefix(">", "evts"));
  EXPECT_TRUE(filter_may_take_prefix("*.created", "evts"));
  EXPECT_TRUE(filter_may_take_prefix("evtsOrder.>", "evts"));
  EXPECT_TRUE(filter_may_take_prefix("a.evts.>", "a.ev"));
  EXPECT_TRUE(filter_may_take_prefix("a.*.x", "a.ev"));
  EXPECT_FALSE(filter_may_take_prefix("orders.>", "evts"));
  EXPECT_FALSE(filter_may_take_prefix("ev.>", "evts"));
  EXPECT_FALSE(filter_may_take_prefix("b.evts.>", "a.evts"));
  EXPECT_FALSE(filter_may_take_prefix("a", "a.ev"));
}
