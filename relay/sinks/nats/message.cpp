#include "sinks/nats/message.h"

#include <strings.h>

#include <fmt/format.h>

#include "delivery/event_json.h"
#include "sinks/event_metadata.h"

namespace outbox {

namespace {

std::vector<std::string> split_tokens(const std::string& s) {
  std::vector<std::string> t;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    t.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return t;
}

bool is_ctl_or_space(unsigned char c) { return c <= 0x20 || c == 0x7f; }

std::string header_value_text(const HeaderValue& v) {
  switch (v.kind) {
    case HeaderValue::Kind::String: return v.s;
    case HeaderValue::Kind::Int: return std::to_string(v.i);
    case HeaderValue::Kind::Double: return fmt::format("{}", v.d);
    case HeaderValue::Kind::Bool: return v.b ? "true" : "false";
    case HeaderValue::Kind::Null: return "";
  }
  return "";
}

// The relay's own headers are built for this message only: their text is moved, not copied.
std::string header_value_text(HeaderValue&& v) {
  return v.kind == HeaderValue::Kind::String ? std::move(v.s) : header_value_text(v);
}

// The event's own headers, as NATS header lines take them, but those the relay sets (`relay`).
std::optional<std::string> own_headers(const Event& ev, const std::vector<Header>& relay,
                                       std::vector<std::pair<std::string, std::string>>& hdrs) {
  if (auto p = reserved_header_problem(ev)) return "headers: " + *p;
  for (const auto& h : ev.headers) {
    for (unsigned char c : h.name)
      if (c == ':' || is_ctl_or_space(c))
        return "headers: header name \"" + h.name + "\" holds ':', whitespace or a control character";
    if (h.name.size() >= 5 && strncasecmp(h.name.c_str(), "nats-", 5) == 0)
      return "headers: header \"" + h.name + "\" uses the prefix Nats- (reserved for the NATS server's own headers)";
    if (!has_header(relay, h.name)) hdrs.emplace_back(h.name, header_value_text(h.value));
  }
  return std::nullopt;
}

// The NATS binding of CloudEvents percent-encodes a string attribute's value: a space, '"', '%'
// and every byte outside printable ASCII (the binding's 3.1.3.2).
bool ce_header_keeps(unsigned char c) { return c > 0x20 && c < 0x7f && c != '"' && c != '%'; }

// What the relay sets, in this order: Nats-Msg-Id, x-outbox-event-id (both when the event has an
// id), x-outbox-event-type, x-outbox-correlation-id (when set), then event_metadata() with the
// priority as a header and the CloudEvents attributes as ce-* headers, percent-encoded, and
// datacontenttype also as Content-Type (what consumers of other bindings read).
std::vector<Header> relay_headers(const Event& ev, const std::string& cloudevents_source, std::int64_t now_us) {
  std::vector<Header> r;
  r.reserve(4 + 3 + 7 + (cloudevents_source.empty() ? 0 : 11));
  if (!ev.id.empty()) {
    r.push_back(string_header("Nats-Msg-Id", ev.id));
    r.push_back(string_header("x-outbox-event-id", ev.id));
  }
  r.push_back(string_header("x-outbox-event-type", ev.event_type));
  if (ev.correlation_id) r.push_back(string_header("x-outbox-correlation-id", *ev.correlation_id));
  for (Header& h : event_metadata(ev, {true, "ce-", true}, cloudevents_source, event_time_us(ev, now_us))) {
    if (h.name.rfind("ce-", 0) == 0) h.value.s = percent_encode(h.value.s, ce_header_keeps);
    r.push_back(std::move(h));
  }
  if (!cloudevents_source.empty()) r.push_back(string_header("Content-Type", kPayloadContentType));
  return r;
}

}  // namespace

std::string nats_subject(const std::string& prefix, const Event& ev) {
  return prefix + (ev.routing_key ? *ev.routing_key : default_routing_key(ev));
}

std::optional<std::string> nats_subject_problem(const std::string& subject, const Event& ev) {
  std::string from = ev.routing_key ? "routing_key" : "aggregate_type/event_type (the default routing key)";
  auto bad = [&](const std::string& what) {
    std::string shown = subject.size() > 200 ? subject.substr(0, 200) + "..." : subject;
    return std::optional<std::string>("NATS subject \"" + shown + "\" from " + from + ": " + what);
  };
  if (subject.empty()) return bad("empty");
  if (subject.size() > kMaxNatsSubject)
    return bad(fmt::format("{} bytes, more than the {} a subject may have", subject.size(), kMaxNatsSubject));
  for (unsigned char c : subject)
    if (is_ctl_or_space(c)) return bad(fmt::format("holds whitespace or a control character (0x{:02x})", c));
  // Token by token, without a string per token (this runs for every event).
  for (std::size_t start = 0;;) {
    std::size_t dot = subject.find('.', start);
    std::size_t len = (dot == std::string::npos ? subject.size() : dot) - start;
    if (len == 0) return bad("an empty token (\"..\", or a leading or trailing '.')");
    if (len == 1 && (subject[start] == '*' || subject[start] == '>'))
      return bad("the wildcard token \"" + subject.substr(start, 1) + "\" (wildcards cannot be published to)");
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // $JS.API.STREAM.PURGE.X, $KV..., $SYS..., _INBOX...: a request to the server, or a reply to
  // someone, with the relay's rights. An event must never reach them, whatever the prefix.
  if (subject[0] == '$' || subject.rfind("_INBOX.", 0) == 0)
    return bad("starts with '$' or \"_INBOX.\" (the server's API and reply subjects)");
  return std::nullopt;
}

std::variant<NatsMessage, std::string> build_nats_message(const Event& ev, const std::string& subject_prefix,
                                                          std::int64_t max_payload,
                                                          const std::string& cloudevents_source, std::int64_t now_us) {
  if (!ev.invalid.empty()) return ev.invalid;
  if (auto p = contract_field_problem(ev)) return *p;
  NatsMessage m;
  m.subject = nats_subject(subject_prefix, ev);
  if (auto p = nats_subject_problem(m.subject, ev)) return *p;

  std::vector<Header> relay = relay_headers(ev, cloudevents_source, now_us);
  auto& hdrs = m.headers;
  hdrs.reserve(ev.headers.size() + relay.size());
  if (auto p = own_headers(ev, relay, hdrs)) return *p;
  for (auto& h : relay) hdrs.emplace_back(std::move(h.name), header_value_text(std::move(h.value)));

  std::size_t hdr_bytes = 12;  // "NATS/1.0\r\n" ... "\r\n"
  for (const auto& [k, v] : hdrs) {
    // The header block is written as it is (encoded_message.h): a CR or LF would end the line
    // and start a header of the event's choosing, a NUL would end nats.c's reading of it.
    // A loop, not find_first_of: libstdc++'s calls memchr on the three bytes for every byte of
    // the value (4 % of a NATS drain's loop).
    std::size_t bad = 0;
    while (bad < v.size() && v[bad] != '\r' && v[bad] != '\n' && v[bad] != '\0') ++bad;
    if (bad < v.size()) {
      std::string field = k.rfind("x-outbox-", 0) == 0 || k == "Nats-Msg-Id" ? "the value of " + k
                                                                             : "header \"" + k + "\"";
      return "headers: " + field + (v[bad] == '\0' ? " holds a NUL byte" : " holds a CR or LF");
    }
    hdr_bytes += k.size() + v.size() + 4;
  }
  if (static_cast<std::int64_t>(ev.payload.size() + hdr_bytes) > max_payload)
    return fmt::format("payload: {} bytes with {} bytes of headers, more than the server's max_payload of {}",
                       ev.payload.size(), hdr_bytes, max_payload);
  m.data = &ev.payload;
  return m;
}

bool filter_covers(const std::string& filter, const std::string& pattern) {
  auto f = split_tokens(filter), p = split_tokens(pattern);
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == ">") return i < p.size();
    if (i >= p.size() || p[i] == ">") return false;
    if (f[i] == "*") continue;
    if (f[i] != p[i] || p[i] == "*") return false;
  }
  return f.size() == p.size();
}

