#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <string>

#include "delivery/event_json.h"
#include "ops/log.h"

using namespace outbox;

namespace {
Event sample() {
  Event ev;
  ev.id = "01a206d6-e9d5-7ec2-94ef-64c6fa8e6933";
  ev.aggregate_type = "order";
  ev.event_type = "created \"x\"";
  ev.payload = R"({"a": [1, 2]})";
  ev.headers.push_back(Header{"s", {HeaderValue::Kind::String, "v\n", 0, 0, false}});
  ev.headers.push_back(Header{"i", {HeaderValue::Kind::Int, "", -5, 0, false}});
  ev.headers.push_back(Header{"b", {HeaderValue::Kind::Bool, "", 0, 0, true}});
  ev.lsn = 0x1000;
  ev.xid = 7;
  return ev;
}

nlohmann::json parsed(const std::string& text) { return nlohmann::json::parse(text); }  // throws if not JSON
}  // namespace

TEST(EventJson, SameShapeAsBefore) {
  EXPECT_EQ(event_to_json(sample()),
            R"({"id":"01a206d6-e9d5-7ec2-94ef-64c6fa8e6933","aggregate_type":"order","aggregate_id":null,)"
            R"("event_type":"created \"x\"","payload":{"a": [1, 2]},"headers":{"s":"v\n","i":-5,"b":true},)"
            R"("exchange":null,"routing_key":null,"correlation_id":null,"causation_id":null,"created_at":"",)"
            R"("lsn":"0/1000","xid":7})");
}

