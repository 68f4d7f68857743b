#include <gtest/gtest.h>


#include <nlohmann/json.hpp>

#include <string>

#include "delivery/event_fields.h"
#include "source/wal2json_parser.h"

using namespace outbox;

namespace {
// Real lines from wal2json 2.5 on PostgreSQL 15 (format-version 2, include-xids, include-timestamp,
// include-types 0), one outbox row in storage mode `table` and one logical message in mode `wal`.
const char* kBegin = R"({"action":"B","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00"})";
const char* kCommit = R"({"action":"C","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00"})";
const char* kInsert =
    R"({"action":"I","xid":728,"timestamp":"2026-11-23 05:01:53.004129+00","schema":"outbox","table":"events","columns":[{"name":"id","value":"ea629ed9-080d-42ba-a809-5a7c5831b113"},{"name":"aggregate_type","value":"order"},{"name":"aggregate_id","value":"42"},{"name":"event_type","value":"created"},{"name":"payload","value":"{\"a\": \"x\\\"y\\n\", \"n\": 1.5}"},{"name":"headers","value":"{\"h\": \"v\", \"k\": 3}"},{"name":"exchange","value":null},{"name":"routing_key","value":null},{"name":"correlation_id","value":null},{"name":"causation_id","value":null},{"name":"created_at","value":"2026-11-23 05:01:53.002656+00"}]})";
// The event of a wal-storage message (its content is this body with the MAC in front).
const char* kBody =
    R"({"id":"0190","aggregate_type":"invoice","aggregate_id":null,"event_type":"e","payload":{"a":1, "big":123456789012345678901234567890.5},"headers":{"s":"x","i":-3,"f":2.5,"b":true,"n":null},"exchange":"ex","routing_key":"rk","correlation_id":"c1","causation_id":"c0","created_at":"2026-01-01T00:00:00+00:00"})";

const std::string kKey = "0123456789abcdef0123456789abcdef";  // 32 bytes, as outbox.message_key()

// What outbox_emit writes: {"mac":"<hex of HMAC-SHA256(key, body)>", + body without its '{'.
std::string signed_content(const std::string& body, const std::string& key = kKey) {
  return "{\"mac\":\"" + hmac_sha256_hex(key, body) + "\"," + body.substr(1);
}

// What outbox_emit of 0.3 writes (common/outbox_wire.h): the key id, and the MAC over
// "<xid>:" + body.
std::string signed_content_v2(const std::string& body, std::uint32_t key_id, const std::string& key = kKey,
                              std::uint64_t xid = 728) {
  return "{\"mac\":\"" + hmac_sha256_hex(key, std::to_string(xid) + ":" + body) + "\",\"kid\":" + std::to_string(key_id) +
         "," + body.substr(1);
}

// A format-2 message line as the plugin writes it, content escaped as a JSON string.
std::string message_line(const std::string& content, bool transactional = true, std::uint64_t xid = 728) {
  return std::string(R"({"action":"M","xid":)") + (transactional ? std::to_string(xid) : "null") +
         R"(,"timestamp":"2026-11-23 05:01:53.004129+00","transactional":)" + (transactional ? "true" : "false") +
         R"(,"prefix":"outbox","content":)" + nlohmann::json(content).dump() + "}";
}

std::string row_line(const std::string& columns) {
  return R"({"action":"I","xid":9,"schema":"outbox","table":"events","columns":[)" + columns + "]}";
}
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
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(message_line(signed_content(kBody)), 99, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  const Event& e = out.event;
  EXPECT_EQ(e.invalid, "");
  EXPECT_TRUE(e.from_message);
  EXPECT_TRUE(e.transactional);
  EXPECT_EQ(e.lsn, 99u);
  EXPECT_EQ(e.xid, 728u);
  EXPECT_EQ(e.id, "0190");
  EXPECT_EQ(e.aggregate_type, "invoice");
  EXPECT_FALSE(e.aggregate_id);
  // byte for byte, the big number keeps its digits
  EXPECT_EQ(e.payload, R"({"a":1, "big":123456789012345678901234567890.5})");
  ASSERT_EQ(e.headers.size(), 5u);
  EXPECT_EQ(e.headers[0].name, "s");
  EXPECT_EQ(e.headers[0].value.kind, HeaderValue::Kind::String);
  EXPECT_EQ(e.headers[0].value.s, "x");
  EXPECT_EQ(e.headers[1].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(e.headers[1].value.i, -3);
  EXPECT_EQ(e.headers[2].value.kind, HeaderValue::Kind::Double);
  EXPECT_DOUBLE_EQ(e.headers[2].value.d, 2.5);
  EXPECT_EQ(e.headers[3].value.kind, HeaderValue::Kind::Bool);
  EXPECT_TRUE(e.headers[3].value.b);
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
  const std::string body =
      R"({"id":"01a206f4-b324-708f-9581-81de7a2fde29","aggregate_type":null,"aggregate_id":"7","event_type":"walled","payload":[1, {"b": null}],"headers":{},"exchange":"ex","routing_key":"rk","correlation_id":null,"causation_id":"c0","created_at":"2026-11-23T05:50:29.666044+00:00"})";
  const std::string lines[] = {
      R"({"action":"B","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00"})",
      R"({"action":"I","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00","schema":"outbox","table":"events","columns":[{"name":"id","value":"01a206f4-b323-744b-8afe-2745731e8f4a"},{"name":"aggregate_type","value":"order"},{"name":"aggregate_id","value":"42"},{"name":"event_type","value":"created"},{"name":"payload","value":"{\"a\": \"q\\\"\", \"n\": 1.50}"},{"name":"headers","value":"{\"h\": \"v\"}"},{"name":"exchange","value":null},{"name":"routing_key","value":null},{"name":"correlation_id","value":"c1"},{"name":"causation_id","value":null},{"name":"created_at","value":"2026-11-23 05:50:29.666044+00"}]})",
      R"({"action":"M","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00","transactional":true,"prefix":"outbox","content":)" +
          nlohmann::json(signed_content(body)).dump() + "}",
      R"({"action":"C","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00"})"};
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(lines[0], 1, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
  p.parse(lines[1], 2, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload, R"({"a": "q\"", "n": 1.50})");
  EXPECT_EQ(out.event.correlation_id, "c1");
  ASSERT_EQ(out.event.headers.size(), 1u);
  p.parse(lines[2], 3, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.invalid, "");
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

