// One connection to a Redis server, owned here rather than by hiredis: a non-blocking TCP socket
// and, for rediss://, an OpenSSL client session over it (peer and host name verified, optional
// client certificate). hiredis 0.14 (Debian 12) has no TLS, so it is used for the protocol only:
// the caller encodes commands with redisFormatCommandArgv and parses replies with a redisReader.
// Connecting and the start-up requests wait with a deadline; after that nothing here blocks.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "delivery/sink.h"

struct redisReply;
struct redisReader;
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace outbox {

// redis://[user:pass@]host[:port][/db] or rediss://...; user and password percent-decoded.
struct RedisUrl {
  bool tls = false;
  std::string host;
  int port = 6379;
  std::optional<std::string> user, password;
  int db = 0;
  std::string masked;  // the URL with its password masked, for every log line and error
};
// Throws SinkError(Config) naming the problem (password masked).
RedisUrl parse_redis_url(const std::string& url);

struct RedisTls {
  std::string cacert, cert, key;  // PEM files; empty = system CA store / no client certificate
};

// Frees a hiredis reply.
struct RedisReplyFree {
  void operator()(redisReply* r) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

// Encodes one command (binary safe) in RESP with hiredis.
std::string redis_format(const std::vector<std::string>& argv);
// The same command, head then args, appended to `out` (RESP: an array of bulk strings) without
// the copies redis_format makes: an argv vector, hiredis' buffer, the returned string. The sink
// writes each event this way; redis_format is what the unit test compares it with.
void append_redis_command(std::string& out, std::initializer_list<std::string_view> head,
                          const std::vector<std::string>& args);

class RedisConnection {
 public:
  RedisConnection();
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // TCP connect and, for rediss://, the TLS handshake, within timeout_ms. Throws SinkError:
  // Config (a TLS file unreadable), Tls (the server's certificate does not verify, or the server
  // refused ours), Retryable (anything else).
  void connect(const RedisUrl& u, const RedisTls& tls, int timeout_ms);
  void close();
  bool open() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // A request during start-up: sends it and waits (until the deadline) for its reply. Throws
  // SinkError(Retryable) on a timeout or a lost connection. Only while nothing is pipelined.
  RedisReplyPtr command(const std::vector<std::string>& argv, std::chrono::steady_clock::time_point deadline);

  // Non-blocking I/O. write_some: bytes written (0 = the socket takes nothing now); read_some:
  // bytes read into buf (0 = nothing available now). Both return -1 on a closed or failed
  // connection, with the reason in error().
  long write_some(const char* data, std::size_t len);
  long read_some(char* buf, std::size_t len);
  const std::string& error() const { return error_; }
  // TLS: the last write or read needs the socket readable/writable before it can go on.
  bool want_write() const { return want_write_; }
  // Decrypted bytes already inside OpenSSL (the socket may not be readable).
  bool has_buffered() const;

 private:
  void wait_fd(short events, std::chrono::steady_clock::time_point deadline, const char* what);
  void tls_handshake(const RedisUrl& u, const RedisTls& tls, std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  redisReader* reader_ = nullptr;  // for command()
  std::string masked_;
  std::string error_;
  bool want_write_ = false;
  std::uint64_t replies_ = 0;  // replies command() received on this connection
};

}  // namespace outbox
