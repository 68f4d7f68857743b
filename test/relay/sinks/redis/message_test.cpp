// The event -> Redis stream entry mapping, the stream name template, the URL and what a reply
// means (pure parts of the Redis sink).
#include "sinks/redis/message.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <map>
#include <nlohmann/json.hpp>

#include "sinks/redis/connection.h"

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
  e.commit_time = "2026-11-23 05:01:53.002315+00";
  return e;
}

redisReply mk(int type, const char* s = "") {
  redisReply r{};
  r.type = type;
  r.str = const_cast<char*>(s);
  r.len = std::strlen(s);
  return r;
}

}  // namespace

TEST(RedisStreamName, Placeholders) {
  Event e = base();
  e.routing_key = "order.created";
  EXPECT_EQ(stream_name("outbox:{aggregate_type}", e), "outbox:order");
  EXPECT_EQ(stream_name("{aggregate_type}/{event_type}/{routing_key}/{exchange}", e), "order/created/order.created/_");
  e.aggregate_type.reset();
  EXPECT_EQ(stream_name("outbox:{aggregate_type}", e), "outbox:_");
  EXPECT_EQ(stream_name("fixed", e), "fixed");
}

TEST(RedisStreamName, TemplateProblems) {
  EXPECT_FALSE(stream_template_problem("outbox:{aggregate_type}:{event_type}"));
  EXPECT_TRUE(stream_template_problem(""));
  auto p = stream_template_problem("outbox:{aggregate}");
  ASSERT_TRUE(p);
  EXPECT_NE(p->find("{aggregate}"), std::string::npos);
  EXPECT_TRUE(stream_template_problem("outbox:{event_type"));
  EXPECT_TRUE(stream_template_problem("outbox:}x"));
}

TEST(RedisEntry, FieldsInOrder) {
  Event e = base();
  e.correlation_id = "corr-1";
  e.causation_id = "cause-1";
  Header h;
  h.name = "tenant";
  h.value.kind = HeaderValue::Kind::Int;
  h.value.i = 7;
  e.headers.push_back(h);
  h.name = "flag";
  h.value.kind = HeaderValue::Kind::Bool;
  h.value.b = true;
  e.headers.push_back(h);
  auto r = build_entry("outbox:{aggregate_type}", e);
  ASSERT_TRUE(r.entry) << r.error;
  EXPECT_EQ(r.entry->stream, "outbox:order");
  std::vector<std::string> names;
  for (auto& [k, v] : r.entry->fields) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"id", "type", "payload", "headers", "correlation_id",
                                             "x-outbox-aggregate-type", "x-outbox-aggregate-id", "x-outbox-lsn",
                                             "x-outbox-xid", "x-outbox-commit-time", "x-outbox-causation-id"}));
  auto& f = r.entry->fields;
  EXPECT_EQ(f[0].second, e.id);
  EXPECT_EQ(f[1].second, "created");
  EXPECT_EQ(f[2].second, "{\"n\":1}");
  EXPECT_EQ(nlohmann::json::parse(f[3].second), nlohmann::json({{"tenant", 7}, {"flag", true}}));
  EXPECT_EQ(f[4].second, "corr-1");
  EXPECT_EQ(f[7].second, "0/16B3748");
  EXPECT_EQ(f[8].second, "750");
}