// outbox_emit writes transactional messages only. A signed one outside a transaction is a copy
// (pg_logical_emit_message(false, ...)) that would be published even if its writer rolled back:
// rejected, in 0.2's unbound form too.
TEST(Parser, NonTransactionalMessageIsRejected) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(message_line(signed_content(R"({"event_type":"x","payload":[1]})"), false), 5, out);
  ASSERT_EQ(out.kind, LineKind::Rejected);
  EXPECT_NE(out.reject_reason.find("outside a transaction"), std::string::npos) << out.reject_reason;
  EXPECT_FALSE(out.unverified);
  p.parse(message_line(signed_content(R"({"event_type":"x","payload":[1]})"), true), 5, out);
  EXPECT_EQ(out.kind, LineKind::Event) << out.reject_reason;
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
  p.set_message_key(kKey);
  ParsedLine out;
  std::string big(8 * 1024 * 1024, 'x');
  std::string payload_json = "{\\\"blob\\\": \\\"" + big + "\\\"}";
  std::string line = R"({"action":"I","schema":"outbox","table":"events","columns":[{"name":"id","value":"1"},{"name":"event_type","value":"big"},{"name":"payload","value":")" +
                     payload_json + R"("}]})";
  p.parse(line, 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload.size(), big.size() + 12);
  // and the message form
  p.parse(message_line(signed_content(R"({"event_type":"big","payload":{"blob":")" + big + R"("}})")), 2, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.payload.size(), big.size() + 11);
  // the parser is reusable after a huge line
  p.parse(kBegin, 3, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
  EXPECT_EQ(out.timestamp, "2026-11-23 05:01:53.004129+00");
}

// Only the plugin's own framing throws: no role can write these lines.
TEST(Parser, BrokenFramingThrows) {
  Wal2jsonParser p;
  ParsedLine out;
  EXPECT_THROW(p.parse(R"({"xid":1})", 1, out), ParseError);  // B/C/... without action (format-version 1)
  EXPECT_THROW(p.parse(R"({"action":7})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"BEGIN"})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","table":"events","columns":[]})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","schema":"outbox","table":"events"})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","schema":"outbox","table":"events","columns":{}})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","schema":"outbox","table":"events","columns":[1]})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","schema":"outbox","table":"events","columns":[{"value":1}]})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"I","schema":"outbox","table":"events","columns":[{"name":"id"}]})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"M","transactional":true,"content":"x"})", 1, out), ParseError);
  EXPECT_THROW(p.parse(R"({"action":"M","transactional":true,"prefix":"outbox","content":7})", 1, out), ParseError);
  try {
    p.parse(R"({"action":"I","schema":"outbox","table":"events"})", 1, out);
    FAIL();
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("columns"), std::string::npos) << e.what();
  }
}

// What any role can put on the stream is never a throw.
TEST(Parser, UnparseableLinesAreRejected) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  for (std::string line : {std::string(""), std::string("{"), std::string("not json"), std::string(R"({"action":"B"} x)"),
                           std::string("[]"), std::string("42"),
                           std::string("{\"action\":\"M\",\"prefix\":\"outbox\",\"content\":\"\xff\xfe\"}"),
                           std::string("{\"action\":\"M\",\"prefix\":\"outbox\",\"content\":\"\xc3\x28\"}"),
                           std::string(R"({"action":"M","prefix":"outbox","content":"\ud800"})")}) {
    ASSERT_NO_THROW(p.parse(line, 1, out)) << line;
    EXPECT_EQ(out.kind, LineKind::Rejected) << line;
    EXPECT_FALSE(out.reject_reason.empty()) << line;
  }
  p.parse("", 1, out);
  EXPECT_NE(out.reject_reason.find("empty"), std::string::npos) << out.reject_reason;
  p.parse("{\"action\":\"M\",\"prefix\":\"outbox\",\"content\":\"\xff\"}", 1, out);
  EXPECT_NE(out.reject_reason.find("UTF-8"), std::string::npos) << out.reject_reason;
  // the parser carries on
  p.parse(kBegin, 2, out);
  EXPECT_EQ(out.kind, LineKind::Begin);
}

