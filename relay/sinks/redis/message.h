// How the Redis sink maps an event to a stream entry, and what Redis's replies mean (pure, unit
// tested; no I/O). The entry's fields, in this order: "id", "type", "payload" (the JSON text),
// "headers" (the event's own headers as a JSON object text, "{}" when none), "correlation_id"
// (when set), then what event_metadata() gives every broker under the names NATS gives them
// (traceparent, tracestate, priority, x-outbox-*, and with a CloudEvents source ce-<attribute>),
// values as text. Re-sends are made idempotent by a Lua script (kDedupScript) keyed by the event id, so
// event ids must be unique (the outbox table's default, a UUID, makes them so).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "delivery/event.h"

struct redisReply;

namespace outbox {

// Longest stream name accepted (a key that long is almost certainly a template mistake).
constexpr std::size_t kMaxStreamName = 1024;
constexpr const char* kDedupKeyPrefix = "outbox:dedup:";

// The template's problem ("unknown placeholder {x}", "unclosed {"), nullopt when it is usable.
// Placeholders: {aggregate_type} {event_type} {routing_key} {exchange}.
std::optional<std::string> stream_template_problem(const std::string& tmpl);
// The template with the event's values; a null value substitutes "_". The template must have
// passed stream_template_problem.
std::string stream_name(const std::string& tmpl, const Event& ev);

using RedisFields = std::vector<std::pair<std::string, std::string>>;

// A header value as the text of a stream field (strings as they are, numbers in decimal, booleans
// true/false, null as "").
std::string header_value_text(const HeaderValue& v);

// The fields of the entry, in the order above. cloudevents_source: --cloudevents-source ("" = no
// CloudEvents attributes); now_us: the time of an event without created_at and commit time.
RedisFields entry_fields(const Event& ev, const std::string& cloudevents_source = std::string(),
                         std::int64_t now_us = 0);

// The stream and the fields, or why the event can never be published (naming the field: an
// empty or over-long stream name, a reserved header name, an event already marked invalid).
struct RedisEntry {
  std::string stream;
  RedisFields fields;
};
struct RedisEntryOrError {
  std::optional<RedisEntry> entry;
  std::string error;
};
RedisEntryOrError build_entry(const std::string& stream_template, const Event& ev,
                              const std::string& cloudevents_source = std::string(), std::int64_t now_us = 0);

// The de-duplication script. KEYS[1] the de-duplication key, KEYS[2] the stream; ARGV[1] the
// window in ms, ARGV[2] the MAXLEN ("0": none), ARGV[3..] field, value, ... It sets the key with
// NX PX window and only then adds the entry (XADD ... *) and stores the entry id in the key;
// when the key existed it adds nothing and returns {"dup", <stored id>}. An XADD error (a key of
// the stream's name that is no stream) deletes the key again and returns the error, so that a
// retry is not taken for a duplicate. Both keys are written by one script, so they reach the AOF
// (and replicas) together.
// Redis Cluster would need both keys in one hash slot (CROSSSLOT otherwise): the sink supports a
// single node (or a primary behind sentinel/failover addresses) only.
extern const char* const kDedupScript;

// The arguments after the command name and the sha/script: numkeys, the keys and ARGV.
std::vector<std::string> dedup_args(RedisEntry e, std::int64_t window_ms, std::uint64_t maxlen,
                                    const std::string& event_id);
// A whole plain XADD: "XADD", stream, [MAXLEN ~ n], "*", field, value, ...
std::vector<std::string> xadd_argv(RedisEntry e, std::uint64_t maxlen);

// What one reply to a publish means.
struct ReplyMeaning {
  enum class Kind {
    Confirmed,  // an entry id (or the duplicate marker: duplicate = true)
    Refused,    // an error this message caused or may cause again (WRONGTYPE, OOM, NOPERM, ...)
    NoScript,   // EVALSHA found no script: send it again with EVAL
    Broken,     // the server cannot take writes now (READONLY replica, LOADING, MASTERDOWN, ...)
  };
  Kind kind = Kind::Confirmed;
  bool duplicate = false;
  std::string text;  // the entry id, or the error text
};
ReplyMeaning classify_reply(const redisReply* r);

// The dead letter's words for an entry that Redis refused to add to `stream`, from its error text
// (BrokerOutcome::refusal): short and stable, naming the sink, the stream and the error's code
// (WRONGTYPE, NOPERM, ...), not its text.
std::string redis_refusal(const std::string& stream, const std::string& error);

// Text of a reply for logs and errors ("(nil)", the string, the error, "[a, b]").
std::string reply_text(const redisReply* r);

}  // namespace outbox
