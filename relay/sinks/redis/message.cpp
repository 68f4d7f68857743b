#include "sinks/redis/message.h"

#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "delivery/event_json.h"
#include "sinks/event_metadata.h"

namespace outbox {

namespace {

const char* const kPlaceholders[] = {"aggregate_type", "event_type", "routing_key", "exchange"};

std::string value_or_null(const std::optional<std::string>& v) { return v ? *v : std::string("_"); }

std::string placeholder_value(const std::string& name, const Event& ev) {
  if (name == "aggregate_type") return value_or_null(ev.aggregate_type);
  if (name == "event_type") return ev.event_type;
  if (name == "routing_key") return value_or_null(ev.routing_key);
  return value_or_null(ev.exchange);
}

std::string double_text(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

nlohmann::json header_json(const HeaderValue& v) {
  switch (v.kind) {
    case HeaderValue::Kind::String: return v.s;
    case HeaderValue::Kind::Int: return v.i;
    case HeaderValue::Kind::Double: return v.d;
    case HeaderValue::Kind::Bool: return v.b;
    case HeaderValue::Kind::Null: break;
  }
  return nullptr;
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

std::optional<std::string> stream_template_problem(const std::string& tmpl) {
  if (tmpl.empty()) return std::string("the stream name template is empty");
  for (std::size_t p = 0; p < tmpl.size();) {
    auto open = tmpl.find('{', p);
    auto close = tmpl.find('}', p);
    if (close != std::string::npos && (open == std::string::npos || close < open))
      return "the stream name template \"" + tmpl + "\" has a '}' without '{'";
    if (open == std::string::npos) break;
    close = tmpl.find('}', open);
    if (close == std::string::npos) return "the stream name template \"" + tmpl + "\" has an unclosed '{'";
    std::string name = tmpl.substr(open + 1, close - open - 1);
    bool known = false;
    for (const char* k : kPlaceholders) known = known || name == k;
    if (!known)
      return "the stream name template \"" + tmpl + "\" has an unknown placeholder {" + name +
             "} (known: {aggregate_type} {event_type} {routing_key} {exchange})";
    p = close + 1;
  }
  return std::nullopt;
}

std::string stream_name(const std::string& tmpl, const Event& ev) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  for (std::size_t p = 0; p < tmpl.size();) {
    auto open = tmpl.find('{', p);
    if (open == std::string::npos) {
      out.append(tmpl, p, std::string::npos);
      break;
    }
    out.append(tmpl, p, open - p);
    auto close = tmpl.find('}', open);
    if (close == std::string::npos) {  // not a valid template: kept as it is
      out.append(tmpl, open, std::string::npos);
      break;
    }
    out += placeholder_value(tmpl.substr(open + 1, close - open - 1), ev);
    p = close + 1;
  }
  return out;
}

std::string header_value_text(const HeaderValue& v) {
  switch (v.kind) {
    case HeaderValue::Kind::String: return v.s;
    case HeaderValue::Kind::Int: return std::to_string(v.i);
    case HeaderValue::Kind::Double: return double_text(v.d);
    case HeaderValue::Kind::Bool: return v.b ? "true" : "false";
    case HeaderValue::Kind::Null: break;
  }
  return "";
}

RedisFields entry_fields(const Event& ev, const std::string& cloudevents_source, std::int64_t now_us) {
  RedisFields f;
  f.reserve(24);
  f.emplace_back("id", ev.id);
  f.emplace_back("type", ev.event_type);
  f.emplace_back("payload", ev.payload);
  if (ev.headers.empty()) {
    f.emplace_back("headers", "{}");  // what the dump below gives, without a JSON tree per event
  } else {
    nlohmann::json h = nlohmann::json::object();
    for (const auto& x : ev.headers) h[x.name] = header_json(x.value);
    // Invalid UTF-8 in a header (the source's bytes) is replaced rather than thrown on.
    f.emplace_back("headers", h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (ev.correlation_id) f.emplace_back("correlation_id", *ev.correlation_id);
  // The same names as NATS headers: traceparent, tracestate, priority, x-outbox-*, ce-* (values
  // as they are: a stream field holds any bytes, no percent-encoding).
  for (auto& m : event_metadata(ev, {true, "ce-", true}, cloudevents_source, event_time_us(ev, now_us)))
    f.emplace_back(std::move(m.name),
                   m.value.kind == HeaderValue::Kind::String ? std::move(m.value.s) : header_value_text(m.value));
  return f;
}

RedisEntryOrError build_entry(const std::string& stream_template, const Event& ev,
                              const std::string& cloudevents_source, std::int64_t now_us) {
  RedisEntryOrError r;
  if (!ev.invalid.empty()) {
    r.error = ev.invalid;
    return r;
  }
  if (auto p = contract_field_problem(ev)) {
    r.error = *p;
    return r;
  }
  if (auto p = reserved_header_problem(ev)) {
    r.error = *p;
    return r;
  }
  RedisEntry e;
  e.stream = stream_name(stream_template, ev);
  if (e.stream.empty()) {
    r.error = "the Redis stream name is empty (template \"" + stream_template +
              "\" with this event's aggregate_type, event_type, routing_key and exchange)";
    return r;
  }
  if (e.stream.size() > kMaxStreamName) {
    r.error = "the Redis stream name is " + std::to_string(e.stream.size()) + " bytes, over " +
              std::to_string(kMaxStreamName) + " (template \"" + stream_template +
              "\": aggregate_type, event_type, routing_key or exchange too long)";
    return r;
  }
  if (e.stream.rfind(kDedupKeyPrefix, 0) == 0) {
    // An aggregate_type "dedup:<id>" would make a stream of the key that de-duplicates event
    // <id>, which then could never be published.
    r.error = "the Redis stream name \"" + e.stream.substr(0, 200) + "\" is in the relay's de-duplication key space (" +
              kDedupKeyPrefix + "...); the event's aggregate_type, event_type, routing_key or exchange made it so";
    return r;
  }
  e.fields = entry_fields(ev, cloudevents_source, now_us);
  r.entry = std::move(e);
  return r;
}

const char* const kDedupScript =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then\n"
    "  local id\n"
    "  if ARGV[2] ~= '0' then\n"
    "    id = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))\n"
    "  else\n"
    "    id = redis.pcall('XADD', KEYS[2], '*', unpack(ARGV, 3))\n"
    "  end\n"
    "  if type(id) == 'table' and id.err then\n"
    "    redis.call('DEL', KEYS[1])\n"
    "    return id\n"
    "  end\n"
    "  redis.call('SET', KEYS[1], id, 'PX', ARGV[1])\n"
    "  return id\n"
    "end\n"
    "return {'dup', redis.call('GET', KEYS[1])}\n";

std::vector<std::string> dedup_args(RedisEntry e, std::int64_t window_ms, std::uint64_t maxlen,
                                    const std::string& event_id) {
  std::vector<std::string> a;
  a.reserve(5 + 2 * e.fields.size());
  a.emplace_back("2");
  a.push_back(kDedupKeyPrefix + event_id);
  a.push_back(std::move(e.stream));
  a.push_back(std::to_string(window_ms));
  a.push_back(std::to_string(maxlen));
  for (auto& [k, v] : e.fields) {
    a.push_back(std::move(k));
    a.push_back(std::move(v));
  }
  return a;
}

std::vector<std::string> xadd_argv(RedisEntry e, std::uint64_t maxlen) {
  std::vector<std::string> a;
  a.reserve(6 + 2 * e.fields.size());
  a.emplace_back("XADD");
  a.push_back(std::move(e.stream));
  if (maxlen > 0) {
    a.emplace_back("MAXLEN");
    a.emplace_back("~");
    a.push_back(std::to_string(maxlen));
  }
  a.emplace_back("*");
  for (auto& [k, v] : e.fields) {
    a.push_back(std::move(k));
    a.push_back(std::move(v));
  }
  return a;
}

std::string reply_text(const redisReply* r) {
  if (!r) return "(no reply)";
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_NIL: return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string s = "[";
      for (std::size_t i = 0; i < r->elements; ++i) s += (i ? ", " : "") + reply_text(r->element[i]);
      return s + "]";
    }
    default: return "(reply type " + std::to_string(r->type) + ")";
  }
}

ReplyMeaning classify_reply(const redisReply* r) {
  ReplyMeaning m;
  if (!r) {
    m.kind = ReplyMeaning::Kind::Broken;
    m.text = "no reply";
    return m;
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    m.text.assign(r->str, r->len);
    return m;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
      std::string(r->element[0]->str, r->element[0]->len) == "dup") {
    m.duplicate = true;
    m.text = reply_text(r->element[1]);
    return m;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    m.text.assign(r->str, r->len);
    // The error's first word is its code. Codes that say the server (not this message) cannot
    // take writes now break the connection, so that the relay reconnects, to the next address.
    if (starts_with(m.text, "NOSCRIPT")) m.kind = ReplyMeaning::Kind::NoScript;
    else if (starts_with(m.text, "READONLY") || starts_with(m.text, "LOADING") || starts_with(m.text, "MASTERDOWN") ||
             starts_with(m.text, "NOAUTH") || starts_with(m.text, "MISCONF") || starts_with(m.text, "BUSY") ||
             starts_with(m.text, "CLUSTERDOWN") || starts_with(m.text, "TRYAGAIN") ||
             // Out of memory (maxmemory) and a command the relay's user may not run refuse every
             // event alike: as refusals they would turn the whole stream into dead letters in
             // seconds. A key the ACL forbids is this event's (its stream's) fault: a refusal.
             starts_with(m.text, "OOM") ||
             (starts_with(m.text, "NOPERM") && m.text.find("command") != std::string::npos))
      m.kind = ReplyMeaning::Kind::Broken;
    else
      m.kind = ReplyMeaning::Kind::Refused;
    return m;
  }
  m.kind = ReplyMeaning::Kind::Refused;
  m.text = "unexpected reply to XADD: " + reply_text(r);
  return m;
}

std::string redis_refusal(const std::string& stream, const std::string& error) {
  // An error reply starts with its code in capitals ("WRONGTYPE Operation against a key ...").
  std::size_t n = 0;
  while (n < error.size() && ((error[n] >= 'A' && error[n] <= 'Z') || error[n] == '_')) ++n;
  bool code = n > 0 && (n == error.size() || error[n] == ' ');
  if (code && error.compare(0, n, "WRONGTYPE") == 0)
    return "Redis: key " + json_string(stream) + " is not a stream (WRONGTYPE)";
  return "Redis: stream " + json_string(stream) + " refused the entry" + (code ? " (" + error.substr(0, n) + ")" : "");
}

}  // namespace outbox