TEST(Parser, ForgedMessagesAreRejected) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  // what any role can write with pg_logical_emit_message('outbox', ...): no MAC at all
  p.parse(message_line(kBody), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_NE(out.reject_reason.find("without a MAC"), std::string::npos) << out.reject_reason;
  EXPECT_EQ(out.xid, 728u);
  // content that is not JSON at all
  p.parse(message_line("not json"), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  p.parse(message_line(""), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  // a MAC made with another key
  p.parse(message_line(signed_content(kBody, "another key of thirty-two bytes!")), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_NE(out.reject_reason.find("does not verify"), std::string::npos) << out.reject_reason;
  // a wrong MAC of the right shape
  std::string wrong = signed_content(kBody);
  wrong[8] = wrong[8] == '0' ? '1' : '0';
  p.parse(message_line(wrong), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  // the right MAC, the body changed by one byte
  std::string changed = signed_content(kBody);
  auto at = changed.find("\"rk\"");
  ASSERT_NE(at, std::string::npos);
  changed[at + 1] = 'x';
  p.parse(message_line(changed), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_NE(out.reject_reason.find("does not verify"), std::string::npos) << out.reject_reason;
  // a MAC that is not 64 lower-case hex digits
  std::string upper = signed_content(kBody);
  for (std::size_t i = 8; i < 72; ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  p.parse(message_line(upper), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_NE(out.reject_reason.find("malformed"), std::string::npos) << out.reject_reason;
  p.parse(message_line(R"({"mac":"abc","id":"1"})"), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  // and the genuine one passes
  p.parse(message_line(signed_content(kBody)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Event) << out.reject_reason;
}

// outbox_decoder's line for an `outbox` message above its max-outbox-message-bytes: the content
// left out, its size in a member of the line (common/outbox_wire.h). Rejected naming the size
// and the limit, with or without the key; a role's content that looks like the marker is not it.
TEST(Parser, OversizedMessageMarkerIsRejectedNamingSizeAndLimit) {
  const std::string marker =
      R"({"action":"M","xid":731,"timestamp":"2026-11-23 05:01:53.004129+00","transactional":true,"prefix":"outbox","content":null,"oversized":{"bytes":188743680,"limit":67108864}})";
  for (bool with_key : {true, false}) {
    Wal2jsonParser p;
    if (with_key) p.set_message_key(kKey);
    ParsedLine out;
    p.parse(marker, 5, out);
    EXPECT_EQ(out.kind, LineKind::Rejected);
    EXPECT_EQ(out.xid, 731u);
    EXPECT_NE(out.reject_reason.find("188743680 bytes"), std::string::npos) << out.reject_reason;
    EXPECT_NE(out.reject_reason.find("max-outbox-message-bytes (67108864 bytes)"), std::string::npos)
        << out.reject_reason;
    // the marker of a message under another prefix is not ours
    std::string other = marker;
    other.replace(other.find("\"outbox\""), 8, "\"other\"");
    p.parse(other, 5, out);
    EXPECT_EQ(out.kind, LineKind::Ignored);
    // content that imitates the marker is an ordinary forged message
    p.parse(message_line(R"({"oversized":{"bytes":1,"limit":1}})"), 5, out);
    EXPECT_EQ(out.kind, LineKind::Rejected);
    EXPECT_EQ(out.reject_reason.find("left out by outbox_decoder"), std::string::npos) << out.reject_reason;
  }
  // a marker member that is not what the plugin writes is broken framing
  Wal2jsonParser p;
  ParsedLine out;
  EXPECT_THROW(p.parse(R"({"action":"M","xid":1,"prefix":"outbox","content":null,"oversized":7})", 5, out), ParseError);
}

TEST(Parser, WithoutKeyEveryMessageIsRejectedNamingTheFix) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(message_line(signed_content(kBody)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_NE(out.reject_reason.find("outbox.grant_relay("), std::string::npos) << out.reject_reason;
  EXPECT_NE(out.reject_reason.find("key"), std::string::npos) << out.reject_reason;
  // table rows need no key
  p.parse(kInsert, 2, out);
  EXPECT_EQ(out.kind, LineKind::Event);
  // a key of the wrong size is refused, naming its size
  try {
    p.set_message_key("short");
    FAIL() << "a 5-byte key was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("5 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p.message_key_count(), 0u);
  p.set_message_key(kKey);
  p.parse(message_line(signed_content(kBody)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Event) << out.reject_reason;
}

// 0.3's messages name their key and are bound to their transaction.
TEST(Parser, SignedMessageNamesItsKeyAndItsTransaction) {
  const std::string other_key = "fedcba9876543210fedcba9876543210";
  Wal2jsonParser p;
  p.add_message_key(7, kKey);
  p.add_message_key(123456789, other_key);
  ParsedLine out;
  p.parse(message_line(signed_content_v2(kBody, 7)), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.id, "0190");
  p.parse(message_line(signed_content_v2(kBody, 123456789, other_key)), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;

  // a genuine message copied into another transaction (a role with REPLICATION replaying it)
  p.parse(message_line(signed_content_v2(kBody, 7), true, 729), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_TRUE(out.unverified);
  EXPECT_NE(out.reject_reason.find("another transaction"), std::string::npos) << out.reject_reason;
  // the right MAC under the other key's id
  p.parse(message_line(signed_content_v2(kBody, 123456789)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_TRUE(out.unverified);
  ASSERT_TRUE(out.key_id);
  EXPECT_EQ(*out.key_id, 123456789u);
  // a key the relay does not hold: the one case a reload of the keys can change
  p.parse(message_line(signed_content_v2(kBody, 8)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_TRUE(out.unverified);
  EXPECT_NE(out.reject_reason.find("key 8"), std::string::npos) << out.reject_reason;
  p.add_message_key(8, kKey);
  p.parse(message_line(signed_content_v2(kBody, 8)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  // a non-transactional message has no xid to be bound to: outbox_emit never writes one
  p.parse(message_line(signed_content_v2(kBody, 7), false), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  EXPECT_FALSE(out.unverified);
  // malformed key ids
  for (const std::string& bad : {std::string("\",\"kid\":,"), std::string("\",\"kid\":12x,"),
                                 std::string("\",\"kid\":99999999999,"), std::string("\",\"kid\":7")}) {
    std::string c = signed_content_v2(kBody, 7);
    std::size_t at = c.find("\",\"kid\":");
    std::size_t comma = c.find(',', at + 8);
    p.parse(message_line(c.substr(0, at) + bad + c.substr(comma + 1)), 1, out);
    EXPECT_EQ(out.kind, LineKind::Rejected) << bad;
    EXPECT_FALSE(out.unverified) << bad;
  }
  // 0.2's form (no key id, not bound) verifies with key 1 only
  p.parse(message_line(signed_content(kBody)), 1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
  p.set_message_key(kKey);
  p.parse(message_line(signed_content(kBody), true, 4242), 1, out);
  EXPECT_EQ(out.kind, LineKind::Event) << out.reject_reason;
}

// A rotation's notice ({"control":"keys",...}) is an authenticated control message.
TEST(Parser, KeyRotationNoticeIsAControlMessage) {
  Wal2jsonParser p;
  p.add_message_key(7, kKey);
  ParsedLine out;
  p.parse(message_line(signed_content_v2(R"({"control":"keys","key_id":8})", 7)), 1, out);
  ASSERT_EQ(out.kind, LineKind::Control) << out.reject_reason;
  EXPECT_EQ(out.control.kind, "keys");
  // unsigned, it is a forgery like any other
  p.parse(message_line(signed_content_v2(R"({"control":"keys","key_id":8})", 7, "fedcba9876543210fedcba9876543210")),
          1, out);
  EXPECT_EQ(out.kind, LineKind::Rejected);
}

// A message with a valid MAC is never rejected: what is wrong with it goes to Event::invalid.
TEST(Parser, GenuineMessageThatCannotBePublishedIsInvalid) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(message_line(signed_content(R"({"id":"1","event_type":"e","payload":{},"headers":{"n":18446744073709551616}})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_NE(out.event.invalid.find("header \"n\" holds 18446744073709551616, beyond what an AMQP header number holds (|n| < 2^63); send it as a string"),
            std::string::npos)
      << out.event.invalid;
  EXPECT_EQ(out.event.id, "1");
  EXPECT_EQ(out.event.event_type, "e");
  EXPECT_EQ(out.event.payload, "{}");

  p.parse(message_line(signed_content(R"({"id":"2","event_type":"e","payload":1,"headers":[1]})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("\"headers\" is not a JSON object"), std::string::npos) << out.event.invalid;

  p.parse(message_line(signed_content(R"({"id":"3","payload":1})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("event_type"), std::string::npos) << out.event.invalid;
  EXPECT_EQ(out.event.id, "3");

  p.parse(message_line(signed_content(R"({"id":"4","event_type":"e"})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("payload"), std::string::npos) << out.event.invalid;

  p.parse(message_line(signed_content(R"({"id":5,"event_type":"e","payload":1})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("\"id\" is not a string"), std::string::npos) << out.event.invalid;

  p.parse(message_line(signed_content(R"({"id":"6","event_type":"e","payload":[1,)")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("not valid JSON"), std::string::npos) << out.event.invalid;

  // what was read before the syntax error is kept for the dead letter
  p.parse(message_line(signed_content(R"({"id":"7","event_type":"e","payload":1,"headers":{"a":tru}})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("not valid JSON"), std::string::npos) << out.event.invalid;
  EXPECT_EQ(out.event.id, "7");
  EXPECT_EQ(out.event.event_type, "e");
  EXPECT_EQ(out.event.payload, "1");
}

TEST(Parser, HeaderNumbers) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(message_line(signed_content(
              R"({"event_type":"e","payload":1,"headers":{"max":9223372036854775807,"min":-9223372036854775808,"f":-1.5e18,"e":1E3,"z":-0,"d":9.2e18}})")),
          1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.invalid, "");
  ASSERT_EQ(out.event.headers.size(), 6u);
  EXPECT_EQ(out.event.headers[0].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(out.event.headers[0].value.i, INT64_MAX);
  EXPECT_EQ(out.event.headers[1].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(out.event.headers[1].value.i, INT64_MIN);
  EXPECT_EQ(out.event.headers[2].value.kind, HeaderValue::Kind::Double);
  EXPECT_DOUBLE_EQ(out.event.headers[2].value.d, -1.5e18);
  EXPECT_EQ(out.event.headers[3].value.kind, HeaderValue::Kind::Double);
  EXPECT_DOUBLE_EQ(out.event.headers[3].value.d, 1000);
  EXPECT_EQ(out.event.headers[4].value.kind, HeaderValue::Kind::Int);
  EXPECT_EQ(out.event.headers[5].value.kind, HeaderValue::Kind::Double);
  for (const char* big : {"9223372036854775808", "-9223372036854775809", "9.3e18", "-1e19", "1e400",
                          "123456789012345678901234567890"}) {
    p.parse(message_line(signed_content(std::string(R"({"event_type":"e","payload":1,"headers":{"h":)") + big + "}}")), 1, out);
    ASSERT_EQ(out.kind, LineKind::Event) << big;
    EXPECT_NE(out.event.invalid.find(std::string("header \"h\" holds ") + big), std::string::npos) << out.event.invalid;
  }
  // table storage: the same rules
  p.parse(row_line(R"({"name":"event_type","value":"e"},{"name":"payload","value":"1"},{"name":"headers","value":"{\"big\": 18446744073709551616, \"ok\": 7}"})"), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("header \"big\" holds 18446744073709551616"), std::string::npos) << out.event.invalid;
  ASSERT_EQ(out.event.headers.size(), 2u);
  EXPECT_EQ(out.event.headers[1].value.i, 7);
  // a very long number is shown shortened
  p.parse(message_line(signed_content(R"({"event_type":"e","payload":1,"headers":{"h":)" + std::string(400, '9') + "}}")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_LT(out.event.invalid.size(), 300u) << out.event.invalid;
}

TEST(Parser, NestedHeaderValuesAreMinifiedText) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(message_line(signed_content(R"({"event_type":"e","payload":1,"headers":{"o":{ "a" : [1, 2] , "s":"x y"},"a":[ true ]}})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  ASSERT_EQ(out.event.headers.size(), 2u);
  EXPECT_EQ(out.event.headers[0].value.kind, HeaderValue::Kind::String);
  EXPECT_EQ(out.event.headers[0].value.s, R"({"a":[1,2],"s":"x y"})");
  EXPECT_EQ(out.event.headers[1].value.s, "[true]");
}

// The payload reaches the broker byte for byte: big numbers keep every digit in both modes.
TEST(Parser, BigPayloadNumbersKeepTheirDigits) {
  const std::string digits301 = "15" + std::string(299, '0');  // 1.5e300 written out
  const std::string payload =
      R"({"u": 18446744073709551616, "d": )" + digits301 + R"(, "e": 1.5e300, "x": -0.000000000000000000001, "t": 1.50})";
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(row_line(R"({"name":"id","value":"1"},{"name":"event_type","value":"e"},{"name":"payload","value":)" +
                   nlohmann::json(payload).dump() + "}"),
          1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.payload, payload);
  EXPECT_EQ(out.event.invalid, "");
  p.parse(message_line(signed_content(R"({"id":"1","event_type":"e","payload":)" + payload + R"(,"headers":{}})")), 2, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.payload, payload);
  EXPECT_EQ(out.event.invalid, "");
  // scalars and strings too
  for (std::string v : {std::string("18446744073709551616"), digits301, std::string(R"("a \"b\" \u00e9")"),
                        std::string("null"), std::string("[]")}) {
    p.parse(message_line(signed_content(R"({"event_type":"e","payload":)" + v + "}")), 3, out);
    ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
    EXPECT_EQ(out.event.payload, v);
  }
}

// The raw span of "payload" inside a message body (was json_span's test): strings with braces and
// escaped quotes, spaces around it, members before and after.
TEST(Parser, RawPayloadSpans) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(message_line(signed_content(
              R"({"a":1, "event_type":"e", "payload" : {"x":[1,2,{"y":"}\""}],"n":1.000000000000000000001} ,"z":"q"})")),
          1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.payload, R"({"x":[1,2,{"y":"}\""}],"n":1.000000000000000000001})");
  p.parse(message_line(signed_content(R"({"k\"ey":2,"event_type":"e","payload":"s\\"})")), 1, out);
  ASSERT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  EXPECT_EQ(out.event.payload, R"("s\\")");
}

TEST(Parser, TableRowThatCannotBePublishedIsInvalid) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(row_line(R"({"name":"id","value":"7"},{"name":"event_type","value":"e"},{"name":"payload","value":"{}"},{"name":"headers","value":"[1, 2]"},{"name":"created_at","value":"2026-01-01"})"), 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("column \"headers\" is not a JSON object"), std::string::npos) << out.event.invalid;
  EXPECT_EQ(out.event.id, "7");
  EXPECT_EQ(out.event.event_type, "e");
  EXPECT_EQ(out.event.payload, "{}");
  EXPECT_EQ(out.event.created_at, "2026-01-01");
  EXPECT_EQ(out.event.lsn, 5u);
  EXPECT_EQ(out.event.xid, 9u);
  p.parse(row_line(R"({"name":"event_type","value":"e"},{"name":"payload","value":"{}"},{"name":"headers","value":"{nope"})"), 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("column \"headers\" holds invalid JSON"), std::string::npos) << out.event.invalid;
  p.parse(row_line(R"({"name":"event_type","value":"e"},{"name":"payload","value":"{}"},{"name":"headers","value":{}})"), 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("column \"headers\" is not a string"), std::string::npos) << out.event.invalid;
  // no event_type, no payload (the old parser threw)
  p.parse(row_line(R"({"name":"payload","value":"{}"})"), 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("without event_type"), std::string::npos) << out.event.invalid;
  p.parse(row_line(R"({"name":"event_type","value":"e"})"), 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("without payload"), std::string::npos) << out.event.invalid;
  p.parse(row_line(R"({"name":"event_type","value":42},{"name":"payload","value":"{}"})"), 5, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_NE(out.event.invalid.find("column \"event_type\" is not a string"), std::string::npos) << out.event.invalid;
}

TEST(Parser, AmqpLimitsMakeAnEventInvalid) {
  Wal2jsonParser p;
  ParsedLine out;
  auto row = [&](const std::string& extra) {
    p.parse(row_line(R"({"name":"id","value":"1"},{"name":"event_type","value":"e"},{"name":"payload","value":"{}"})" + extra), 1, out);
    EXPECT_EQ(out.kind, LineKind::Event);
    return out.event.invalid;
  };
  std::string s256(256, 'r');
  EXPECT_EQ(row(""), "");
  EXPECT_NE(row(R"(,{"name":"routing_key","value":")" + s256 + "\"}").find("\"routing_key\" has 256 bytes"), std::string::npos);
  EXPECT_NE(row(R"(,{"name":"exchange","value":")" + s256 + "\"}").find("\"exchange\" has 256 bytes"), std::string::npos);
  EXPECT_NE(row(R"(,{"name":"aggregate_type","value":")" + std::string(255, 'a') + "\"}").find("default routing key"),
            std::string::npos);
  EXPECT_EQ(row(R"(,{"name":"aggregate_type","value":")" + std::string(253, 'a') + "\"}"), "");
  EXPECT_NE(row(R"(,{"name":"aggregate_id","value":")" + std::string(1025, 'a') + "\"}").find("\"aggregate_id\" has 1025"),
            std::string::npos);
  EXPECT_NE(row(R"(,{"name":"headers","value":"{\"X-Outbox-Lsn\": \"0/1\"}"})").find("reserves"), std::string::npos);
  EXPECT_NE(row(R"(,{"name":"headers","value":"{\"CC\": \"q\"}"})").find("header \"CC\""), std::string::npos);
  EXPECT_EQ(row(R"(,{"name":"headers","value":"{\"cc\": \"q\"}"})"), "");
  EXPECT_NE(row(R"(,{"name":"headers","value":"{\")" + s256 + R"(\": 1}"})").find("name of 256 bytes"), std::string::npos);
  std::string many = "{";
  for (int i = 0; i < 70; ++i) many += (i ? ", " : "") + std::string("\\\"h") + std::to_string(i) + "\\\": \\\"" + std::string(1000, 'v') + "\\\"";
  many += "}";
  EXPECT_NE(row(R"(,{"name":"headers","value":")" + many + "\"}").find("encode to"), std::string::npos);
}

TEST(Parser, ColumnsBeforeSchemaAndTable) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(R"({"action":"I","columns":[{"name":"event_type","value":"e"},{"name":"payload","value":"[2]"}],"schema":"outbox","table":"events"})", 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.payload, "[2]");
  EXPECT_EQ(out.event.event_type, "e");
  p.parse(R"({"columns":[],"schema":"public","table":"events","action":"I"})", 1, out);
  EXPECT_EQ(out.kind, LineKind::Ignored);
  // value before name, types included (include-types 1)
  p.parse(R"({"action":"I","schema":"outbox","table":"events","columns":[{"value":"e","type":"text","name":"event_type"},{"name":"payload","type":"jsonb","value":"1"}]})", 1, out);
  ASSERT_EQ(out.kind, LineKind::Event);
  EXPECT_EQ(out.event.event_type, "e");
}

// Extension 0.4's fields (traceparent, tracestate, priority, schema_version): columns of the row in
// table storage, top-level members of the signed body in wal storage, absent when null.
namespace {

const char* kTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// A row as wal2json writes it with include-types (outbox_decoder writes the same members
// without "type"), with the four columns of 0.4 given as JSON texts of their values.
std::string row_with(const std::string& traceparent, const std::string& tracestate, const std::string& priority,
                     const std::string& schema_version, bool types) {
  auto col = [&](const char* name, const char* type, const std::string& value) {
    return std::string(R"({"name":")") + name + "\"," + (types ? std::string(R"("type":")") + type + "\"," : "") +
           R"("value":)" + value + "}";
  };
  return row_line(col("id", "uuid", R"("0190")") + "," + col("event_type", "text", R"("created")") + "," +
                  col("payload", "jsonb", R"("{}")") + "," + col("created_at", "timestamp with time zone",
                                                                 R"("2026-11-23 05:01:53.002656+00")") +
                  "," + col("traceparent", "text", traceparent) + "," + col("tracestate", "text", tracestate) + "," +
                  col("priority", "smallint", priority) + "," + col("schema_version", "integer", schema_version));
}

// A wal-storage body of 0.4 with the members given (JSON text, "" = left out as outbox_emit leaves
// out a null).
std::string body_with(const std::string& traceparent, const std::string& tracestate, const std::string& priority,
                      const std::string& schema_version) {
  std::string b = R"({"id":"0191","event_type":"walled","payload":{"a":1},"headers":{},"created_at":"2026-01-01T00:00:00+00:00")";
  if (!traceparent.empty()) b += R"(,"traceparent":)" + traceparent;
  if (!tracestate.empty()) b += R"(,"tracestate":)" + tracestate;
  if (!priority.empty()) b += R"(,"priority":)" + priority;
  if (!schema_version.empty()) b += R"(,"schema_version":)" + schema_version;
  return b + "}";
}

// Parses one line (a row or a signed message of key 7) into an event.
Event parse_event(const std::string& line) {
  Wal2jsonParser p;
  p.add_message_key(7, kKey);
  ParsedLine out;
  p.parse(line, 42, out);
  EXPECT_EQ(out.kind, LineKind::Event) << out.reject_reason;
  return out.event;
}

std::string as_message(const std::string& body) { return message_line(signed_content_v2(body, 7)); }

}  // namespace

TEST(Parser, TraceContextPriorityAndSchemaVersionInBothStorages) {
  const std::string tp = std::string("\"") + kTraceparent + "\"";
  for (bool types : {true, false}) {
    Event e = parse_event(row_with(tp, R"("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")", "7", "3", types));
    EXPECT_EQ(e.invalid, "");
    EXPECT_EQ(e.traceparent, kTraceparent);
    EXPECT_EQ(e.tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    EXPECT_EQ(e.priority, 7);
    EXPECT_EQ(e.schema_version, 3);
  }
  Event m = parse_event(as_message(body_with(tp, R"("a=1")", "0", "2147483647")));
  EXPECT_EQ(m.invalid, "");
  EXPECT_TRUE(m.from_message);
  EXPECT_EQ(m.traceparent, kTraceparent);
  EXPECT_EQ(m.tracestate, "a=1");
  EXPECT_EQ(m.priority, 0);
  EXPECT_EQ(m.schema_version, 2147483647);
}

// Null columns (a row of 0.4 emitted without them), missing members (0.4 leaves out a null; 0.3
// never wrote them) and rows of 0.3's table (no such columns) are all "not set".
TEST(Parser, AbsentContractFieldsAreNotSet) {
  for (const Event& e : {parse_event(row_with("null", "null", "null", "null", true)),
                         parse_event(as_message(body_with("", "", "", ""))), parse_event(kInsert),
                         parse_event(as_message(kBody))}) {
    EXPECT_EQ(e.invalid, "");
    EXPECT_FALSE(e.traceparent);
    EXPECT_FALSE(e.tracestate);
    EXPECT_FALSE(e.priority);
    EXPECT_FALSE(e.schema_version);
  }
}

// A value of the wrong type or out of range is the event's dead letter, naming the field; what
// could be read is kept for the dead letter.
TEST(Parser, ContractFieldsOfTheWrongTypeOrRangeMakeTheEventInvalid) {
  const std::string tp = std::string("\"") + kTraceparent + "\"";
  struct Case {
    std::string traceparent, tracestate, priority, schema_version, reason;
  };
  const std::string long_tp = "\"00-" + std::string(kTraceparentV00 - 2, 'a') + "\"";
  const std::string long_ts = "\"" + std::string(kTracestateMax + 1, 'a') + "\"";
  const Case cases[] = {
      {tp, "null", "10", "null", "\"priority\" is 10, outside 0..9"},
      {tp, "null", "-1", "null", "\"priority\" is -1, outside 0..9"},
      {tp, "null", "5.0", "null", "\"priority\" is not an integer (5.0)"},
      {tp, "null", R"("5")", "null", "\"priority\" is not an integer (\"5\")"},
      {tp, "null", "true", "null", "\"priority\" is not an integer (true)"},
      {tp, "null", "99999999999999999999", "null", "\"priority\" is 99999999999999999999, beyond a 64-bit integer"},
      {tp, "null", "null", "0", "\"schema_version\" is 0, not a positive 32-bit integer"},
      {tp, "null", "null", "2147483648", "\"schema_version\" is 2147483648, not a positive 32-bit integer"},
      {tp, "null", "null", "[3]", "\"schema_version\" is not an integer ([3])"},
      {"42", "null", "null", "null", "\"traceparent\" is not a string"},
      {tp, R"({"a":1})", "null", "null", "\"tracestate\" is not a string"},
      {long_tp, "null", "null", "null", "\"traceparent\" has 56 bytes, more than the 55 of a W3C traceparent of version 00"},
      {tp, long_ts, "null", "null",
       "\"tracestate\" has " + std::to_string(kTracestateMax + 1) + " bytes, more than the " +
           std::to_string(kTracestateMax) + " of a W3C tracestate"},
  };
  for (const Case& c : cases) {
    Event row = parse_event(row_with(c.traceparent, c.tracestate, c.priority, c.schema_version, false));
    EXPECT_NE(row.invalid.find(c.reason), std::string::npos) << row.invalid << "\n  wanted: " << c.reason;
    auto member = [](const std::string& v) { return v == "null" ? std::string() : v; };
    Event msg = parse_event(as_message(
        body_with(member(c.traceparent), member(c.tracestate), member(c.priority), member(c.schema_version))));
    EXPECT_NE(msg.invalid.find(c.reason), std::string::npos) << msg.invalid << "\n  wanted: " << c.reason;
  }
  // Which storage said it.
  Event row = parse_event(row_with(tp, "null", R"("5")", "null", false));
  EXPECT_NE(row.invalid.find("column \"priority\""), std::string::npos) << row.invalid;
  Event msg = parse_event(as_message(body_with(tp, "", R"("5")", "")));
  EXPECT_NE(msg.invalid.find("message field \"priority\""), std::string::npos) << msg.invalid;
  // Read values are kept: the dead letter shows them.
  Event kept = parse_event(row_with(tp, "null", "12", "0", false));
  EXPECT_EQ(kept.priority, 12);
  EXPECT_EQ(kept.schema_version, 0);
  EXPECT_EQ(kept.traceparent, kTraceparent);
  // The sizes themselves pass.
  Event fits = parse_event(row_with("\"00-" + std::string(kTraceparentV00 - 3, 'a') + "\"",
                                    "\"" + std::string(kTracestateMax, 'a') + "\"", "9", "1", false));
  EXPECT_EQ(fits.invalid, "");
}

// outbox_emit counts the trace context and the schema version into the application's share of
// the AMQP header table (common/outbox_wire.h); the parser counts them the same way, so an event
// at the limit passes and one byte over is refused naming what is counted.
TEST(Parser, TraceContextAndSchemaVersionCountTowardsTheHeaderBudget) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::size_t tracestate = 500;
  // The entries (the budget counts no table length): traceparent, tracestate,
  // x-outbox-schema-version as 10 digits, the header "f" without its value.
  std::size_t fixed = string_entry_size(11, tp.size()) + string_entry_size(10, tracestate) +
                      string_entry_size(23, 10) + string_entry_size(1, 0);
  auto row = [&](std::size_t fill) {
    std::string headers = "\"{\\\"f\\\": \\\"" + std::string(fill, 'v') + "\\\"}\"";
    return row_line(R"({"name":"id","value":"1"},{"name":"event_type","value":"e"},{"name":"payload","value":"{}"},)"
                    R"({"name":"headers","value":)" + headers + R"(},{"name":"traceparent","value":")" + tp +
                    R"("},{"name":"tracestate","value":")" + std::string(tracestate, 's') +
                    R"("},{"name":"schema_version","value":1})");
  };
  Event at = parse_event(row(OUTBOX_EVENT_HEADERS_MAX - fixed));
  EXPECT_EQ(at.invalid, "");
  Event over = parse_event(row(OUTBOX_EVENT_HEADERS_MAX - fixed + 1));
  EXPECT_NE(over.invalid.find("(with aggregate_type, aggregate_id, causation_id, traceparent, tracestate and "
                              "schema_version) encode to " + std::to_string(OUTBOX_EVENT_HEADERS_MAX + 1)),
            std::string::npos)
      << over.invalid;
}