bool filter_may_take_prefix(const std::string& filter, const std::string& prefix) {
  auto f = split_tokens(filter), p = split_tokens(prefix);
  for (std::size_t i = 0; i < f.size() && i < p.size(); ++i) {
    if (f[i] == ">") return true;
    bool last = i + 1 == p.size();  // the token the routing key completes
    if (f[i] == "*" || f[i] == p[i] || (last && f[i].rfind(p[i], 0) == 0)) {
      if (last) return true;
      continue;
    }
    return false;
  }
  return false;
}

bool filters_overlap(const std::string& a, const std::string& b) {
  auto x = split_tokens(a), y = split_tokens(b);
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (x[i] == ">" || y[i] == ">") return true;
    if (x[i] == "*" || y[i] == "*" || x[i] == y[i]) continue;
    return false;
  }
  return x.size() == y.size();
}

std::string nats_refusal(Refusal why, const std::string& subject, int jetstream_error) {
  std::string s = "subject " + json_string(subject);
  switch (why) {
    case Refusal::Returned: return "NATS: no JetStream stream captures " + s;
    case Refusal::ExchangeMissing:
    case Refusal::DestinationMissing: return "NATS: the JetStream stream that captured " + s + " is gone";
    case Refusal::Nacked: break;
  }
  if (jetstream_error == 0) return "NATS: publishing to " + s + " is not permitted";
  return fmt::format("NATS: JetStream refused {} (error {})", s, jetstream_error);
}

}  // namespace outbox
