#include "sinks/tls_alerts.h"
#include "sinks/redis/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "support/mask.h"

namespace outbox {

namespace {

using Clock = std::chrono::steady_clock;

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& s, const std::string& masked, const char* what) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    int h = i + 2 < s.size() ? hexval(s[i + 1]) : -1, l = h >= 0 ? hexval(s[i + 2]) : -1;
    if (h < 0 || l < 0)
      throw SinkError("Redis URL " + masked + ": bad percent escape in the " + what, SinkErrorKind::Config);
    out += static_cast<char>(h * 16 + l);
    i += 2;
  }
  return out;
}

bool is_ip_literal(const std::string& h) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::string ssl_error_text(unsigned long e) {
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

void check_readable(const std::string& file, const char* what) {
  if (file.empty()) return;
  FILE* f = std::fopen(file.c_str(), "r");
  if (!f)
    throw SinkError(std::string("Redis TLS ") + what + " " + file + " cannot be read: " + std::strerror(errno),
                    SinkErrorKind::Config);
  std::fclose(f);
}

int remaining_ms(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

}  // namespace

void RedisReplyFree::operator()(redisReply* r) const {
  if (r) freeReplyObject(r);
}

namespace {

void append_bulk(std::string& out, std::string_view a) {
  out += '$';
  out += std::to_string(a.size());
  out += "\r\n";
  out.append(a.data(), a.size());
  out += "\r\n";
}

}  // namespace

void append_redis_command(std::string& out, std::initializer_list<std::string_view> head,
                          const std::vector<std::string>& args) {
  out += '*';
  out += std::to_string(head.size() + args.size());
  out += "\r\n";
  for (std::string_view h : head) append_bulk(out, h);
  for (const std::string& a : args) append_bulk(out, a);
}

std::string redis_format(const std::vector<std::string>& argv) {
  std::vector<const char*> a;
  std::vector<size_t> l;
  a.reserve(argv.size());
  l.reserve(argv.size());
  for (const auto& s : argv) {
    a.push_back(s.data());
    l.push_back(s.size());
  }
  char* cmd = nullptr;
  int n = redisFormatCommandArgv(&cmd, static_cast<int>(a.size()), a.data(), l.data());
  if (n < 0 || !cmd) throw std::bad_alloc();
  std::string out(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return out;
}

RedisUrl parse_redis_url(const std::string& url) {
  RedisUrl u;
  u.masked = mask_url(url);
  auto bad = [&](const std::string& why) {
    return SinkError("Redis URL " + u.masked + ": " + why +
                         " -- fix: redis://[user:password@]host[:port][/db] or rediss://...",
                     SinkErrorKind::Config);
  };
  std::size_t p;
  if (url.rfind("redis://", 0) == 0) p = 8;
  else if (url.rfind("rediss://", 0) == 0) {
    p = 9;
    u.tls = true;
  } else
    throw bad("the scheme is not redis:// or rediss://");
  // The user info runs to the last '@', as mask_url reads it: a password with an unencoded '/',
  // '?' or '#' is a password, not a port and a path that would be echoed in an error.
  std::size_t last_at = url.rfind('@');
  std::size_t end = url.find_first_of("/?#", last_at != std::string::npos && last_at >= p ? last_at + 1 : p);
  if (end == std::string::npos) end = url.size();
  std::string authority = url.substr(p, end - p);
  std::string rest = url.substr(end);
  auto at = authority.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    std::string user = userinfo.substr(0, colon);
    if (!user.empty()) u.user = percent_decode(user, u.masked, "user name");
    if (colon != std::string::npos) u.password = percent_decode(userinfo.substr(colon + 1), u.masked, "password");
    if (u.user && !u.password) throw bad("a user name without a password");
  }
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) throw bad("an unclosed '[' in the host");
    u.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw bad("text after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw bad("no host");
  if (!port.empty()) {
    char* e = nullptr;
    long v = std::strtol(port.c_str(), &e, 10);
    if (*e != '\0' || v < 1 || v > 65535) throw bad(port.find_first_not_of("0123456789") == std::string::npos ? "the port \"" + port + "\" is not 1-65535"
                                                                            : "the port is not a number from 1 to 65535");
    u.port = static_cast<int>(v);
  }
  if (!rest.empty() && rest[0] != '/') throw bad("query parameters and fragments are not supported");
  if (rest.size() > 1) {
    std::string db = rest.substr(1);
    char* e = nullptr;
    long v = std::strtol(db.c_str(), &e, 10);
    if (db.empty() || *e != '\0' || v < 0 || v > 1000000)
      throw bad("the database \"" + db + "\" is not a number (or query parameters, which are not supported)");
    u.db = static_cast<int>(v);
  }
  return u;
}

RedisConnection::RedisConnection() { reader_ = redisReaderCreate(); }

RedisConnection::~RedisConnection() {
  close();
  if (reader_) redisReaderFree(reader_);
}

void RedisConnection::close() {
  if (ssl_) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ctx_) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (reader_) {
    redisReaderFree(reader_);
    reader_ = redisReaderCreate();
  }
  want_write_ = false;
  replies_ = 0;
}

