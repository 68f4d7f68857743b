#include "wal2json_parser.h"

#include <string>

#include "json_span.h"

namespace outbox {

namespace {

std::string_view action_of(simdjson::dom::object o) {
  std::string_view a;
  if (o["action"].get_string().get(a)) throw ParseError("line has no \"action\" string");
  return a;
}

std::uint64_t xid_of(simdjson::dom::object o) {
  simdjson::dom::element x;
  if (o["xid"].get(x)) return 0;
  std::uint64_t v = 0;
  if (x.is_uint64()) v = x.get_uint64().value_unsafe();
  else if (x.is_int64()) v = static_cast<std::uint64_t>(x.get_int64().value_unsafe());
  return v;
}

std::string timestamp_of(simdjson::dom::object o) {
  std::string_view t;
  if (o["timestamp"].get_string().get(t)) return {};
  return std::string(t);
}

// Sets an optional text field from a JSON string or null.
void set_opt(simdjson::dom::element v, std::optional<std::string>& out, const char* name) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  std::string_view s;
  if (v.get_string().get(s)) throw ParseError(std::string("field \"") + name + "\" is not a string");
  out = std::string(s);
}

void set_req(simdjson::dom::element v, std::string& out, const char* name) {
  if (v.is_null()) {
    out.clear();
    return;
  }
  std::string_view s;
  if (v.get_string().get(s)) throw ParseError(std::string("field \"") + name + "\" is not a string");
  out = std::string(s);
}

// The fields both storage modes carry the same way (text or null). Returns false for others.
bool set_text_field(std::string_view name, simdjson::dom::element v, Event& ev) {
  if (name == "id") set_req(v, ev.id, "id");
  else if (name == "aggregate_type") set_opt(v, ev.aggregate_type, "aggregate_type");
  else if (name == "aggregate_id") set_opt(v, ev.aggregate_id, "aggregate_id");
  else if (name == "event_type") set_req(v, ev.event_type, "event_type");
  else if (name == "exchange") set_opt(v, ev.exchange, "exchange");
  else if (name == "routing_key") set_opt(v, ev.routing_key, "routing_key");
  else if (name == "correlation_id") set_opt(v, ev.correlation_id, "correlation_id");
  else if (name == "causation_id") set_opt(v, ev.causation_id, "causation_id");
  else if (name == "created_at") set_req(v, ev.created_at, "created_at");
  else return false;
  return true;
}

}  // namespace

void Wal2jsonParser::parse(std::string_view line, Lsn lsn, ParsedLine& out) {
  out.kind = LineKind::Ignored;
  out.xid = 0;
  out.timestamp.clear();
  simdjson::dom::element doc;
  if (auto err = outer_.parse(line.data(), line.size()).get(doc))
    throw ParseError(std::string("invalid JSON from the plugin: ") + simdjson::error_message(err));
  simdjson::dom::object o;
  if (doc.get_object().get(o)) throw ParseError("plugin line is not a JSON object (is format-version 2 set?)");
  std::string_view action = action_of(o);
  if (action.size() != 1) throw ParseError("unknown action \"" + std::string(action) + "\"");
  switch (action[0]) {
    case 'B':
      out.kind = LineKind::Begin;
      out.xid = xid_of(o);
      out.timestamp = timestamp_of(o);
      return;
    case 'C':
      out.kind = LineKind::Commit;
      out.xid = xid_of(o);
      out.timestamp = timestamp_of(o);
      return;
    case 'I': {
      std::string_view schema, table;
      if (o["schema"].get_string().get(schema) || o["table"].get_string().get(table))
        throw ParseError("insert line without schema/table");
      if (schema != schema_ || table != table_) return;
      simdjson::dom::array cols;
      if (o["columns"].get_array().get(cols)) throw ParseError("insert line without \"columns\" array");
      out.event = Event{};
      out.event.lsn = lsn;
      out.event.xid = xid_of(o);
      event_from_row(cols, out.event);
      out.kind = LineKind::Event;
      return;
    }
    case 'M': {
      std::string_view prefix, content;
      if (o["prefix"].get_string().get(prefix)) throw ParseError("message line without \"prefix\"");
      if (prefix != prefix_) return;
      if (o["content"].get_string().get(content)) throw ParseError("message line without \"content\" string");
      bool transactional = true;
      simdjson::dom::element tr;
      if (!o["transactional"].get(tr) && tr.is_bool()) transactional = tr.get_bool().value_unsafe();
      out.event = Event{};
      out.event.lsn = lsn;
      out.event.xid = xid_of(o);
      out.event.from_message = true;
      out.event.transactional = transactional;
      // content points into outer_'s buffers; copy before parsing with inner_ (independent parser,
      // so the view stays valid, but the raw span must come from a stable string).
      std::string content_copy(content);
      event_from_message(content_copy, out.event);
      out.kind = LineKind::Event;
      return;
    }
    default:
      return;  // U, D, T and anything newer: not ours
  }
}