// The fields of 0.4 under the names NATS gives its headers, values as text (no percent-encoding:
// a stream field holds any bytes); the CloudEvents attributes as ce-<attribute> fields.
TEST(RedisEntry, TraceContextPriorityAndSchemaVersionAndCloudEvents) {
  Event e = base();
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tracestate = "congo=t61rcWkgMzE, rojo=1";
  e.priority = 0;
  e.schema_version = 12;
  e.event_type = "créé";
  Header own;
  own.name = "traceparent";
  own.value.kind = HeaderValue::Kind::String;
  own.value.s = "00-own";
  e.headers.push_back(own);  // in "headers", beside the field: no name to share
  auto r = build_entry("s", e, "/orders-db", 0);
  ASSERT_TRUE(r.entry) << r.error;
  std::vector<std::string> names;
  std::map<std::string, std::string> f;
  for (auto& [k, v] : r.entry->fields) {
    names.push_back(k);
    f[k] = v;
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "id", "type", "payload", "headers", "traceparent", "tracestate", "priority",
                       "x-outbox-aggregate-type", "x-outbox-aggregate-id", "x-outbox-lsn", "x-outbox-xid",
                       "x-outbox-commit-time", "x-outbox-schema-version", "ce-specversion", "ce-id", "ce-source",
                       "ce-type", "ce-time", "ce-subject", "ce-dataschema", "ce-traceparent", "ce-tracestate",
                       "ce-datacontenttype"}));
  EXPECT_EQ(f["traceparent"], *e.traceparent);
  EXPECT_EQ(f["tracestate"], "congo=t61rcWkgMzE, rojo=1");
  EXPECT_EQ(f["priority"], "0");
  EXPECT_EQ(f["x-outbox-schema-version"], "12");
  EXPECT_EQ(nlohmann::json::parse(f["headers"])["traceparent"], "00-own");
  EXPECT_EQ(f["ce-specversion"], "1.0");
  EXPECT_EQ(f["ce-id"], e.id);
  EXPECT_EQ(f["ce-source"], "/orders-db");
  EXPECT_EQ(f["ce-type"], "créé");
  EXPECT_EQ(f["ce-time"], "2026-11-23T05:01:53.002315Z");  // the commit time: no created_at
  EXPECT_EQ(f["ce-subject"], "42");
  EXPECT_EQ(f["ce-dataschema"], "/orders-db/schemas/cr%C3%A9%C3%A9/12");
  EXPECT_EQ(f["ce-traceparent"], *e.traceparent);
  EXPECT_EQ(f["ce-tracestate"], "congo=t61rcWkgMzE, rojo=1");
  EXPECT_EQ(f["ce-datacontenttype"], "application/json");
  e.priority = 10;
  EXPECT_EQ(build_entry("s", e).error, "\"priority\" is 10, outside 0..9");
}

TEST(RedisEntry, NoHeadersIsEmptyObjectAndNoCorrelation) {
  auto r = build_entry("s", base());
  ASSERT_TRUE(r.entry);
  EXPECT_EQ(r.entry->fields[3], (std::pair<std::string, std::string>{"headers", "{}"}));
  for (auto& [k, v] : r.entry->fields) EXPECT_NE(k, "correlation_id");
}

TEST(RedisEntry, RefusesWhatCanNeverBePublished) {
  Event e = base();
  Header h;
  h.name = "X-Outbox-Lsn";
  e.headers.push_back(h);
  auto r = build_entry("s", e);
  EXPECT_FALSE(r.entry);
  EXPECT_NE(r.error.find("X-Outbox-Lsn"), std::string::npos);

  Event empty = base();
  empty.event_type = "";
  r = build_entry("{event_type}", empty);
  EXPECT_FALSE(r.entry);
  EXPECT_NE(r.error.find("stream name is empty"), std::string::npos);

  Event longer = base();
  longer.aggregate_type = std::string(1100, 'a');
  r = build_entry("outbox:{aggregate_type}", longer);
  EXPECT_FALSE(r.entry);
  EXPECT_NE(r.error.find("over 1024"), std::string::npos);

  Event dedup = base();
  dedup.aggregate_type = "dedup:01a234d3-5ada-711d-ad48-c7f58eb6170c";
  r = build_entry("outbox:{aggregate_type}", dedup);
  EXPECT_FALSE(r.entry) << "a stream in the de-duplication key space would make that event unpublishable";
  EXPECT_NE(r.error.find("de-duplication key space"), std::string::npos) << r.error;

  Event invalid = base();
  invalid.invalid = "headers is not an object";
  EXPECT_EQ(build_entry("s", invalid).error, "headers is not an object");
}

TEST(RedisEntry, DedupArgsAndXadd) {
  auto r = build_entry("s", base());
  ASSERT_TRUE(r.entry);
  auto a = dedup_args(*r.entry, 120000, 0, "abc");
  ASSERT_GE(a.size(), 5u);
  EXPECT_EQ(a[0], "2");
  EXPECT_EQ(a[1], "outbox:dedup:abc");
  EXPECT_EQ(a[2], "s");
  EXPECT_EQ(a[3], "120000");
  EXPECT_EQ(a[4], "0");
  EXPECT_EQ(a[5], "id");
  auto x = xadd_argv(*r.entry, 1000);
  EXPECT_EQ((std::vector<std::string>(x.begin(), x.begin() + 7)),
            (std::vector<std::string>{"XADD", "s", "MAXLEN", "~", "1000", "*", "id"}));
  EXPECT_EQ(xadd_argv(*r.entry, 0)[2], "*");
}

