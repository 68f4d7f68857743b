// Test-side reader of a JetStream stream: every stored message from sequence 1 with its subject,
// body and headers (by the stream's message API, $JS.API.STREAM.MSG.GET: no consumer left behind,
// headers parsed from the stored bytes), and the stream's message count. For the NATS sink's tests and the relay-level tests.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace outbox::test {

struct NatsStoredMessage {
  std::string subject;
  std::string data;
  std::map<std::string, std::string> headers;  // first value of each header, spaces around it trimmed
  std::uint64_t seq = 0;                       // stream sequence
};

// Throws std::runtime_error when the server or the stream cannot be read.
std::vector<NatsStoredMessage> read_nats_stream(const std::string& url, const std::string& stream);
std::uint64_t count_nats_stream(const std::string& url, const std::string& stream);
// True when the stream exists.
bool nats_stream_exists(const std::string& url, const std::string& stream);
// Deletes the stream if it exists (test set-up).
void delete_nats_stream(const std::string& url, const std::string& stream);
// Creates a stream (file storage) taking `subjects` (test set-up for "an existing stream").
// max_msgs > 0: the stream holds at most that many and refuses new ones (discard new).
void create_nats_stream(const std::string& url, const std::string& stream, const std::vector<std::string>& subjects,
                        std::int64_t duplicate_window_ms = 120000, std::int64_t max_msgs = 0);

}  // namespace outbox::test
