// Parses wal2json format-version 2 lines (stock wal2json 2.5 or outbox_decoder) into transaction
// boundaries and outbox events. Outbox events come as INSERTs into outbox.events (storage mode
// `table`: json/jsonb columns are JSON *strings*) or as logical messages with prefix `outbox`
// (storage mode `wal`: one JSON object, payload/headers embedded as JSON values, authenticated by
// a MAC, see common/outbox_wire.h). Everything else (other tables, other actions, other
// prefixes) is ignored.
//
// The stream is untrusted input: any role can write a logical message with prefix `outbox`
// (pg_logical_emit_message is PUBLIC in PostgreSQL 15), with any content. A line that is not a
// genuine outbox event (not JSON, not UTF-8, a message without a valid MAC) is `Rejected` with a
// reason, never a throw. A genuine event (a table row, a message whose MAC verifies) is always an
// `Event`; when it can never be published as it is, `Event::invalid` says why.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "outbox_wire.h"
#include "delivery/event.h"
#include "source/message_auth.h"

namespace outbox {

// The plugin's own framing is broken in a way no database role could cause (a JSON object
// without "action", an insert line without "columns", ...): a wrong plugin or a bug.
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class LineKind { Begin, Commit, Event, Control, Rejected, Ignored };

// An authenticated control message from the extension (outbox.release_parked()): it takes
// effect in stream order, like an event.
struct ControlMessage {
  std::string kind;  // OUTBOX_CONTROL_RELEASE, OUTBOX_CONTROL_KEYS
  std::optional<std::string> aggregate_type, aggregate_id, slot_name;
};

struct ParsedLine {
  LineKind kind = LineKind::Ignored;
  std::uint64_t xid = 0;      // B/C lines; Event and Rejected lines when the line carries it
  std::string timestamp;      // B/C lines: commit timestamp text ("" without include-timestamp)
  Event event;                // kind == Event
  std::string reject_reason;  // kind == Rejected: why the line is not a genuine outbox event
  // kind == Rejected: an outbox message whose MAC did not verify or whose key id is unknown.
  // Only this can change with the keys the relay holds (a key it has not loaded yet).
  bool unverified = false;
  bool unknown_key = false;  // unverified because the relay holds no key of that id
  std::optional<std::uint32_t> key_id;  // the key id the message names, when it names one
  ControlMessage control;     // kind == Control
};

class Wal2jsonParser {
 public:
  explicit Wal2jsonParser(std::string schema = OUTBOX_SCHEMA, std::string table = OUTBOX_EVENTS_TABLE,
                          std::string prefix = OUTBOX_MESSAGE_PREFIX)
      : schema_(std::move(schema)), table_(std::move(table)), prefix_(std::move(prefix)) {}

  // A key of the database for wal-storage messages, by id (raw OUTBOX_MAC_KEY_BYTES bytes, from
  // SELECT * FROM outbox.message_keys()). Keys are only added: a key retired from the table may
  // still be needed for what the slot sends again. Throws std::invalid_argument for a key of
  // another size. Without any key every outbox message is Rejected with a reason naming the fix.
  void add_message_key(std::uint32_t id, std::string key_bytes);
  bool has_message_key(std::uint32_t id) const { return keys_.count(id) != 0; }
  std::size_t message_key_count() const { return keys_.size(); }
  // The key of extension 0.2, whose messages name no key id (OUTBOX_LEGACY_KEY_ID).
  void set_message_key(std::string key_bytes) { add_message_key(OUTBOX_LEGACY_KEY_ID, std::move(key_bytes)); }

  // Fills `out` from one line; `lsn` is the XLogData start of the line. Throws ParseError only
  // when the plugin's framing is broken (see ParseError); anything a role can write is an
  // Event (maybe with `invalid`), Rejected or Ignored.
  void parse(std::string_view line, Lsn lsn, ParsedLine& out);

 private:
  struct LineFields;
  bool read_line(simdjson::ondemand::object line, LineFields& f, ParsedLine& out);
  void read_oversized(simdjson::ondemand::value v, LineFields& f);
  void insert_line(simdjson::ondemand::document& doc, const LineFields& f, Lsn lsn, ParsedLine& out);
  void message_line(const LineFields& f, Lsn lsn, ParsedLine& out);
  void event_from_row(simdjson::ondemand::array columns, Event& ev);
  void event_from_message(std::string_view content, Event& ev, ParsedLine& out);
  void event_from_body(Event& ev);
  bool control_from_body(ParsedLine& out);
  void headers_from_object(simdjson::ondemand::object obj, Event& ev);
  void headers_from_text(std::string_view text, Event& ev);
  bool inner_object(std::string& buf, simdjson::ondemand::document& doc, simdjson::ondemand::object& o, Event& ev,
                    const char* not_object);
  void check_limits(Event& ev);

  std::string schema_, table_, prefix_;
  std::map<std::uint32_t, std::unique_ptr<MessageAuth>> keys_;
  // Each parser needs its input followed by SIMDJSON_PADDING readable bytes: reused buffers.
  std::string line_buf_, body_buf_, headers_buf_, minify_buf_;
  simdjson::ondemand::parser outer_;  // the plugin's line
  simdjson::ondemand::parser inner_;  // a message's body or a row's headers column
};

}  // namespace outbox
