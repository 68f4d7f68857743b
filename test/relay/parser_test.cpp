#include <gtest/gtest.h>

#include <string>

#include "wal2json_parser.h"

using namespace outbox;

namespace {
// Real lines from wal2json 2.5 on PostgreSQL 15 (format-version 2, include-xids, include-timestamp,
// include-types 0), one outbox row in storage mode `table` and one logical message in mode `wal`.
const char* kBegin = R"({"action":"B","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00"})";
const char* kCommit = R"({"action":"C","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00"})";
const char* kInsert =
    R"({"action":"I","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00","schema":"outbox","table":"events","columns":[{"name":"id","value":"ea629ed9-080d-42ba-a809-5a7c5831b113"},{"name":"aggregate_type","value":"order"},{"name":"aggregate_id","value":"42"},{"name":"event_type","value":"created"},{"name":"payload","value":"{\"a\": \"x\\\"y\\n\", \"n\": 1.5}"},{"name":"headers","value":"{\"h\": \"v\", \"k\": 3}"},{"name":"exchange","value":null},{"name":"routing_key","value":null},{"name":"correlation_id","value":null},{"name":"causation_id","value":null},{"name":"created_at","value":"2026-11-23 05:01:53.002656+00"}]})";
const char* kMessage =
    R"({"action":"M","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00","transactional":true,"prefix":"outbox","content":"{\"id\":\"0190\",\"aggregate_type\":\"invoice\",\"aggregate_id\":null,\"event_type\":\"e\",\"payload\":{\"a\":1, \"big\":123456789012345678901234567890.5},\"headers\":{\"s\":\"x\",\"i\":-3,\"f\":2.5,\"b\":true,\"n\":null},\"exchange\":\"ex\",\"routing_key\":\"rk\",\"correlation_id\":\"c1\",\"causation_id\":\"c0\",\"created_at\":\"2026-01-01T00:00:00+00:00\"}"})";
}  // namespace

TEST(Parser, BeginAndCommit) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(kBegin, 10, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
  EXPECT_EQ(out.xid, 728u);
  EXPECT_EQ(out.timestamp, "2026-11-23 05:01:53.004129+00");
  p.parse(kCommit, 20, out);
  EXPECT_EQ(out.kind, LineKind::Commit);
  EXPECT_EQ(out.xid, 728u);
  // Without include-xids / include-timestamp.
  p.parse(R"({"action":"B"})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
  EXPECT_EQ(out.xid, 0u);
  EXPECT_EQ(out.timestamp, "");
}

TEST(Parser, TableRowWithJsonAsStrings) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(kInsert, 0x1234, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  const Event& e = out.event;
  EXPECT_EQ(e.id, "ea629ed9-080d-42ba-a809-5a7c5831b113");
  EXPECT_EQ(e.aggregate_type, "order");
  EXPECT_EQ(e.aggregate_id, "42");
  EXPECT_EQ(e.event_type, "created");
  EXPECT_EQ(e.payload, R"({"a": "x\"y\n", "n": 1.5})");
  ASSERT_EQ(e.headers.size(), 2u);
  EXPECT_EQ(e.headers[0].name, "h");
  EXPECT_EQ(e.headers[0].value.kind, HeaderValue::Kind::String);
  EXPECT_EQ(e.headers[0].value.s, "v");
  EXPECT_EQ(e.headers[1].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(e.headers[1].value.i, 3);
  EXPECT_FALSE(e.exchange);
  EXPECT_FALSE(e.routing_key);
  EXPECT_FALSE(e.correlation_id);
  EXPECT_EQ(e.created_at, "2026-11-23 05:01:53.002656+00");
  EXPECT_EQ(e.lsn, 0x1234u);
  EXPECT_EQ(e.xid, 728u);
  EXPECT_FALSE(e.from_message);
}

TEST(Parser, WalMessageWithEmbeddedJson) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(kMessage, 99, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  const Event& e = out.event;
  EXPECT_TRUE(e.from_message);
  EXPECT_TRUE(e.transactional);
  EXPECT_EQ(e.id, "0190");
  EXPECT_EQ(e.aggregate_type, "invoice");
  EXPECT_FALSE(e.aggregate_id);
  // byte for byte, the big number keeps its digits
  EXPECT_EQ(e.payload, R"({"a":1, "big":123456789012345678901234567890.5})");
  ASSERT_EQ(e.headers.size(), 5u);
  EXPECT_EQ(e.headers[1].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(e.headers[1].value.i, -3);
  EXPECT_EQ(e.headers[2].value.kind, HeaderValue::Kind::Double);
  EXPECT_DOUBLE_EQ(e.headers[2].value.d, 2.5);
  EXPECT_EQ(e.headers[3].value.kind, HeaderValue::Kind::Bool);
  EXPECT_EQ(e.headers[4].value.kind, HeaderValue::Kind::Null);
  EXPECT_EQ(e.exchange, "ex");
  EXPECT_EQ(e.routing_key, "rk");
  EXPECT_EQ(e.correlation_id, "c1");
  EXPECT_EQ(e.causation_id, "c0");
  EXPECT_EQ(e.created_at, "2026-01-01T00:00:00+00:00");
}

// Real lines from outbox_decoder (format-version 2, outbox 1): the same wire format, one
// transaction with a table row and a wal message.
TEST(Parser, OutboxDecoderLines) {
  const char* lines[] = {
      R"({"action":"B","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00"})",
      R"({"action":"I","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00","schema":"outbox","table":"events","columns":[{"name":"id","value":"01a206f4-b323-744b-8afe-2745731e8f4a"},{"name":"aggregate_type","value":"order"},{"name":"aggregate_id","value":"42"},{"name":"event_type","value":"created"},{"name":"payload","value":"{\"a\": \"q\\\"\", \"n\": 1.50}"},{"name":"headers","value":"{\"h\": \"v\"}"},{"name":"exchange","value":null},{"name":"routing_key","value":null},{"name":"correlation_id","value":"c1"},{"name":"causation_id","value":null},{"name":"created_at","value":"2026-11-23 05:50:29.666044+00"}]})",
      R"({"action":"M","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00","transactional":true,"prefix":"outbox","content":"{\"id\":\"01a206f4-b324-708f-9581-81de7a2fde29\",\"aggregate_type\":null,\"aggregate_id\":\"7\",\"event_type\":\"walled\",\"payload\":[1, {\"b\": null}],\"headers\":{},\"exchange\":\"ex\",\"routing_key\":\"rk\",\"correlation_id\":null,\"causation_id\":\"c0\",\"created_at\":\"2026-11-23T05:50:29.666044+00:00\"}"})",
      R"({"action":"C","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00"})"};
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(lines[0], 1, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
  p.parse(lines[1], 2, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload, R"({"a": "q\"", "n": 1.50})");
  EXPECT_EQ(out.event.correlation_id, "c1");
  ASSERT_EQ(out.event.headers.size(), 1u);
  p.parse(lines[2], 3, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload, R"([1, {"b": null}])");
  EXPECT_FALSE(out.event.aggregate_type);
  EXPECT_EQ(out.event.aggregate_id, "7");
  EXPECT_EQ(out.event.exchange, "ex");
  EXPECT_EQ(out.event.routing_key, "rk");
  EXPECT_EQ(out.event.causation_id, "c0");
  EXPECT_TRUE(out.event.headers.empty());
  EXPECT_EQ(out.event.created_at, "2026-11-23T05:50:29.666044+00:00");
  p.parse(lines[3], 4, out);
  EXPECT_EQ(out.kind, LineKind::Commit);
  EXPECT_EQ(out.xid, 1010163u);
}