void RedisConnection::wait_fd(short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    pollfd p{fd_, events, 0};
    int ms = remaining_ms(deadline);
    int r = ::poll(&p, 1, ms);
    if (r > 0) return;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw SinkError("Redis at " + masked_ + ": poll: " + std::strerror(errno));
    throw SinkError("Redis at " + masked_ + ": no answer within the connect timeout (" + what + ")");
  }
}

void RedisConnection::connect(const RedisUrl& u, const RedisTls& tls, int timeout_ms) {
  close();
  masked_ = u.masked;
  error_.clear();
  if (u.tls) {
    check_readable(tls.cacert, "CA file");
    check_readable(tls.cert, "client certificate");
    check_readable(tls.key, "client key");
    if (tls.cert.empty() != tls.key.empty())
      throw SinkError("Redis TLS: a client certificate needs its key and a key its certificate -- fix: give both or neither",
                      SinkErrorKind::Config);
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(u.port);
  int g = getaddrinfo(u.host.c_str(), port.c_str(), &hints, &res);
  if (g != 0) throw SinkError("Redis at " + masked_ + ": cannot resolve " + u.host + ": " + gai_strerror(g));
  std::string last = "no address";
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      fd_ = fd;
      try {
        wait_fd(POLLOUT, deadline, "TCP connect");
      } catch (...) {
        fd_ = -1;
        ::close(fd);
        freeaddrinfo(res);
        throw;
      }
      fd_ = -1;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      r = err == 0 ? 0 : -1;
      errno = err;
    }
    if (r == 0) {
      fd_ = fd;
      break;
    }
    last = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  if (fd_ < 0) throw SinkError("cannot connect to Redis at " + masked_ + ": " + last);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  int idle = 15, intvl = 5, cnt = 3;
  setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  if (u.tls) {
    try {
      tls_handshake(u, tls, deadline);
    } catch (...) {
      close();
      throw;
    }
  }
}

void RedisConnection::tls_handshake(const RedisUrl& u, const RedisTls& tls, Clock::time_point deadline) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) throw SinkError("Redis TLS: cannot create an OpenSSL context: " + ssl_error_text(ERR_get_error()));
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (!tls.cacert.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, tls.cacert.c_str(), nullptr) != 1)
      throw SinkError("Redis TLS CA file " + tls.cacert + " is not usable PEM: " + ssl_error_text(ERR_get_error()),
                      SinkErrorKind::Config);
  } else if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    throw SinkError("Redis TLS: cannot load the system's CA store: " + ssl_error_text(ERR_get_error()),
                    SinkErrorKind::Config);
  }
  if (!tls.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, tls.cert.c_str()) != 1)
      throw SinkError("Redis TLS client certificate " + tls.cert + " is not usable: " + ssl_error_text(ERR_get_error()),
                      SinkErrorKind::Config);
    if (SSL_CTX_use_PrivateKey_file(ctx_, tls.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx_) != 1)
      throw SinkError("Redis TLS client key " + tls.key + " is not usable (or not the certificate's): " +
                          ssl_error_text(ERR_get_error()),
                      SinkErrorKind::Config);
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (is_ip_literal(u.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), u.host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_, u.host.c_str());
    SSL_set1_host(ssl_, u.host.c_str());
  }
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(ssl_);
    if (r == 1) break;
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      wait_fd(POLLIN, deadline, "TLS handshake");
      continue;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      wait_fd(POLLOUT, deadline, "TLS handshake");
      continue;
    }
    unsigned long err = ERR_peek_error();
    long vr = SSL_get_verify_result(ssl_);
    if (vr != X509_V_OK ||
        (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED))
      throw SinkError("the certificate of Redis at " + masked_ + " does not verify: " +
                          X509_verify_cert_error_string(vr) +
                          " -- fix: give the CA that signed the server's certificate (tls cacert), and a URL host "
                          "the certificate names",
                      SinkErrorKind::Tls);
    if (client_certificate_refused(err))
      throw SinkError("Redis at " + masked_ + " refused the TLS handshake: " + ssl_error_text(err) +
                          " -- fix: give a client certificate and key signed by a CA the server trusts "
                          "(its tls-ca-cert-file)",
                      SinkErrorKind::Tls);
    std::string detail = err ? ssl_error_text(err) : (e == SSL_ERROR_SYSCALL ? std::string(std::strerror(errno)) : "closed");
    throw SinkError("TLS handshake with Redis at " + masked_ + " failed: " + detail +
                    " (is the port a TLS port? use redis:// for a plain one)");
  }
}