// The fields of 0.4 appear under the names outbox_emit writes, only when set (SameShapeAsBefore
// has none), so that outbox.replay_dead_letter() can emit them again.
TEST(EventJson, TraceContextPriorityAndSchemaVersionWhenSet) {
  Event ev = sample();
  ev.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ev.tracestate = "a=1";
  ev.priority = 12;  // out of range: a dead letter shows what it was
  ev.schema_version = 3;
  nlohmann::json j = parsed(event_to_json(ev));
  EXPECT_EQ(j["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(j["tracestate"], "a=1");
  EXPECT_EQ(j["priority"], 12);
  EXPECT_EQ(j["schema_version"], 3);
  ev.tracestate.reset();
  ev.priority.reset();
  j = parsed(event_to_json(ev));
  EXPECT_FALSE(j.contains("tracestate"));
  EXPECT_FALSE(j.contains("priority"));
  EXPECT_TRUE(j.contains("schema_version"));
}

TEST(EventJson, PayloadIsEmbeddedByteForByte) {
  Event ev = sample();
  const std::string digits301 = "15" + std::string(299, '0');
  ev.payload = R"({"u": 18446744073709551616, "d": )" + digits301 + R"(, "t": 1.50, "e": 1.5e300})";
  std::string j = event_to_json(ev);
  EXPECT_NE(j.find(R"("payload":)" + ev.payload + ","), std::string::npos) << j;
  EXPECT_NO_THROW(parsed(j));
  for (std::string p : {std::string("18446744073709551616"), std::string("\"text\""), std::string("null"), std::string("[]")}) {
    ev.payload = p;
    EXPECT_NE(event_to_json(ev).find(R"("payload":)" + p + ","), std::string::npos) << p;
  }
}

TEST(EventJson, PayloadThatIsNotJsonBecomesAString) {
  Event ev = sample();
  ev.payload = R"({"a": 1)";  // cut short
  auto j = parsed(event_to_json(ev));
  EXPECT_EQ(j["payload"], R"({"a": 1)");
  ev.payload = "not json";
  EXPECT_EQ(parsed(event_to_json(ev))["payload"], "not json");
  ev.payload = "{\"a\": \"\xff\"}";  // invalid UTF-8: not JSON, and the writer does not abort
  j = parsed(event_to_json(ev));
  EXPECT_EQ(j["payload"], "{\"a\": \"\xEF\xBF\xBD\"}");
  ev.payload = R"({"a": "\u0000"})";  // JSON, but jsonb refuses \u0000
  j = parsed(event_to_json(ev));
  EXPECT_TRUE(j["payload"].is_string());
  ev.payload = "";
  EXPECT_TRUE(parsed(event_to_json(ev))["payload"].is_null());
  ev.payload = "{} {}";  // two values
  EXPECT_TRUE(parsed(event_to_json(ev))["payload"].is_string());
}

TEST(EventJson, TextFieldsAreAlwaysValidJsonThatJsonbTakes) {
  Event ev = sample();
  ev.event_type = std::string("a\0b", 3);
  ev.aggregate_id = "\xc3\x28";  // invalid UTF-8
  ev.created_at = "line\nbreak\x1b[31m";
  ev.headers.push_back(Header{"bad\xff", {HeaderValue::Kind::String, "\xfe", 0, 0, false}});
  ev.headers.push_back(Header{"d", {HeaderValue::Kind::Double, "", 0, 0.1, false}});
  ev.xid = UINT64_MAX;
  std::string text = event_to_json(ev);
  EXPECT_EQ(text.find('\0'), std::string::npos);
  EXPECT_EQ(text.find("\\u0000"), std::string::npos);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  auto j = parsed(text);
  EXPECT_EQ(j["event_type"], "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(j["aggregate_id"], "\xEF\xBF\xBD(");
  EXPECT_EQ(j["created_at"], "line\nbreak\x1b[31m");
  EXPECT_EQ(j["headers"]["bad\xEF\xBF\xBD"], "\xEF\xBF\xBD");
  EXPECT_NE(text.find(R"("d":0.1)"), std::string::npos) << text;  // shortest form, not 0.10000000000000001
  EXPECT_EQ(j["xid"].get<std::uint64_t>(), UINT64_MAX);
}

TEST(EventJson, JsonString) {
  EXPECT_EQ(json_string("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
  EXPECT_EQ(json_string("\xff"), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(json_string("é"), "\"é\"");
}

TEST(LogText, PlainTextIsUnchanged) {
  EXPECT_EQ(log_text(R"(slot "outbox" does not exist -- fix: C:\x)"), R"(slot "outbox" does not exist -- fix: C:\x)");
  EXPECT_EQ(log_text("température 😀"), "température 😀");
  EXPECT_EQ(log_text(""), "");
}

// A libpq error is several lines ("...failed: Connection refused\n\tIs the server running...?\n"),
// with quotes: printed as one readable line, not as the inside of a JSON string.
TEST(LogText, LinesAreJoinedReadably) {
  EXPECT_EQ(log_text("connection to \"host=db\" failed: connection to server at \"127.0.0.1\", port 1 failed: "
                     "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n"),
            "connection to \"host=db\" failed: connection to server at \"127.0.0.1\", port 1 failed: "
            "Connection refused; Is the server running on that host and accepting TCP/IP connections?");
  EXPECT_EQ(log_text("ERROR:  permission denied for table t\nDETAIL:  x\r\n  \nHINT:\n  y"),
            "ERROR:  permission denied for table t; DETAIL:  x; HINT: y");
  EXPECT_EQ(log_text("a\tb \n"), "a b");
  EXPECT_EQ(log_text("\n\n"), "");
  EXPECT_EQ(log_text(R"(C:\x "q")"), R"(C:\x "q")");
}

TEST(LogText, ControlCharactersAndBadUtf8AreEscaped) {
  // a newline in an event type cannot start a forged log line
  std::string forged = "created\n2026-12-01 20:00:00.000 critical all events lost";
  std::string t = log_text("event type " + forged);
  EXPECT_EQ(t.find('\n'), std::string::npos);
  EXPECT_EQ(t, "event type created; 2026-12-01 20:00:00.000 critical all events lost");
  EXPECT_EQ(log_text("a\rb\tc\x1b[2Jd"), R"(a; b c\u001b[2Jd)");
  EXPECT_EQ(log_text("bad \xff byte"), "bad \xEF\xBF\xBD byte");
  // C1 controls, DEL and the Unicode line separators: everything non-ASCII as \u escapes
  EXPECT_EQ(log_text("a\xc2\x85" "b é"), R"(a\u0085b \u00e9)");
  EXPECT_EQ(log_text("a\xe2\x80\xa8" "b"), R"(a\u2028b)");
  EXPECT_EQ(log_text("a\x7f"), R"(a\u007f)");
  // once escaped, quotes and backslashes are escaped too, so the text reads back unambiguously
  EXPECT_EQ(log_text("\"q\"\x01\\"), R"(\"q\"\u0001\\)");
}

TEST(LogFormat, EveryRecordIsOneLine) {
  std::string msg = "event type created\nforged line\xff";
  spdlog::details::log_msg m(spdlog::source_loc{}, "outbox-relay", spdlog::level::warn, msg);
  for (const char* format : {"text", "json"}) {
    auto f = make_log_formatter(format);
    spdlog::memory_buf_t buf;
    f->format(m, buf);
    std::string line(buf.data(), buf.size());
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n') << format;
    EXPECT_EQ(line.find('\n'), line.size() - 1) << format << ": " << line;
    if (std::string(format) == "json") {
      auto j = parsed(line);
      EXPECT_EQ(j["level"], "warning");
      EXPECT_EQ(j["logger"], "outbox-relay");
      EXPECT_EQ(j["msg"], "event type created\nforged line\xEF\xBF\xBD");
      EXPECT_TRUE(j.contains("ts"));
    } else {
      EXPECT_NE(line.find(" warning event type created; forged line\xEF\xBF\xBD\n"), std::string::npos) << line;
    }
  }
}

// The text format prints a libpq error readably; the JSON format keeps it exactly, as valid JSON.
TEST(LogFormat, AMultiLineErrorReadsAsOneLine) {
  std::string msg = "check failed: connection to \"host=127.0.0.1 port=1\" failed: Connection refused\n\tIs the "
                    "server running on that host and accepting TCP/IP connections?\n";
  spdlog::details::log_msg m(spdlog::source_loc{}, "outbox-relay", spdlog::level::critical, msg);
  spdlog::memory_buf_t text, json;
  make_log_formatter("text")->format(m, text);
  make_log_formatter("json")->format(m, json);
  std::string t(text.data(), text.size());
  EXPECT_NE(t.find(" critical check failed: connection to \"host=127.0.0.1 port=1\" failed: Connection refused; Is "
                   "the server running on that host and accepting TCP/IP connections?\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find('\\'), std::string::npos) << t;
  EXPECT_EQ(parsed(std::string(json.data(), json.size()))["msg"], msg);
}