TEST(RedisReply, Classification) {
  auto id = mk(REDIS_REPLY_STRING, "1700000000000-0");
  auto m = classify_reply(&id);
  EXPECT_EQ(m.kind, ReplyMeaning::Kind::Confirmed);
  EXPECT_FALSE(m.duplicate);
  EXPECT_EQ(m.text, "1700000000000-0");

  auto dup = mk(REDIS_REPLY_STRING, "dup"), old = mk(REDIS_REPLY_STRING, "1-1");
  redisReply* els[] = {&dup, &old};
  redisReply arr{};
  arr.type = REDIS_REPLY_ARRAY;
  arr.elements = 2;
  arr.element = els;
  m = classify_reply(&arr);
  EXPECT_EQ(m.kind, ReplyMeaning::Kind::Confirmed);
  EXPECT_TRUE(m.duplicate);
  EXPECT_EQ(m.text, "1-1");

  auto wt = mk(REDIS_REPLY_ERROR, "WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_EQ(classify_reply(&wt).kind, ReplyMeaning::Kind::Refused);
  // Out of memory, or a command the user may not run: every event alike, so the connection (not
  // the event) is at fault; else the whole stream would become dead letters in seconds.
  auto oom = mk(REDIS_REPLY_ERROR, "OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_EQ(classify_reply(&oom).kind, ReplyMeaning::Kind::Broken);
  auto noperm_cmd = mk(REDIS_REPLY_ERROR, "NOPERM this user has no permissions to run the 'evalsha' command");
  EXPECT_EQ(classify_reply(&noperm_cmd).kind, ReplyMeaning::Kind::Broken);
  auto noperm_key = mk(REDIS_REPLY_ERROR, "NOPERM this user has no permissions to access one of the keys used as arguments");
  EXPECT_EQ(classify_reply(&noperm_key).kind, ReplyMeaning::Kind::Refused);
  auto ns = mk(REDIS_REPLY_ERROR, "NOSCRIPT No matching script.");
  EXPECT_EQ(classify_reply(&ns).kind, ReplyMeaning::Kind::NoScript);
  auto ro = mk(REDIS_REPLY_ERROR, "READONLY You can't write against a read only replica.");
  EXPECT_EQ(classify_reply(&ro).kind, ReplyMeaning::Kind::Broken);
  auto loading = mk(REDIS_REPLY_ERROR, "LOADING Redis is loading the dataset in memory");
  EXPECT_EQ(classify_reply(&loading).kind, ReplyMeaning::Kind::Broken);
  auto n = mk(REDIS_REPLY_INTEGER);
  EXPECT_EQ(classify_reply(&n).kind, ReplyMeaning::Kind::Refused);
}

TEST(RedisUrlParse, Forms) {
  auto u = parse_redis_url("redis://127.0.0.1:16379");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 16379);
  EXPECT_EQ(u.db, 0);
  EXPECT_FALSE(u.password);
  u = parse_redis_url("rediss://relay:s%40cret@localhost/3");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.port, 6379);
  EXPECT_EQ(*u.user, "relay");
  EXPECT_EQ(*u.password, "s@cret");
  EXPECT_EQ(u.db, 3);
  EXPECT_EQ(u.masked.find("cret"), std::string::npos);
  u = parse_redis_url("redis://:pw@[::1]:7000/");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 7000);
  EXPECT_FALSE(u.user);
  EXPECT_EQ(*u.password, "pw");
}

TEST(RedisUrlParse, BadOnesAreConfigAndMasked) {
  for (const char* bad : {"http://h", "redis://", "redis://h:0", "redis://h:70000", "redis://u:secretpw@h/x",
                          "redis://u:secretpw@h?db=1"}) {
    try {
      parse_redis_url(bad);
      ADD_FAILURE() << bad;
    } catch (const SinkError& e) {
      EXPECT_EQ(e.kind, SinkErrorKind::Config) << bad;
      EXPECT_EQ(std::string(e.what()).find("secretpw"), std::string::npos) << e.what();
    }
  }
}

// What a dead letter says Redis refused: the stream named and the error's code, not its text.
TEST(RedisRefusal, NamesTheStreamAndTheErrorCode) {
  EXPECT_EQ(redis_refusal("orders", "WRONGTYPE Operation against a key holding the wrong kind of value"),
            R"(Redis: key "orders" is not a stream (WRONGTYPE))");
  EXPECT_EQ(redis_refusal("orders", "NOPERM No permissions to access a key"),
            R"(Redis: stream "orders" refused the entry (NOPERM))");
  EXPECT_EQ(redis_refusal("orders", "something else"), R"(Redis: stream "orders" refused the entry)");
}
