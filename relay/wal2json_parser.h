// Parses wal2json format-version 2 lines (stock wal2json 2.5 or outbox_decoder) into transaction
// boundaries and outbox events. Outbox events come as INSERTs into outbox.events (storage mode
// `table`: json/jsonb columns are JSON *strings*) or as logical messages with prefix `outbox`
// (storage mode `wal`: one JSON object, payload/headers embedded as JSON values). Everything else
// (other tables, other actions, other prefixes) is ignored.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "event.h"

namespace outbox {

struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class LineKind { Begin, Commit, Event, Ignored };

struct ParsedLine {
  LineKind kind = LineKind::Ignored;
  std::uint64_t xid = 0;
  std::string timestamp;  // B/C lines: commit timestamp text ("" without include-timestamp)
  Event event;            // kind == Event
};

class Wal2jsonParser {
 public:
  explicit Wal2jsonParser(std::string schema = "outbox", std::string table = "events",
                          std::string prefix = "outbox")
      : schema_(std::move(schema)), table_(std::move(table)), prefix_(std::move(prefix)) {}

  // Fills `out` from one line; `lsn` is the XLogData start of the line. Throws ParseError on
  // malformed input (the message names what is wrong).
  void parse(std::string_view line, Lsn lsn, ParsedLine& out);

 private:
  void event_from_row(simdjson::dom::array columns, Event& ev);
  void event_from_message(std::string_view content, Event& ev);
  void headers_from_object(simdjson::dom::object obj, Event& ev);

  std::string schema_, table_, prefix_;
  simdjson::dom::parser outer_;
  simdjson::dom::parser inner_;
};

}  // namespace outbox
