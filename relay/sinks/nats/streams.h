// The JetStream streams of the NATS sink: the configured ones it creates when they do not exist
// (one that exists is left as it is, what differs from the settings logged), what a stream's
// storage means for the events it confirmed, and which streams capture the subjects of the
// prefix (none is a mistake in the settings at start, a deleted stream once running).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace outbox {

class NatsConnection;

// A JetStream stream the sink creates when it does not exist (NatsSink::Stream).
struct JetStreamStream {
  std::string name;
  std::vector<std::string> subjects;  // may use the wildcards * and >
  std::string storage = "file";       // "file" | "memory"
  int replicas = 1;
  std::int64_t duplicate_window_ms = 120000;  // JetStream's de-duplication window (Nats-Msg-Id)
};

// (stream name, subject filter) pairs.
using StreamFilters = std::vector<std::pair<std::string, std::string>>;

// Settings no server would take: SinkError(Config) naming the stream.
void check_stream_settings(const std::vector<JetStreamStream>& streams);

// Creates the streams that do not exist. A stream that cannot be created is SinkError (Config
// when JetStream refused it) before the first session (`started` false), an error logged after.
// Before the first session, also warns of what an ack means for each stream's durability.
void ensure_streams(NatsConnection& c, const std::vector<JetStreamStream>& streams, bool started);

// The subject filters of every stream on the server. Throws SinkError when they cannot be listed.
StreamFilters stream_filters(NatsConnection& c);

// For --check: a line per configured stream, whether it exists (and what differs) or would be
// created; the subject filters of the streams as they are or would be; and per stream what an
// ack means for durability ("" when a copy is on more than one machine). Creates nothing.
struct StreamsReport {
  std::vector<std::string> lines;
  StreamFilters filters;
  std::map<std::string, std::string> durability;
};
StreamsReport report_streams(NatsConnection& c, const std::vector<JetStreamStream>& streams);

// Which streams capture the subjects an event can go to (the prefix followed by anything).
struct StreamCapture {
  enum class State { Whole, Part, None, Unknown } state = State::None;
  std::string pattern;                   // prefix + ">"
  std::vector<std::string> whole, part;  // "STREAM (filter)"
};
StreamCapture capture_of(const StreamFilters& filters, const std::string& prefix);

// The configuration error of a NATS sink whose subjects no stream captures.
std::string no_stream_text(const std::string& prefix);

// The items, ", "-separated.
std::string comma_list(const std::vector<std::string>& v);

}  // namespace outbox