void Wal2jsonParser::event_from_row(simdjson::dom::array cols, Event& ev) {
  bool have_payload = false, have_type = false;
  for (simdjson::dom::element c : cols) {
    simdjson::dom::object col;
    if (c.get_object().get(col)) throw ParseError("column entry is not an object");
    std::string_view name;
    if (col["name"].get_string().get(name)) throw ParseError("column entry without \"name\"");
    simdjson::dom::element v;
    if (col["value"].get(v)) throw ParseError("column \"" + std::string(name) + "\" without \"value\"");
    if (set_text_field(name, v, ev)) {
      if (name == "event_type") have_type = true;
    } else if (name == "payload") {
      // jsonb in wal2json: the JSON text as a JSON string.
      std::string_view s;
      if (v.get_string().get(s)) throw ParseError("column \"payload\" is not a string (jsonb as text)");
      ev.payload = std::string(s);
      have_payload = true;
    } else if (name == "headers") {
      if (v.is_null()) continue;
      std::string_view s;
      if (v.get_string().get(s)) throw ParseError("column \"headers\" is not a string (jsonb as text)");
      std::string text(s);
      simdjson::dom::element h;
      if (inner_.parse(text).get(h)) throw ParseError("column \"headers\" holds invalid JSON");
      simdjson::dom::object ho;
      if (h.get_object().get(ho)) throw ParseError("column \"headers\" is not a JSON object");
      headers_from_object(ho, ev);
    }
  }
  if (!have_type) throw ParseError("outbox row without event_type");
  if (!have_payload) throw ParseError("outbox row without payload");
}

void Wal2jsonParser::event_from_message(std::string_view content, Event& ev) {
  simdjson::dom::element doc;
  if (auto err = inner_.parse(content.data(), content.size()).get(doc))
    throw ParseError(std::string("outbox message content is not valid JSON: ") + simdjson::error_message(err));
  simdjson::dom::object o;
  if (doc.get_object().get(o)) throw ParseError("outbox message content is not a JSON object");
  bool have_type = false;
  for (auto field : o) {
    std::string_view k = field.key;
    simdjson::dom::element v = field.value;
    if (set_text_field(k, v, ev)) {
      if (k == "event_type") have_type = true;
    } else if (k == "headers") {
      if (v.is_null()) continue;
      simdjson::dom::object ho;
      if (v.get_object().get(ho)) throw ParseError("message field \"headers\" is not a JSON object");
      headers_from_object(ho, ev);
    }
  }
  if (!have_type) throw ParseError("outbox message without event_type");
  auto raw = json_member_raw(content, "payload");
  if (!raw) throw ParseError("outbox message without payload");
  ev.payload = std::string(*raw);
}

void Wal2jsonParser::headers_from_object(simdjson::dom::object obj, Event& ev) {
  ev.headers.clear();
  for (auto field : obj) {
    Header h;
    h.name = std::string(field.key);
    simdjson::dom::element v = field.value;
    switch (v.type()) {
      case simdjson::dom::element_type::STRING:
        h.value.kind = HeaderValue::Kind::String;
        h.value.s = std::string(v.get_string().value_unsafe());
        break;
      case simdjson::dom::element_type::INT64:
        h.value.kind = HeaderValue::Kind::Int;
        h.value.i = v.get_int64().value_unsafe();
        break;
      case simdjson::dom::element_type::UINT64: {
        std::uint64_t u = v.get_uint64().value_unsafe();
        h.value.kind = HeaderValue::Kind::Double;
        h.value.d = static_cast<double>(u);
        break;
      }
      case simdjson::dom::element_type::DOUBLE:
        h.value.kind = HeaderValue::Kind::Double;
        h.value.d = v.get_double().value_unsafe();
        break;
      case simdjson::dom::element_type::BOOL:
        h.value.kind = HeaderValue::Kind::Bool;
        h.value.b = v.get_bool().value_unsafe();
        break;
      case simdjson::dom::element_type::NULL_VALUE:
        h.value.kind = HeaderValue::Kind::Null;
        break;
      default:  // nested object/array (the extension rejects these): pass as JSON text
        h.value.kind = HeaderValue::Kind::String;
        h.value.s = simdjson::minify(v);
        break;
    }
    ev.headers.push_back(std::move(h));
  }
}

}  // namespace outbox
