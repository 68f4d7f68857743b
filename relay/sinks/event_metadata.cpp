#include "sinks/event_metadata.h"

#include "outbox_wire.h"

namespace outbox {

Header string_header(const char* name, const std::string& value) {
  Header h;
  h.name = name;
  h.value.kind = HeaderValue::Kind::String;
  h.value.s = value;
  return h;
}

std::vector<Header> outbox_metadata(const Event& ev) {
  std::vector<Header> m;
  m.reserve(6);
  if (ev.aggregate_type) m.push_back(string_header("x-outbox-aggregate-type", *ev.aggregate_type));
  if (ev.aggregate_id) m.push_back(string_header("x-outbox-aggregate-id", *ev.aggregate_id));
  m.push_back(string_header("x-outbox-lsn", format_lsn(ev.lsn)));
  Header x;
  x.name = "x-outbox-xid";
  x.value.kind = HeaderValue::Kind::Int;
  x.value.i = static_cast<std::int64_t>(ev.xid);
  m.push_back(std::move(x));
  if (!ev.commit_time.empty()) m.push_back(string_header("x-outbox-commit-time", ev.commit_time));
  if (ev.causation_id) m.push_back(string_header("x-outbox-causation-id", *ev.causation_id));
  return m;
}

std::optional<std::string> reserved_header_problem(const Event& ev) {
  for (const auto& h : ev.headers) {
    if (h.name.empty()) return std::string("a header name is empty");
    if (has_reserved_prefix(h.name))
      return "header \"" + h.name + "\" uses the reserved prefix " OUTBOX_RESERVED_HEADER_PREFIX;
  }
  return std::nullopt;
}

}  // namespace outbox
