#include "delivery/event_json.h"

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "delivery/lsn.h"

namespace outbox {

namespace {

using ojson = nlohmann::ordered_json;  // keeps the members in the order written
constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

std::string dump(const ojson& j, bool ensure_ascii = false) { return j.dump(-1, ' ', ensure_ascii, kReplace); }

// jsonb refuses \u0000: a NUL character becomes U+FFFD.
std::string jsonb_text(std::string_view s) {
  std::string t;
  t.reserve(s.size());
  for (char c : s) {
    if (c == '\0') t += "\xEF\xBF\xBD";
    else t += c;
  }
  return t;
}

ojson text(const std::string& s) {
  if (s.find('\0') == std::string::npos) return s;
  return jsonb_text(s);
}

ojson opt(const std::optional<std::string>& s) { return s ? text(*s) : ojson(nullptr); }

// The payload is JSON text: embedded as JSON when it is (and jsonb can store it), else as a string.
std::string payload_json(const std::string& p) {
  if (p.empty()) return "null";
  // A \u0000 escape (or an escaped backslash before "u0000", rarely) makes it a string: jsonb
  // would refuse the whole dead letter.
  if (p.find("\\u0000") == std::string::npos && nlohmann::json::accept(p)) return p;
  return dump(text(p));
}

}  // namespace

std::string event_to_json(const Event& ev) {
  ojson head = ojson::object();
  head["id"] = text(ev.id);
  head["aggregate_type"] = opt(ev.aggregate_type);
  head["aggregate_id"] = opt(ev.aggregate_id);
  head["event_type"] = text(ev.event_type);
  ojson headers = ojson::object();
  for (const auto& h : ev.headers) {
    ojson v;
    switch (h.value.kind) {
      case HeaderValue::Kind::String: v = text(h.value.s); break;
      case HeaderValue::Kind::Int: v = h.value.i; break;
      case HeaderValue::Kind::Double: v = h.value.d; break;  // shortest form that reads back the same
      case HeaderValue::Kind::Bool: v = h.value.b; break;
      case HeaderValue::Kind::Null: v = nullptr; break;
    }
    headers[h.name.find('\0') == std::string::npos ? h.name : jsonb_text(h.name)] = std::move(v);
  }
  ojson tail = ojson::object();
  tail["headers"] = std::move(headers);
  tail["exchange"] = opt(ev.exchange);
  tail["routing_key"] = opt(ev.routing_key);
  tail["correlation_id"] = opt(ev.correlation_id);
  tail["causation_id"] = opt(ev.causation_id);
  tail["created_at"] = text(ev.created_at);
  // Under the names outbox_emit writes them, and only when set: a dead letter of an event
  // without them reads as one of extension 0.3, which outbox.replay_dead_letter() takes.
  if (ev.traceparent) tail["traceparent"] = text(*ev.traceparent);
  if (ev.tracestate) tail["tracestate"] = text(*ev.tracestate);
  if (ev.priority) tail["priority"] = *ev.priority;
  if (ev.schema_version) tail["schema_version"] = *ev.schema_version;
  tail["lsn"] = format_lsn(ev.lsn);
  tail["xid"] = ev.xid;
  // {head..., "payload": <raw>, tail...}: the payload keeps its bytes, which no JSON value could.
  std::string out = dump(head);
  out.pop_back();  // '}'
  out += ",\"payload\":";
  out += payload_json(ev.payload);
  out += ',';
  std::string t = dump(tail);
  out.append(t, 1, std::string::npos);  // without its '{'
  return out;
}

std::string json_string(std::string_view s) { return dump(ojson(std::string(s))); }

namespace {

// Line breaks, with the blanks around them, become one "; " (a bare " " after ':' ';' ','), tabs
// a space, and the breaks and blanks at either end go: libpq's "failed: ...\n\tIs the server
// running ...?\n" reads as one sentence, and no text can end its log line early.
std::string flatten_lines(std::string_view s) {
  auto is_break = [](char c) { return c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  auto is_blank = [](char c) { return c == ' ' || c == '\t'; };
  std::string out;
  out.reserve(s.size());
  bool pending_break = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (is_break(c)) {
      while (!out.empty() && out.back() == ' ') out.pop_back();
      pending_break = true;
      while (i + 1 < s.size() && (is_blank(s[i + 1]) || is_break(s[i + 1]))) ++i;
      continue;
    }
    if (pending_break && !out.empty()) {
      char last = out.back();
      out += (last == ':' || last == ';' || last == ',') ? " " : "; ";
    }
    pending_break = false;
    out += c == '\t' ? ' ' : c;
  }
  return out;
}

}  // namespace

std::string log_text(std::string_view text) {
  std::string s = flatten_lines(text);
  bool control = false, ascii_only = false, non_ascii = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20) {
      control = true;
    } else if (c == 0x7f) {
      ascii_only = true;
    } else if (c >= 0x80) {
      non_ascii = true;
      auto at = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
      if (c == 0xc2 && at(1) >= 0x80 && at(1) <= 0x9f) ascii_only = true;  // C1 controls (U+0080-U+009F)
      if (c == 0xe2 && at(1) == 0x80 && (at(2) == 0xa8 || at(2) == 0xa9)) ascii_only = true;  // U+2028/9
    }
  }
  bool valid = !non_ascii || simdjson::validate_utf8(s.data(), s.size());
  if (!control && !ascii_only && valid) return s;
  std::string q = dump(ojson(s), ascii_only);
  return q.substr(1, q.size() - 2);
}

}  // namespace outbox