long RedisConnection::write_some(const char* data, std::size_t len) {
  if (fd_ < 0) {
    error_ = "not connected";
    return -1;
  }
  want_write_ = false;
  if (!ssl_) {
    for (;;) {
      ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        want_write_ = true;
        return 0;
      }
      error_ = std::string("write: ") + std::strerror(errno);
      return -1;
    }
  }
  ERR_clear_error();
  int n = SSL_write(ssl_, data, static_cast<int>(len > (1u << 30) ? (1u << 30) : len));
  if (n > 0) return n;
  int e = SSL_get_error(ssl_, n);
  if (e == SSL_ERROR_WANT_WRITE) {
    want_write_ = true;
    return 0;
  }
  if (e == SSL_ERROR_WANT_READ) return 0;
  unsigned long err = ERR_peek_error();
  error_ = "TLS write: " + (err ? ssl_error_text(err) : std::string(std::strerror(errno)));
  return -1;
}

long RedisConnection::read_some(char* buf, std::size_t len) {
  if (fd_ < 0) {
    error_ = "not connected";
    return -1;
  }
  if (!ssl_) {
    for (;;) {
      ssize_t n = ::recv(fd_, buf, len, MSG_DONTWAIT);
      if (n > 0) return n;
      if (n == 0) {
        error_ = "connection closed by the server";
        return -1;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      error_ = std::string("read: ") + std::strerror(errno);
      return -1;
    }
  }
  ERR_clear_error();
  int n = SSL_read(ssl_, buf, static_cast<int>(len));
  if (n > 0) return n;
  int e = SSL_get_error(ssl_, n);
  if (e == SSL_ERROR_WANT_READ) return 0;
  if (e == SSL_ERROR_WANT_WRITE) {
    want_write_ = true;
    return 0;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    error_ = "connection closed by the server (TLS close)";
    return -1;
  }
  unsigned long err = ERR_peek_error();
  if (client_certificate_refused(err))
    error_ = "the server refused our TLS client certificate: " + ssl_error_text(err);
  else
    error_ = "TLS read: " + (err ? ssl_error_text(err) : (n == 0 ? std::string("connection closed by the server")
                                                                 : std::string(std::strerror(errno))));
  return -1;
}

bool RedisConnection::has_buffered() const { return ssl_ && SSL_pending(ssl_) > 0; }

RedisReplyPtr RedisConnection::command(const std::vector<std::string>& argv, Clock::time_point deadline) {
  std::string cmd = redis_format(argv);
  // With TLS 1.3 a server that wants a client certificate (or rejects ours) says so after the
  // handshake: its alert, then a closed connection, meet the first request. When the reset
  // discarded the alert, a TLS connection lost before its first reply is reported the same way.
  auto lost = [&](const char* when) {
    if (ssl_ && replies_ == 0) {
      if (error_.find("client certificate") == std::string::npos) {
        char b[256];
        std::string first = error_;
        if (read_some(b, sizeof b) >= 0 || error_.find("client certificate") == std::string::npos) error_ = first;
      }
      throw SinkError("Redis at " + masked_ + " closed the TLS connection before its first reply (" + error_ +
                          ", " + when + " " + argv[0] + ") -- fix: the server requires a client certificate "
                          "(tls-auth-clients yes, its default): give the TLS cert and key, signed by a CA the server "
                          "trusts (its tls-ca-cert-file)",
                      SinkErrorKind::Tls);
    }
    throw SinkError("Redis at " + masked_ + ": " + error_ + " (" + when + " " + argv[0] + ")");
  };
  std::size_t off = 0;
  while (off < cmd.size()) {
    long n = write_some(cmd.data() + off, cmd.size() - off);
    if (n < 0) lost("sending");
    off += static_cast<std::size_t>(n);
    if (off < cmd.size()) wait_fd(want_write_ ? POLLOUT : POLLIN, deadline, argv[0].c_str());
  }
  char buf[16384];
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK)
      throw SinkError("Redis at " + masked_ + ": protocol error: " + reader_->errstr);
    if (reply) {
      ++replies_;
      return RedisReplyPtr(static_cast<redisReply*>(reply));
    }
    long n = read_some(buf, sizeof buf);
    if (n < 0) lost("waiting for the reply to");
    if (n == 0) {
      wait_fd(want_write_ ? POLLOUT : POLLIN, deadline, argv[0].c_str());
      continue;
    }
    redisReaderFeed(reader_, buf, static_cast<std::size_t>(n));
  }
}

}  // namespace outbox