TEST(Parser, NonTransactionalMessage) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(R"({"action":"M","xid":null,"timestamp":null,"transactional":false,"prefix":"outbox","content":"{\"event_type\":\"x\",\"payload\":[1]}"})", 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_FALSE(out.event.transactional);
  EXPECT_EQ(out.event.xid, 0u);
  EXPECT_EQ(out.event.payload, "[1]");
}

TEST(Parser, IgnoresWhatIsNotOurs) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(R"({"action":"I","schema":"public","table":"events","columns":[]})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Ignored);
  p.parse(R"({"action":"M","transactional":true,"prefix":"other","content":"x"})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Ignored);
  p.parse(R"({"action":"U","schema":"outbox","table":"events","columns":[]})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Ignored);
  p.parse(R"({"action":"D","schema":"outbox","table":"events","identity":[]})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Ignored);
  p.parse(R"({"action":"T","schema":"outbox","table":"events"})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Ignored);
}

TEST(Parser, EscapesAndUnicode) {
  Wal2jsonParser p;
  ParsedLine out;
  std::string line =
      R"({"action":"I","schema":"outbox","table":"events","columns":[{"name":"id","value":"1"},{"name":"event_type","value":"t\u00e9\t\"q\""},{"name":"payload","value":"{\"s\": \"\\u0001 \\\\ é 😀\"}"},{"name":"headers","value":"{}"}]})";
  p.parse(line, 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.event_type, "t\xc3\xa9\t\"q\"");
  EXPECT_EQ(out.event.payload, "{\"s\": \"\\u0001 \\\\ é 😀\"}");
  EXPECT_TRUE(out.event.headers.empty());
}

TEST(Parser, HugePayload) {
  Wal2jsonParser p;
  ParsedLine out;
  std::string big(8 * 1024 * 1024, 'x');
  std::string payload_json = "{\\\"blob\\\": \\\"" + big + "\\\"}";
  std::string line = R"({"action":"I","schema":"outbox","table":"events","columns":[{"name":"id","value":"1"},{"name":"event_type","value":"big"},{"name":"payload","value":")" +
                     payload_json + R"("}]})";
  p.parse(line, 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload.size(), big.size() + 12);
  // and the message form
  std::string msg = R"({"action":"M","transactional":true,"prefix":"outbox","content":"{\"event_type\":\"big\",\"payload\":{\"blob\":\")" +
                    big + R"(\"}}"})";
  p.parse(msg, 2, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload.size(), big.size() + 11);
  // the parser is reusable after a huge line
  p.parse(kBegin, 3, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
}

TEST(Parser, MalformedInputNamesTheProblem) {
  Wal2jsonParser p;
  ParsedLine out;
  EXPECT_THROW(p.parse("{", 1, out), ParseError);
  EXPECT_THROW(p.parse("[]", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"xid":1})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","schema":"outbox","table":"events","columns":[{"name":"payload","value":"{}"}]})", 1, out),
               ParseError);  // no event_type
  EXPECT_THROW(p.parse(R"({"action":"M","transactional":true,"prefix":"outbox","content":"not json"})", 1, out), ParseError);
  try {
    p.parse(R"({"action":"M","transactional":true,"prefix":"outbox","content":"{\"payload\":1}"})", 1, out);
    FAIL();
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("event_type"), std::string::npos);
  }
}
