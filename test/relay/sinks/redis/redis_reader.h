// Test side: reads what the Redis sink wrote, over a plain blocking hiredis connection
// (redis:// only, no TLS). For the sink's own tests and the relay-level tests.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct redisContext;

namespace outbox::test {

struct StreamEntry {
  std::string id;                             // "1700000000000-0"
  std::map<std::string, std::string> fields;  // field -> value
  std::vector<std::string> order;             // the field names in the entry's order
};

class RedisReader {
 public:
  // redis://[user:pass@]host:port[/db]; throws std::runtime_error when it cannot connect.
  explicit RedisReader(const std::string& url);
  ~RedisReader();
  RedisReader(const RedisReader&) = delete;
  RedisReader& operator=(const RedisReader&) = delete;

  // Every entry of the stream from the start (XRANGE - +, in pages); empty when it does not exist.
  std::vector<StreamEntry> entries(const std::string& stream);
  // The names of the streams matching a glob pattern (SCAN MATCH pattern TYPE stream), sorted.
  std::vector<std::string> streams(const std::string& pattern = "*");
  // XLEN (0 when the stream does not exist).
  std::int64_t length(const std::string& stream);
  // A command for set-up and clean-up (DEL, SET, FLUSHDB, CONFIG SET, ...): the reply as text,
  // throws on an error reply.
  std::string command(const std::vector<std::string>& argv);

 private:
  redisContext* c_ = nullptr;
};

}  // namespace outbox::test
