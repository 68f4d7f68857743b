#include "source/wal2json_parser.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include <openssl/crypto.h>

#include "delivery/event_fields.h"

namespace outbox {

namespace od = simdjson::ondemand;
using simdjson::error_code;

namespace {

// Thrown inside the parser when simdjson reports a syntax error (not a type mismatch): the text
// is not valid JSON. parse() turns it into a Rejected line, a message body into Event::invalid.
struct NotJson {
  error_code err;
};

void need(error_code err) {
  if (err) throw NotJson{err};
}

// simdjson's On Demand parser reads SIMDJSON_PADDING bytes past the end of its input: a reused
// buffer with that much spare capacity.
simdjson::padded_string_view padded(std::string& buf) {
  return simdjson::padded_string_view(buf.data(), buf.size(), buf.capacity());
}

void fill(std::string& buf, std::string_view a, std::string_view b = {}) {
  std::size_t n = a.size() + b.size();
  if (buf.capacity() < n + simdjson::SIMDJSON_PADDING) buf.reserve(n + simdjson::SIMDJSON_PADDING);
  buf.assign(a.data(), a.size());
  buf.append(b.data(), b.size());
}

std::string not_json(const char* what, error_code err) {
  return std::string(what) + " (" + simdjson::error_message(err) + ")";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A name or value shown inside a reason: bounded, quoted.
std::string shown(std::string_view s, std::size_t max = 64) {
  std::string q = "\"";
  if (s.size() <= max) {
    q.append(s);
    q += '"';
  } else {
    q.append(s.substr(0, max));
    q += "\"... (" + std::to_string(s.size()) + " bytes)";
  }
  return q;
}

std::string excerpt(std::string_view s, std::size_t max = 40) {
  if (s.size() <= max) return std::string(s);
  return std::string(s.substr(0, max)) + "... (" + std::to_string(s.size()) + " characters)";
}

void reject(ParsedLine& out, std::string why) {
  out.kind = LineKind::Rejected;
  out.reject_reason = std::move(why);
}

void add_invalid(Event& ev, const std::string& why) {
  constexpr std::size_t kMax = 2048;  // a reason, not a report: the first problems are enough
  if (ev.invalid.size() >= kMax) return;
  if (!ev.invalid.empty()) ev.invalid += "; ";
  ev.invalid += why;
  if (ev.invalid.size() >= kMax) ev.invalid += "; ...";
}

// The fields of an event, as column names (table storage) and member names (wal storage).
enum class Field {
  Id, AggregateType, AggregateId, EventType, Payload, Headers, Exchange, RoutingKey, CorrelationId,
  CausationId, CreatedAt, Traceparent, Tracestate, Priority, SchemaVersion, Other
};

// Compared raw (without unescaping): our names have no escapes, a name written with escapes is
// "Other" and ignored.
Field field_of(od::raw_json_string k) {
  if (k == "id") return Field::Id;
  if (k == "aggregate_type") return Field::AggregateType;
  if (k == "aggregate_id") return Field::AggregateId;
  if (k == "event_type") return Field::EventType;
  if (k == "payload") return Field::Payload;
  if (k == "headers") return Field::Headers;
  if (k == "exchange") return Field::Exchange;
  if (k == "routing_key") return Field::RoutingKey;
  if (k == "correlation_id") return Field::CorrelationId;
  if (k == "causation_id") return Field::CausationId;
  if (k == "created_at") return Field::CreatedAt;
  if (k == "traceparent") return Field::Traceparent;
  if (k == "tracestate") return Field::Tracestate;
  if (k == "priority") return Field::Priority;
  if (k == "schema_version") return Field::SchemaVersion;
  return Field::Other;
}

const char* name_of(Field f) {
  switch (f) {
    case Field::Id: return "id";
    case Field::AggregateType: return "aggregate_type";
    case Field::AggregateId: return "aggregate_id";
    case Field::EventType: return "event_type";
    case Field::Payload: return "payload";
    case Field::Headers: return "headers";
    case Field::Exchange: return "exchange";
    case Field::RoutingKey: return "routing_key";
    case Field::CorrelationId: return "correlation_id";
    case Field::CausationId: return "causation_id";
    case Field::CreatedAt: return "created_at";
    case Field::Traceparent: return "traceparent";
    case Field::Tracestate: return "tracestate";
    case Field::Priority: return "priority";
    case Field::SchemaVersion: return "schema_version";
    case Field::Other: break;
  }
  return "?";
}

// Reads a text field (a JSON string, or null). Anything else makes the event invalid. Returns
// false for a field that is not a text field.
bool set_text(Field f, od::value v, Event& ev, const char* kind) {
  std::string* req = nullptr;
  std::optional<std::string>* opt = nullptr;
  switch (f) {
    case Field::Id: req = &ev.id; break;
    case Field::EventType: req = &ev.event_type; break;
    case Field::CreatedAt: req = &ev.created_at; break;
    case Field::AggregateType: opt = &ev.aggregate_type; break;
    case Field::AggregateId: opt = &ev.aggregate_id; break;
    case Field::Exchange: opt = &ev.exchange; break;
    case Field::RoutingKey: opt = &ev.routing_key; break;
    case Field::CorrelationId: opt = &ev.correlation_id; break;
    case Field::CausationId: opt = &ev.causation_id; break;
    case Field::Traceparent: opt = &ev.traceparent; break;
    case Field::Tracestate: opt = &ev.tracestate; break;
    default: return false;
  }
  od::json_type t;
  need(v.type().get(t));
  if (t == od::json_type::string) {
    std::string_view s;
    need(v.get_string().get(s));
    if (req) req->assign(s.data(), s.size());
    else opt->emplace(s);
  } else if (t == od::json_type::null) {
    if (req) req->clear();
    else opt->reset();
  } else {
    add_invalid(ev, std::string(kind) + " \"" + name_of(f) + "\" is not a string");
  }
  return true;
}

// Reads an integer field (a JSON integer, or null; smallint and integer columns arrive as bare
// numbers from both plugins). Anything else, or a value outside the field's range, makes the
// event invalid; a value that fits the event's int is kept all the same, for the dead letter.
// Returns false for a field that is not an integer field.
bool set_integer(Field f, od::value v, Event& ev, const char* kind) {
  std::optional<int>* dst = nullptr;
  std::optional<std::string> (*problem)(std::int64_t) = nullptr;
  switch (f) {
    case Field::Priority: dst = &ev.priority, problem = priority_problem; break;
    case Field::SchemaVersion: dst = &ev.schema_version, problem = schema_version_problem; break;
    default: return false;
  }
  od::json_type t;
  need(v.type().get(t));
  dst->reset();
  if (t == od::json_type::null) return true;
  std::string field = std::string(kind) + " \"" + name_of(f) + "\"";
  std::string_view tok;
  if (t == od::json_type::number) tok = trim(v.raw_json_token());
  else need(simdjson::to_json_string(v).get(tok));
  if (t != od::json_type::number || tok.find_first_of(".eE") != std::string_view::npos) {
    add_invalid(ev, field + " is not an integer (" + excerpt(tok) + ")");
    return true;
  }
  std::int64_t n = 0;
  if (v.get_int64().get(n)) {
    add_invalid(ev, field + " is " + excerpt(tok) + ", beyond a 64-bit integer");
    return true;
  }
  if (n >= INT32_MIN && n <= INT32_MAX) *dst = static_cast<int>(n);
  if (auto p = problem(n)) add_invalid(ev, *p);
  return true;
}

const char* const kNoKey =
    "outbox message rejected: the relay holds no message key of this database, so it cannot tell messages "
    "written by outbox_emit from forged ones (any role can call pg_logical_emit_message) -- fix: SELECT "
    "outbox.grant_relay('<relay role>') so the relay role may call outbox.message_keys(), then restart the relay";

}  // namespace

void Wal2jsonParser::add_message_key(std::uint32_t id, std::string key_bytes) {
  if (key_bytes.size() != OUTBOX_MAC_KEY_BYTES) {
    std::size_t n = key_bytes.size();
    OPENSSL_cleanse(key_bytes.data(), key_bytes.size());
    throw std::invalid_argument("message key " + std::to_string(id) + " has " + std::to_string(n) +
                                " bytes, not " + std::to_string(OUTBOX_MAC_KEY_BYTES) +
                                " -- fix: check what SELECT key_id, length(key) FROM outbox.message_keys() returns");
  }
  auto auth = std::make_unique<MessageAuth>();
  auth->set_key(key_bytes);
  OPENSSL_cleanse(key_bytes.data(), key_bytes.size());
  keys_[id] = std::move(auth);
}

// The members of a plugin line that decide what it is (views into line_buf_).
struct Wal2jsonParser::LineFields {
  std::string_view action, timestamp, schema, table, prefix, content;
  bool have_action = false, have_timestamp = false, have_schema = false, have_table = false, have_prefix = false,
       have_content = false;
  bool transactional = true, columns_done = false, columns_early = false, columns_bad = false;
  bool oversized = false;
  std::uint64_t xid = 0, oversized_bytes = 0, oversized_limit = 0;
};

void Wal2jsonParser::parse(std::string_view line, Lsn lsn, ParsedLine& out) {
  out.kind = LineKind::Ignored;
  out.xid = 0;
  out.timestamp.clear();
  out.reject_reason.clear();
  out.unverified = false;
  out.unknown_key = false;
  out.key_id.reset();
  if (line.empty()) return reject(out, "empty line from the plugin");
  try {
    fill(line_buf_, line);
    od::document doc;
    error_code err = outer_.iterate(padded(line_buf_)).get(doc);
    if (err) return reject(out, not_json("line is not valid JSON", err));
    od::object o;
    err = doc.get_object().get(o);
    if (err == simdjson::INCORRECT_TYPE) return reject(out, "line is not a JSON object (is format-version 2 set?)");
    need(err);
    LineFields f;
    if (!read_line(o, f, out)) return;
    if (!f.have_action) throw ParseError("line has no \"action\" string (is format-version 2 set?)");
    if (f.action.size() != 1) throw ParseError("unknown action \"" + excerpt(f.action) + "\"");
    switch (f.action[0]) {
      case 'B':
      case 'C':
        out.kind = f.action[0] == 'B' ? LineKind::Begin : LineKind::Commit;
        out.xid = f.xid;
        if (f.have_timestamp) out.timestamp.assign(f.timestamp.data(), f.timestamp.size());
        return;
      case 'I': return insert_line(doc, f, lsn, out);
      case 'M': return message_line(f, lsn, out);
      default: return;  // U, D, T and anything newer: not ours
    }
  } catch (const NotJson& e) {
    out.event = Event{};
    return reject(out, not_json("line is not valid JSON", e.err));
  }
}

// wal2json writes action, xid, timestamp, then schema/table/columns or transactional/prefix/
// content: one pass, deciding as early as the fields allow. False when it rejected the line.
bool Wal2jsonParser::read_line(od::object o, LineFields& f, ParsedLine& out) {
  for (auto field : o) {
    od::raw_json_string key;
    need(field.key().get(key));
    od::value v;
    need(field.value().get(v));
    if (key == "action") {
      error_code err = v.get_string().get(f.action);
      if (err == simdjson::INCORRECT_TYPE) throw ParseError("line has no \"action\" string");
      need(err);
      f.have_action = true;
    } else if (key == "xid") {
      std::uint64_t x;
      if (!v.get_uint64().get(x)) f.xid = x;  // null for non-transactional messages
    } else if (key == "timestamp") {
      f.have_timestamp = !v.get_string().get(f.timestamp);  // null without include-timestamp
    } else if (key == "schema") {
      f.have_schema = !v.get_string().get(f.schema);
    } else if (key == "table") {
      f.have_table = !v.get_string().get(f.table);
    } else if (key == "prefix") {
      f.have_prefix = !v.get_string().get(f.prefix);
    } else if (key == "transactional") {
      bool b;
      if (!v.get_bool().get(b)) f.transactional = b;
    } else if (key == "content") {
      if (f.have_prefix && f.prefix != prefix_) continue;  // not ours: do not unescape it
      error_code err = v.get_string().get(f.content);
      if (err == simdjson::STRING_ERROR) {
        reject(out, "message content is not a valid JSON string");
        return false;
      }
      if (err != simdjson::INCORRECT_TYPE) need(err);
      f.have_content = !err;
    } else if (key == OUTBOX_OVERSIZED_FIELD) {
      read_oversized(v, f);
    } else if (key == "columns") {
      if (!(f.have_action && f.action == "I" && f.have_schema && f.have_table)) {
        f.columns_early = true;  // unusual order: read them in a second pass if they are ours
      } else if (f.schema == schema_ && f.table == table_) {
        od::array cols;
        error_code err = v.get_array().get(cols);
        if (err == simdjson::INCORRECT_TYPE) {
          f.columns_bad = true;
          continue;
        }
        need(err);
        out.event = Event{};
        event_from_row(cols, out.event);
        f.columns_done = true;
      }
    }
  }
  return true;
}

// outbox_decoder's marker for a message it did not write (common/outbox_wire.h).
void Wal2jsonParser::read_oversized(od::value v, LineFields& f) {
  od::object m;
  if (v.get_object().get(m)) throw ParseError("\"" OUTBOX_OVERSIZED_FIELD "\" member is not an object");
  for (auto member : m) {
    od::raw_json_string k;
    need(member.key().get(k));
    std::uint64_t n = 0;
    if (member.value().get_uint64().get(n)) throw ParseError("\"" OUTBOX_OVERSIZED_FIELD "\" member holds a non-number");
    if (k == "bytes") f.oversized_bytes = n;
    else if (k == "limit") f.oversized_limit = n;
  }
  f.oversized = true;
}

void Wal2jsonParser::insert_line(od::document& doc, const LineFields& f, Lsn lsn, ParsedLine& out) {
  if (!f.have_schema || !f.have_table) throw ParseError("insert line without schema/table");
  if (f.schema != schema_ || f.table != table_) return;
  if (!f.columns_done) {
    od::array cols;
    if (f.columns_bad || !f.columns_early) throw ParseError("insert line without \"columns\" array");
    doc.rewind();
    error_code err = doc.find_field_unordered("columns").get_array().get(cols);
    if (err == simdjson::INCORRECT_TYPE || err == simdjson::NO_SUCH_FIELD)
      throw ParseError("insert line without \"columns\" array");
    need(err);
    out.event = Event{};
    event_from_row(cols, out.event);
  }
  out.event.lsn = lsn;
  out.event.xid = f.xid;
  check_limits(out.event);
  out.kind = LineKind::Event;
  out.xid = f.xid;
}

void Wal2jsonParser::message_line(const LineFields& f, Lsn lsn, ParsedLine& out) {
  if (!f.have_prefix) throw ParseError("message line without \"prefix\"");
  if (f.prefix != prefix_) return;
  if (f.oversized) {
    // Nothing to verify: the plugin left the content out. outbox_emit refuses to write a
    // message this large, so no genuine event can be one.
    out.xid = f.xid;
    out.event = Event{};
    return reject(out, "outbox message of " + std::to_string(f.oversized_bytes) +
                           " bytes left out by outbox_decoder, more than its " OUTBOX_MESSAGE_MAX_BYTES_OPTION " (" +
                           std::to_string(f.oversized_limit) +
                           " bytes): outbox_emit writes no message that large, so a role wrote it with "
                           "pg_logical_emit_message; not published");
  }
  if (!f.have_content) throw ParseError("message line without \"content\" string");
  out.xid = f.xid;
  out.event = Event{};
  out.event.lsn = lsn;
  out.event.xid = f.xid;
  out.event.from_message = true;
  out.event.transactional = f.transactional;
  event_from_message(f.content, out.event, out);
}

// Storage mode table: one INSERT into outbox.events, json/jsonb columns as JSON strings.
void Wal2jsonParser::event_from_row(od::array cols, Event& ev) {
  bool have_payload = false, have_type = false;
  for (auto c : cols) {
    od::object col;
    error_code err = c.get_object().get(col);
    if (err == simdjson::INCORRECT_TYPE) throw ParseError("column entry is not an object");
    need(err);
    od::value name_v, v;
    err = col.find_field_unordered("name").get(name_v);
    if (err == simdjson::NO_SUCH_FIELD) throw ParseError("column entry without \"name\"");
    need(err);
    od::raw_json_string name;
    err = name_v.get_raw_json_string().get(name);
    if (err == simdjson::INCORRECT_TYPE) throw ParseError("column entry without \"name\" string");
    need(err);
    Field f = field_of(name);
    err = col.find_field_unordered("value").get(v);
    if (err == simdjson::NO_SUCH_FIELD) throw ParseError("column entry without \"value\"");
    need(err);
    if (f == Field::Other) continue;
    if (set_text(f, v, ev, "column")) {
      if (f == Field::EventType) have_type = true;
      continue;
    }
    if (set_integer(f, v, ev, "column")) continue;
    od::json_type t;
    need(v.type().get(t));
    if (f == Field::Payload) {
      have_payload = true;
      if (t != od::json_type::string) {
        add_invalid(ev, t == od::json_type::null ? "column \"payload\" is null"
                                                 : "column \"payload\" is not a string (jsonb as text)");
        continue;
      }
      std::string_view s;
      need(v.get_string().get(s));
      ev.payload.assign(s.data(), s.size());
    } else if (f == Field::Headers) {
      if (t == od::json_type::null) continue;
      if (t != od::json_type::string) {
        add_invalid(ev, "column \"headers\" is not a string (jsonb as text)");
        continue;
      }
      std::string_view s;
      need(v.get_string().get(s));
      headers_from_text(s, ev);
    }
  }
  if (!have_type) add_invalid(ev, "outbox row without event_type");
  if (!have_payload) add_invalid(ev, "outbox row without payload");
}

// Starts reading `buf` (filled with its padding) as one JSON object, `o`, with the inner parser.
// Valid JSON that is no object makes the event invalid, `not_object` says how: false.
bool Wal2jsonParser::inner_object(std::string& buf, od::document& doc, od::object& o, Event& ev,
                                  const char* not_object) {
  need(inner_.iterate(padded(buf)).get(doc));
  error_code err = doc.get_object().get(o);
  if (err == simdjson::INCORRECT_TYPE) {
    add_invalid(ev, not_object);
    return false;
  }
  need(err);
  return true;
}

// The headers column: a JSON object as text, parsed on its own.
void Wal2jsonParser::headers_from_text(std::string_view text, Event& ev) {
  try {
    fill(headers_buf_, text);
    od::document doc;
    od::object o;
    if (inner_object(headers_buf_, doc, o, ev, "column \"headers\" is not a JSON object")) headers_from_object(o, ev);
  } catch (const NotJson& e) {
    ev.headers.clear();
    add_invalid(ev, not_json("column \"headers\" holds invalid JSON", e.err));
  }
}

// Storage mode wal: content = {"mac":"<hex>", + body without its '{' (common/outbox_wire.h).
void Wal2jsonParser::event_from_message(std::string_view content, Event& ev, ParsedLine& out) {
  auto reject = [&](std::string why) {
    out.kind = LineKind::Rejected;
    out.reject_reason = std::move(why);
    ev = Event{};
  };
  if (keys_.empty()) return reject(kNoKey);
  static constexpr std::string_view open = OUTBOX_MAC_OPEN, close = OUTBOX_MAC_CLOSE, kid = OUTBOX_MAC_KID;
  constexpr std::size_t hex_len = OUTBOX_MAC_HEX_LEN;
  if (content.substr(0, open.size()) != open)
    return reject("outbox message without a MAC (" + std::to_string(content.size()) +
                  " bytes): not written by outbox_emit; any role can call pg_logical_emit_message('" + prefix_ +
                  "', ...), so it is not published");
  std::string_view hex = content.substr(open.size(), hex_len);
  bool hex_ok = hex.size() == hex_len;
  for (char c : hex) hex_ok = hex_ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  // After the hex: `","kid":<id>,` (0.3) or `",` (0.2: key OUTBOX_LEGACY_KEY_ID, not bound to the xid).
  std::string_view rest = content.substr(std::min(content.size(), open.size() + hex_len));
  std::uint32_t key_id = OUTBOX_LEGACY_KEY_ID;
  bool bound = false;
  std::size_t body_at = 0;
  if (hex_ok && rest.substr(0, kid.size()) == kid) {
    std::size_t i = kid.size();
    std::uint64_t id = 0;
    while (i < rest.size() && i < kid.size() + 10 && rest[i] >= '0' && rest[i] <= '9') id = id * 10 + (rest[i++] - '0');
    hex_ok = i > kid.size() && i < rest.size() && rest[i] == ',' && id <= 0xffffffffu;
    key_id = static_cast<std::uint32_t>(id);
    bound = true;
    body_at = i + 1;
  } else if (hex_ok && rest.substr(0, close.size()) == close) {
    body_at = close.size();
  } else {
    hex_ok = false;
  }
  if (!hex_ok)
    return reject("outbox message with a malformed MAC (expected " + std::to_string(hex_len) +
                  " lower-case hex digits and a key id): not written by outbox_emit, not published");
  out.key_id = key_id;
  if (!out.xid)
    return reject("outbox message outside a transaction (no xid): outbox_emit writes transactional messages only, "
                  "not published");
  // The only rejections the keys the relay holds can change (the caller may read them again).
  auto unverified = [&](bool unknown_key, std::string why) {
    reject(std::move(why));
    out.unverified = true;
    out.unknown_key = unknown_key;
  };
  auto key = keys_.find(key_id);
  if (key == keys_.end())
    return unverified(true, "outbox message signed with key " + std::to_string(key_id) +
                                ", which the relay does not hold (forged, or a key retired before this relay "
                                "acknowledged the rotation): not published");
  fill(body_buf_, "{", rest.substr(body_at));
  char xid_text[24];
  std::string_view head;
  if (bound) {
    int n = std::snprintf(xid_text, sizeof xid_text, "%llu" OUTBOX_MAC_XID_SEPARATOR,
                          static_cast<unsigned long long>(out.xid));
    head = std::string_view(xid_text, static_cast<std::size_t>(n));
  }
  if (!key->second->verify_hex(hex, head, body_buf_))
    return unverified(false, "outbox message whose MAC does not verify with key " + std::to_string(key_id) +
                                 " (forged or changed, copied from another transaction, or written with another "
                                 "database's key): not published");
  if (control_from_body(out)) return;
  out.kind = LineKind::Event;
  event_from_body(ev);
  check_limits(ev);
}

// {"control":"release","aggregate_type":...,"aggregate_id":...,"slot_name":...}
bool Wal2jsonParser::control_from_body(ParsedLine& out) {
  static constexpr std::string_view lead = "{\"" OUTBOX_CONTROL_FIELD "\"";
  if (body_buf_.compare(0, lead.size(), lead) != 0) return false;
  out.event = Event{};
  ControlMessage c;
  try {
    od::document doc;
    need(inner_.iterate(padded(body_buf_)).get(doc));
    od::object o;
    need(doc.get_object().get(o));
    for (auto field : o) {
      std::string_view key;
      need(field.unescaped_key().get(key));
      od::value v;
      need(field.value().get(v));
      std::optional<std::string>* dst = key == "aggregate_type" ? &c.aggregate_type
                                        : key == "aggregate_id" ? &c.aggregate_id
                                        : key == "slot_name"    ? &c.slot_name
                                                                : nullptr;
      bool is_null = false;
      need(v.is_null().get(is_null));
      if (key == OUTBOX_CONTROL_FIELD) {
        std::string_view k;
        need(v.get_string().get(k));
        c.kind = std::string(k);
      } else if (dst && !is_null) {
        std::string_view t;
        need(v.get_string().get(t));
        *dst = std::string(t);
      }
    }
  } catch (const NotJson& e) {
    reject(out, not_json("authenticated control message is not valid JSON", e.err));
    return true;
  }
  if (c.kind != OUTBOX_CONTROL_RELEASE && c.kind != OUTBOX_CONTROL_KEYS) {
    reject(out, "authenticated control message of unknown kind \"" + c.kind + "\" (a newer extension?)");
    return true;
  }
  out.kind = LineKind::Control;
  out.control = std::move(c);
  return true;
}

// The authenticated body of a message: one JSON object, payload/headers embedded as JSON.
void Wal2jsonParser::event_from_body(Event& ev) {
  bool have_type = false, have_payload = false;
  try {
    od::document doc;
    od::object o;
    if (!inner_object(body_buf_, doc, o, ev, "outbox message content is not a JSON object")) return;
    for (auto field : o) {
      od::raw_json_string key;
      need(field.key().get(key));
      od::value v;
      need(field.value().get(v));
      Field f = field_of(key);
      if (f == Field::Other) continue;
      if (set_text(f, v, ev, "message field")) {
        if (f == Field::EventType) have_type = true;
        continue;
      }
      if (set_integer(f, v, ev, "message field")) continue;
      if (f == Field::Payload) {
        // Byte for byte as outbox_emit wrote it: numbers keep their digits, whatever their size.
        std::string_view raw;
        need(simdjson::to_json_string(v).get(raw));
        ev.payload.assign(raw.data(), raw.size());
        have_payload = true;
      } else if (f == Field::Headers) {
        od::json_type t;
        need(v.type().get(t));
        if (t == od::json_type::null) continue;
        od::object h;
        if (t != od::json_type::object || v.get_object().get(h)) {
          add_invalid(ev, "message field \"headers\" is not a JSON object");
          continue;
        }
        headers_from_object(h, ev);
      }
    }
  } catch (const NotJson& e) {
    add_invalid(ev, not_json("outbox message content is not valid JSON", e.err));
    return;
  }
  if (!have_type) add_invalid(ev, "outbox message without event_type");
  if (!have_payload) add_invalid(ev, "outbox message without payload");
}

void Wal2jsonParser::headers_from_object(od::object obj, Event& ev) {
  ev.headers.clear();
  for (auto field : obj) {
    Header h;
    std::string_view k;
    need(field.unescaped_key().get(k));
    h.name.assign(k.data(), k.size());
    od::value v;
    need(field.value().get(v));
    od::json_type t;
    need(v.type().get(t));
    switch (t) {
      case od::json_type::string: {
        std::string_view s;
        need(v.get_string().get(s));
        h.value.kind = HeaderValue::Kind::String;
        h.value.s.assign(s.data(), s.size());
        break;
      }
      case od::json_type::number: {
        // int64 -> Int; other numbers below 2^63 in magnitude -> Double; the rest cannot be an
        // AMQP header number (common/outbox_wire.h).
        std::string_view tok = trim(v.raw_json_token());
        bool ok = false;
        if (tok.find_first_of(".eE") == std::string_view::npos) {
          std::int64_t i;
          if (!v.get_int64().get(i)) {
            h.value.kind = HeaderValue::Kind::Int;
            h.value.i = i;
            ok = true;
          }
        } else {
          double d;
          if (!v.get_double().get(d) && std::fabs(d) < 9223372036854775808.0) {
            h.value.kind = HeaderValue::Kind::Double;
            h.value.d = d;
            ok = true;
          }
        }
        if (!ok) {
          add_invalid(ev, "header " + shown(h.name) + " holds " + excerpt(tok) +
                              ", beyond what an AMQP header number holds (|n| < 2^63); send it as a string");
          h.value.kind = HeaderValue::Kind::String;  // kept as text for the dead letter
          h.value.s.assign(tok.data(), tok.size());
        }
        break;
      }
      case od::json_type::boolean: {
        bool b;
        need(v.get_bool().get(b));
        h.value.kind = HeaderValue::Kind::Bool;
        h.value.b = b;
        break;
      }
      case od::json_type::null:
        need(v.is_null().error());
        h.value.kind = HeaderValue::Kind::Null;
        break;
      default: {  // nested object/array (the extension refuses these): pass as minified JSON text
        std::string_view raw;
        need(simdjson::to_json_string(v).get(raw));
        if (minify_buf_.size() < raw.size() + simdjson::SIMDJSON_PADDING)
          minify_buf_.resize(raw.size() + simdjson::SIMDJSON_PADDING);
        std::size_t n = 0;
        need(simdjson::minify(raw.data(), raw.size(), minify_buf_.data(), n));
        h.value.kind = HeaderValue::Kind::String;
        h.value.s.assign(minify_buf_.data(), n);
        break;
      }
    }
    ev.headers.push_back(std::move(h));
  }
}

// What AMQP 0-9-1 (and RabbitMQ) cannot carry, whatever the relay does: the event is invalid.
void Wal2jsonParser::check_limits(Event& ev) {
  auto too_long = [&](const char* field, std::size_t size, std::size_t max, const char* as) {
    if (size > max)
      add_invalid(ev, std::string("\"") + field + "\" has " + std::to_string(size) + " bytes, more than the " +
                          std::to_string(max) + " " + as);
  };
  LongFields longs = long_fields(ev);
  const std::pair<const std::optional<LongField>&, const char*> short_strings[] = {
      {longs.id, "of an AMQP message_id"},
      {longs.event_type, "of an AMQP type"},
      {longs.exchange, "of an AMQP exchange name"},
      {longs.routing_key, "of an AMQP routing key"},
      {longs.correlation_id, "of an AMQP correlation_id"}};
  for (const auto& [f, as] : short_strings) {
    if (!f) continue;
    if (f->default_key)
      add_invalid(ev, "the default routing key <aggregate_type>.<event_type> has " + std::to_string(f->bytes) +
                          " bytes, more than the " + std::to_string(OUTBOX_SHORTSTR_MAX) +
                          " of an AMQP routing key; set routing_key");
    else
      too_long(f->field, f->bytes, OUTBOX_SHORTSTR_MAX, as);
  }
  for (const auto& problem : {ev.traceparent ? traceparent_problem(*ev.traceparent) : std::nullopt,
                        ev.tracestate ? tracestate_problem(*ev.tracestate) : std::nullopt})
    if (problem) add_invalid(ev, *problem);
  std::size_t table = 0;
  auto meta = [&](const char* name, const std::optional<std::string>& v, std::size_t max) {
    if (!v) return;
    too_long(name, v->size(), max, "that outbox_emit accepts");
    table += string_entry_size(std::strlen(OUTBOX_RESERVED_HEADER_PREFIX) + std::strlen(name), v->size());
  };
  meta("aggregate_type", ev.aggregate_type, OUTBOX_AGGREGATE_TYPE_MAX);
  meta("aggregate_id", ev.aggregate_id, OUTBOX_AGGREGATE_ID_MAX);
  meta("causation_id", ev.causation_id, OUTBOX_CAUSATION_ID_MAX);
  // As outbox_emit counts them since 0.4: the trace context under its W3C names, the schema
  // version as the larger of its encodings (an integer, or a string of 10 digits).
  if (ev.traceparent) table += string_entry_size(std::strlen("traceparent"), ev.traceparent->size());
  if (ev.tracestate) table += string_entry_size(std::strlen("tracestate"), ev.tracestate->size());
  if (ev.schema_version) table += string_entry_size(std::strlen("x-outbox-schema-version"), 10);
  for (const Header& h : ev.headers) {
    table += table_entry_size(h.name.size(), h.value);
    switch (header_name_problem(h.name)) {
      case HeaderNameProblem::TooLong:
        add_invalid(ev, "header " + shown(h.name) + " has a name of " + std::to_string(h.name.size()) +
                            " bytes, more than the " + std::to_string(OUTBOX_SHORTSTR_MAX) + " of an AMQP table key");
        break;
      case HeaderNameProblem::ReservedPrefix:
        add_invalid(ev, "header " + shown(h.name) + " uses the prefix " OUTBOX_RESERVED_HEADER_PREFIX
                        " that the relay reserves for its own headers");
        break;
      case HeaderNameProblem::RabbitMqMeaning:
        add_invalid(ev, "header " + shown(h.name) +
                            " has a meaning to RabbitMQ (sender-selected distribution, an array of routing keys) "
                            "that an outbox header value cannot have");
        break;
      case HeaderNameProblem::Empty:  // AMQP carries it: the sinks refuse it, each in its own words
      case HeaderNameProblem::None: break;
    }
  }
  if (table > OUTBOX_EVENT_HEADERS_MAX)
    add_invalid(ev, "\"headers\" (with aggregate_type, aggregate_id, causation_id, traceparent, tracestate and "
                    "schema_version) encode to " +
                        std::to_string(table) + " bytes, more than the " + std::to_string(OUTBOX_EVENT_HEADERS_MAX) +
                        " that fit in an AMQP frame beside the relay's own headers");
}

}  // namespace outbox
