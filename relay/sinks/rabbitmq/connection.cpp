#include "sinks/tls_alerts.h"
#include "sinks/rabbitmq/connection.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <spdlog/spdlog.h>

#include "delivery/event_json.h"
#include "sinks/address_rotation.h"
#include "sinks/event_metadata.h"
#include "sinks/rabbitmq/amqp_values.h"
#include "support/mask.h"

namespace outbox {

namespace {

// Room kept free in the socket's send buffer for what rabbitmq-c writes on its own and with no
// deadline: heartbeats (8 bytes), close-ok, passive exchange checks (method frames < 1 KiB).
constexpr std::size_t kSendReserve = 16 * 1024;
// The largest send buffer the relay asks for, for a message that does not fit the current one.
constexpr int kMaxSendBuffer = 64 << 20;

std::string ssl_error_text(unsigned long e) {
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

AmqpPublisher::AmqpPublisher() = default;

AmqpPublisher::~AmqpPublisher() { close(); }

void AmqpPublisher::fail(const std::string& what, int status) {
  std::string msg = what + (status ? std::string(": ") + amqp_error_string2(status) : "");
  connect_lost();
  throw AmqpError(msg + " (node " + masked_url_ + ")");
}

std::string AmqpPublisher::client_cert_refusal(const std::string& detail, bool gave_cert) const {
  return "RabbitMQ at " + masked_url_ + " refused the TLS handshake: " + detail +
         (gave_cert ? " -- fix: give --amqp-cert/--amqp-key a client certificate signed by a CA the broker trusts "
                      "(its ssl_options.cacertfile), not expired"
                    : " -- fix: the broker requires a client certificate (ssl_options.fail_if_no_peer_cert): give "
                      "--amqp-cert and --amqp-key, signed by a CA the broker trusts");
}

std::string AmqpPublisher::unverified_certificate(const std::string& detail) const {
  return "the certificate of RabbitMQ at " + masked_url_ + " does not verify: " + detail +
         " -- fix: give the CA that signed it with --amqp-cacert (without it the system's CA store is used), and "
         "connect to a host name the certificate names";
}

void AmqpPublisher::connect_lost() {
  if (lost_reported_ || urls_.size() < 2) return;
  lost_reported_ = true;
  rotation_.failed(current_);
}

void AmqpPublisher::connect(const std::vector<std::string>& urls, const Options& o) {
  if (urls.empty()) throw AmqpError("no RabbitMQ address given -- fix: give --amqp a URL", AmqpErrorKind::Config);
  if (urls != urls_) {
    urls_ = urls;
    rotation_ = AddressRotation(urls_.size());
  }
  auto one = [&](std::size_t k) { connect_one(urls_[k], o.heartbeat_s, o.name, o.tls, o.connect_timeout_ms); };
  std::size_t i = connect_in_turn(rotation_, "RabbitMQ", one, [&] { close(); });
  confirm_timeout_ms_ = o.confirm_timeout_ms;
  current_ = i;
  lost_reported_ = false;
  if (urls_.size() > 1)
    spdlog::info("connected to RabbitMQ node {} of {} at {} (confirm mode)", i + 1, urls_.size(), masked_url_);
  else
    spdlog::info("connected to RabbitMQ at {} (confirm mode)", masked_url_);
}

void AmqpPublisher::connect(const std::string& url, int heartbeat_s, const std::string& name, const Tls& tls,
                            int connect_timeout_ms) {
  Options o;
  o.heartbeat_s = heartbeat_s;
  o.name = name;
  o.tls = tls;
  o.connect_timeout_ms = connect_timeout_ms;
  connect(std::vector<std::string>{url}, o);
}

void AmqpPublisher::close() {
  if (!conn_) return;
  // Best effort, bounded: the broker may be gone.
  struct timeval tv{1, 0};
  amqp_set_rpc_timeout(conn_, &tv);
  wbuf_.end();  // what was gathered goes first, and the close is not held back
  amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
  wbuf_.detach();
  aux_ = Aux::Closed;
  corked_ = false;
  room_ = 0;
  nack_streak_ = 0;
  blocked_ = false;
  known_exchanges_.clear();
  held_.clear();
  checking_.clear();
  checks_sent_.clear();
  checks_todo_.clear();
  sent_.reset();
  broken_reason_.clear();
  broken_by_message_ = false;
}

void AmqpPublisher::connect_one(const std::string& url, int heartbeat_s, const std::string& name, const Tls& tls,
                                int connect_timeout_ms) {
  close();
  masked_url_ = mask_url(url);
  heartbeat_s_ = heartbeat_s;
  std::vector<char> buf(url.begin(), url.end());
  buf.push_back('\0');
  amqp_connection_info info;  // points into buf
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK)
    throw AmqpError("cannot parse AMQP URL \"" + masked_url_ + "\" -- fix: use amqp://user:pass@host:port/vhost",
                    AmqpErrorKind::Config);
  // "amqp://host:port/" has an empty vhost by the URI spec; everyone means "/".
  if (info.vhost == nullptr || info.vhost[0] == '\0') info.vhost = const_cast<char*>("/");
  conn_ = amqp_new_connection();
  amqp_socket_t* sock = info.ssl ? new_tls_socket(tls) : amqp_tcp_socket_new(conn_);
  if (!sock) abandon(AmqpError("cannot create the AMQP socket"));
  struct timeval tv{connect_timeout_ms / 1000, (connect_timeout_ms % 1000) * 1000};
  open_socket(sock, info.host, info.port, tv, tls);
  // rabbitmq-c writes with no deadline; a broker that stops acknowledging TCP data (a cut network,
  // a dead host) makes the kernel drop the connection after this long instead, so a blocked
  // write ends in an error. 2 x heartbeat: the same bound as the heartbeat check (30 s without).
  unsigned int user_timeout_ms = heartbeat_s > 0 ? static_cast<unsigned int>(heartbeat_s) * 2000u : 30000u;
  if (::setsockopt(amqp_get_sockfd(conn_), IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) != 0)
    spdlog::warn("cannot set TCP_USER_TIMEOUT on the AMQP socket: {}", std::strerror(errno));
  amqp_set_handshake_timeout(conn_, &tv);
  amqp_set_rpc_timeout(conn_, &tv);
  log_in(info, heartbeat_s, name, tls);
  amqp_channel_open(conn_, kPubChannel);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("opening the AMQP channel failed: " + rpc_error(r));
  amqp_confirm_select(conn_, kPubChannel);
  r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("confirm.select failed: " + rpc_error(r));
  open_aux_channel();
  if (!wbuf_.attach(conn_)) spdlog::warn("cannot gather writes to RabbitMQ (unexpected rabbitmq-c socket layout): one write per frame");
}

void AmqpPublisher::discard_connection() {
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
  wbuf_.detach();
}

void AmqpPublisher::abandon(const AmqpError& e) {
  discard_connection();
  throw e;
}

amqp_socket_t_* AmqpPublisher::new_tls_socket(const Tls& tls) {
  amqp_socket_t* sock = amqp_ssl_socket_new(conn_);
  if (!sock) return nullptr;
  amqp_ssl_socket_set_verify_peer(sock, 1);
  amqp_ssl_socket_set_verify_hostname(sock, 1);
  if (!tls.cacert.empty() && amqp_ssl_socket_set_cacert(sock, tls.cacert.c_str()) != AMQP_STATUS_OK)
    abandon(AmqpError("cannot load the CA file " + tls.cacert + " (--amqp-cacert) -- fix: give a readable PEM file",
                      AmqpErrorKind::Config));
  // rabbitmq-c 0.11 loads no trust store of its own: without --amqp-cacert the system's
  // (OpenSSL's default paths, SSL_CERT_FILE / SSL_CERT_DIR) verifies the broker.
  if (tls.cacert.empty()) {
    auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(sock));
    if (!ctx || SSL_CTX_set_default_verify_paths(ctx) != 1)
      abandon(AmqpError("cannot load the system's CA certificates for amqps:// -- fix: give the broker's CA with "
                        "--amqp-cacert",
                        AmqpErrorKind::Config));
  }
  if (!tls.cert.empty() && amqp_ssl_socket_set_key(sock, tls.cert.c_str(), tls.key.c_str()) != AMQP_STATUS_OK)
    abandon(AmqpError("cannot load the client certificate " + tls.cert + " / key " + tls.key +
                          " (--amqp-cert, --amqp-key) -- fix: give readable PEM files of a matching pair",
                      AmqpErrorKind::Config));
  return sock;
}

void AmqpPublisher::open_socket(amqp_socket_t_* sock, const char* host, int port, const struct timeval& timeout,
                                const Tls& tls) {
  ERR_clear_error();
  int st = amqp_socket_open_noblock(sock, host, port, &timeout);
  if (st == AMQP_STATUS_OK) return;
  // A certificate that does not verify: rabbitmq-c says so after the handshake (peer, host
  // name), or the handshake itself failed on it (OpenSSL's reason in its error queue).
  unsigned long ssl_err = ERR_peek_last_error();
  bool verify = st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
                (ERR_GET_LIB(ssl_err) == ERR_LIB_SSL && ERR_GET_REASON(ssl_err) == SSL_R_CERTIFICATE_VERIFY_FAILED);
  std::string detail = amqp_error_string2(st);
  if (ssl_err) detail += " (" + ssl_error_text(ssl_err) + ")";
  ERR_clear_error();
  discard_connection();
  if (client_certificate_refused(ssl_err))
    throw AmqpError(client_cert_refusal(detail, !tls.cert.empty()), AmqpErrorKind::Tls);
  if (verify) throw AmqpError(unverified_certificate(detail), AmqpErrorKind::Tls);
  throw AmqpError("cannot connect to RabbitMQ at " + masked_url_ + ": " + detail +
                  " -- fix: check that RabbitMQ runs and --amqp points at it");
}

void AmqpPublisher::log_in(const amqp_connection_info& info, int heartbeat_s, const std::string& name,
                           const Tls& tls) {
  // Announce the capabilities we handle (connection.blocked notifications, confirms).
  amqp_table_entry_t caps[3];
  caps[0].key = amqp_cstring_bytes("connection.blocked");
  caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[0].value.value.boolean = 1;
  caps[1].key = amqp_cstring_bytes("publisher_confirms");
  caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[1].value.value.boolean = 1;
  caps[2].key = amqp_cstring_bytes("authentication_failure_close");
  caps[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[2].value.value.boolean = 1;
  amqp_table_entry_t props[2];
  props[0].key = amqp_cstring_bytes("capabilities");
  props[0].value.kind = AMQP_FIELD_KIND_TABLE;
  props[0].value.value.table.num_entries = 3;
  props[0].value.value.table.entries = caps;
  props[1].key = amqp_cstring_bytes("connection_name");
  props[1].value.kind = AMQP_FIELD_KIND_UTF8;
  props[1].value.value.bytes = amqp_cstring_bytes(name.c_str());
  amqp_table_t client_props{2, props};
  ERR_clear_error();
  amqp_rpc_reply_t r = amqp_login_with_properties(conn_, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat_s,
                                                  &client_props, AMQP_SASL_METHOD_PLAIN, info.user, info.password);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  std::string e = rpc_error(r);
  int code = 0;
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
    code = static_cast<amqp_connection_close_t*>(r.reply.decoded)->reply_code;
  unsigned long ssl_err = info.ssl ? ERR_peek_last_error() : 0;
  ERR_clear_error();
  discard_connection();
  if (client_certificate_refused(ssl_err))
    throw AmqpError(client_cert_refusal(e + " (" + ssl_error_text(ssl_err) + ")", !tls.cert.empty()),
                    AmqpErrorKind::Tls);
  // 403 ACCESS_REFUSED: user or password; 530 NOT_ALLOWED: the vhost does not exist or the
  // user may not use it. Someone may be fixing either on the broker: retried, loudly.
  if (code == 403)
    throw AmqpError("RabbitMQ refused the login at " + masked_url_ + ": " + e +
                        " -- fix: check user and password in --amqp (guest only works from localhost)",
                    AmqpErrorKind::Auth);
  if (code == 530)
    throw AmqpError("RabbitMQ refused the virtual host at " + masked_url_ + ": " + e +
                        " -- fix: check the vhost in --amqp (the path after the port; amqp://h:5672/ means /) and "
                        "the user's permissions on it (rabbitmqctl set_permissions -p <vhost> <user> ...)",
                    AmqpErrorKind::Auth);
  throw AmqpError("RabbitMQ login at " + masked_url_ + " failed: " + e +
                  " -- fix: check that --amqp points at RabbitMQ (AMQP 0-9-1)");
}

// Synchronous: only at connect and for start-up checks, never in the data path.
void AmqpPublisher::open_aux_channel() {
  if (aux_ == Aux::Open) return;
  amqp_channel_open(conn_, kAuxChannel);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("opening the AMQP side channel failed: " + rpc_error(r));
  aux_ = Aux::Open;
}

int AmqpPublisher::socket() const { return conn_ ? amqp_get_sockfd(conn_) : -1; }

bool AmqpPublisher::has_buffered() const {
  return conn_ && (amqp_frames_enqueued(conn_) || amqp_data_in_buffer(conn_));
}

void AmqpPublisher::batch(bool on) {
  if (!conn_) return;
  if (wbuf_.attached()) {
    if (on) {
      wbuf_.begin();
      return;
    }
    int st = wbuf_.end();
    if (st != AMQP_STATUS_OK && broken_reason_.empty()) {
      broken_reason_ = "writing to RabbitMQ node " + masked_url_ + " failed (connection lost?): " + amqp_error_string2(st);
      connect_lost();
    }
    return;
  }
  // Writes cannot be gathered (wbuf_ could not attach): at least the kernel sends full segments.
  if (corked_ == on) return;
  int v = on ? 1 : 0;
  if (::setsockopt(amqp_get_sockfd(conn_), IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0) corked_ = on;
}

bool AmqpPublisher::room_for(const AmqpMessage& m) {
  // What the message takes on the wire: the method frame, the header frame (properties and
  // headers), the body frames (frame_max each, 8 bytes of framing per frame); in the kernel's
  // count each byte costs more (buffer overhead), hence the quarter on top.
  std::size_t body = m.body ? m.body->size() : 0;
  std::size_t frame = std::max<std::size_t>(4096, static_cast<std::size_t>(amqp_get_frame_max(conn_)));
  std::size_t wire = 64 + m.exchange.size() + m.routing_key.size() + 128 + encoded_table_size(m.headers) +
                     m.message_id.size() + m.type.size() + m.correlation_id.size() + m.app_id.size() + body +
                     8 * (body / (frame - 8) + 1);
  std::size_t mem = wire + wire / 4 + 1024;
  // Room only grows between two reads (acknowledged bytes are freed) but for what we send: the
  // room seen last time, less what was sent since, is a lower bound, and saves a system call
  // per message.
  if (mem <= room_) {
    room_ -= mem;
    return true;
  }
  int fd = amqp_get_sockfd(conn_);
  std::uint32_t mi[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof mi;
  auto read_meminfo = [&] {
    len = sizeof mi;
    return ::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len) == 0 &&
           len >= sizeof(std::uint32_t) * (SK_MEMINFO_WMEM_QUEUED + 1);
  };
  if (!read_meminfo()) return true;  // cannot tell (not Linux?): send as before
  // Gathered frames are not in the kernel's count yet.
  std::size_t sndbuf = mi[SK_MEMINFO_SNDBUF], queued = mi[SK_MEMINFO_WMEM_QUEUED] + wbuf_.size();
  if (mem + kSendReserve > sndbuf) {
    // Bigger than the whole buffer: grow it (the kernel doubles the value asked for; as root
    // beyond net.core.wmem_max), so that it can wait for room like any other message.
    // At least TCP's autotuning cap (4 MiB on Linux by default): asking fixes the size, and a
    // buffer just big enough for one message would throttle every later one.
    int want = static_cast<int>(std::min<std::size_t>(kMaxSendBuffer, std::max<std::size_t>(4u << 20, mem + kSendReserve)));
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0)
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    if (!read_meminfo()) return true;
    sndbuf = mi[SK_MEMINFO_SNDBUF];
    queued = mi[SK_MEMINFO_WMEM_QUEUED] + wbuf_.size();
  }
  // Still too big for an empty buffer (over kMaxSendBuffer, or not allowed to grow): sent once
  // everything before it is out, when the broker is reading; see relay/README.md.
  room_ = queued + kSendReserve < sndbuf ? sndbuf - queued - kSendReserve : 0;
  if (mem <= room_) {
    room_ -= mem;
    return true;
  }
  return queued == 0;
}

void AmqpPublisher::send_pending() {
  if (!conn_ || !broken_reason_.empty() || !pending()) return;
  try {
    send_held();
  } catch (const AmqpError& e) {
    broken_reason_ = e.what();  // reported by broken(), after the outcomes already read
  }
}

bool AmqpPublisher::writable() const {
  if (!conn_) return false;
  pollfd p{amqp_get_sockfd(conn_), POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}


void AmqpPublisher::send_now(std::uint64_t ticket, AmqpMessage& m) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof p);
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TYPE_FLAG |
             AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
  p.content_type = amqp_cstring_bytes(kPayloadContentType);
  p.delivery_mode = 2;
  p.type = bytes_of(m.type);
  p.app_id = bytes_of(m.app_id);
  p.timestamp = m.timestamp_s;
  if (m.has_message_id) {
    p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    p.message_id = bytes_of(m.message_id);
  }
  if (m.has_correlation_id) {
    p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    p.correlation_id = bytes_of(m.correlation_id);
  }
  if (m.has_priority) {
    p._flags |= AMQP_BASIC_PRIORITY_FLAG;
    p.priority = m.priority;
  }
  table_entries(m.headers, entries_);
  p.headers.num_entries = static_cast<int>(entries_.size());
  p.headers.entries = entries_.data();
  amqp_bytes_t body = m.body ? bytes_of(*m.body) : amqp_empty_bytes;
  // build_message() bounded every field, so an error here is the connection's, not the event's.
  int st = amqp_basic_publish(conn_, kPubChannel, bytes_of(m.exchange), bytes_of(m.routing_key), 1, 0, &p, body);
  if (st != AMQP_STATUS_OK) fail("basic.publish failed (connection to RabbitMQ lost?)", st);
  if (sent_.size() == 0) progress_at_ = std::chrono::steady_clock::now();
  // What a basic.return is matched by (on_return), and what a refusal names: moved, not copied
  // (the message is done with once written).
  Sent sent;
  sent.ticket = ticket;
  for (Header& hd : m.headers)
    if (hd.name == "x-outbox-lsn" && hd.value.kind == HeaderValue::Kind::String) sent.lsn = std::move(hd.value.s);
  sent.message_id = std::move(m.message_id);
  sent.exchange = std::move(m.exchange);
  sent.routing_key = std::move(m.routing_key);
  sent_.add(std::move(sent));
}

void AmqpPublisher::request_check(const std::string& exchange) {
  checks_todo_.push_back(exchange);
  send_checks();
}

void AmqpPublisher::send_checks() {
  if (aux_ == Aux::Closed) {
    // Reopen without waiting: the open-ok arrives in poll(), then the checks go out.
    amqp_channel_open_t req{};
    int st = amqp_send_method(conn_, kAuxChannel, AMQP_CHANNEL_OPEN_METHOD, &req);
    if (st != AMQP_STATUS_OK) fail("reopening the AMQP side channel failed", st);
    aux_ = Aux::Opening;
    return;
  }
  if (aux_ == Aux::Opening) return;
  while (!checks_todo_.empty()) {
    const std::string& x = checks_todo_.front();
    amqp_exchange_declare_t req{};
    req.exchange = bytes_of(x);
    req.type = amqp_cstring_bytes("topic");
    req.passive = 1;
    req.arguments = amqp_empty_table;
    int st = amqp_send_method(conn_, kAuxChannel, AMQP_EXCHANGE_DECLARE_METHOD, &req);
    if (st != AMQP_STATUS_OK) fail("checking an exchange failed (connection to RabbitMQ lost?)", st);
    checks_sent_.push_back(x);
    checks_todo_.pop_front();
  }
}

std::optional<std::string> AmqpPublisher::publish(std::uint64_t ticket, AmqpMessage m) {
  if (!conn_) throw AmqpError("not connected to RabbitMQ");
  if (!broken_reason_.empty()) throw AmqpError(broken_reason_);
  // The header frame carries the properties and the header table and must fit in the frame size
  // this broker negotiated (RabbitMQ's default 128 KiB, but it can be set lower): what does not
  // fit is this event's fault, and trying would leave half a message on the connection.
  std::size_t need = encoded_table_size(m.headers) + m.exchange.size() + m.routing_key.size() + m.message_id.size() +
                     m.type.size() + m.correlation_id.size() + m.app_id.size() + 256;
  std::size_t frame = static_cast<std::size_t>(amqp_get_frame_max(conn_));
  if (frame > 0 && need > frame)
    return "its properties and headers need about " + std::to_string(need) + " bytes, more than the " +
           std::to_string(frame) + "-byte frame this broker allows (frame_max)";
  if (held_.empty() && known_exchanges_.count(m.exchange) && room_for(m)) {
    send_now(ticket, m);
    return std::nullopt;
  }
  std::string exchange = m.exchange;
  held_.push_back(Held{ticket, std::move(m)});
  if (!known_exchanges_.count(exchange) && checking_.insert(exchange).second) request_check(exchange);
  return std::nullopt;
}

void AmqpPublisher::send_held() {
  while (!held_.empty() && known_exchanges_.count(held_.front().msg.exchange) && room_for(held_.front().msg)) {
    send_now(held_.front().ticket, held_.front().msg);
    held_.pop_front();
  }
}

void AmqpPublisher::on_aux_close(int code, const std::string& reply, std::vector<BrokerOutcome>& out) {
  amqp_channel_close_ok_t ok{};
  amqp_send_method(conn_, kAuxChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  aux_ = Aux::Closed;
  if (checks_sent_.empty()) return;
  // The close answers the oldest check; the broker dropped the ones sent after it.
  std::string x = checks_sent_.front();
  checks_sent_.pop_front();
  for (auto it = checks_sent_.rbegin(); it != checks_sent_.rend(); ++it) checks_todo_.push_front(*it);
  checks_sent_.clear();
  checking_.erase(x);
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->msg.exchange != x) {
      ++it;
      continue;
    }
    BrokerOutcome o;
    o.kind = BrokerOutcome::Kind::Refused;
    o.ticket = it->ticket;
    o.why = code == 404 ? Refusal::ExchangeMissing : Refusal::Nacked;
    o.reply = reply;
    o.refusal = code == 404 ? amqp_refusal(o.why, x, it->msg.routing_key)
                            : "RabbitMQ: exchange " + json_string(x) + " cannot be checked (reply " +
                                  std::to_string(code) + ")";
    out.push_back(std::move(o));
    it = held_.erase(it);
  }
  if (!checks_todo_.empty()) send_checks();
  send_held();
}

void AmqpPublisher::settle(std::uint64_t tag, bool multiple, bool nack, std::vector<BrokerOutcome>& out) {
  // A member, cleared: a fresh vector per ack of 1,000 entries (184 KB) was an mmap, page faults
  // and a munmap each time.
  std::vector<ConfirmWindow<Sent>::Settled>& settled = settled_buf_;
  settled.clear();
  sent_.confirm(tag, multiple, nack, settled);
  progress_at_ = std::chrono::steady_clock::now();
  if (!nack) {
    nack_streak_ = 0;
  } else if ((nack_streak_ += settled.size()) > kNackStreak) {
    // RabbitMQ 3.10 keeps nacking every publish on a channel whose quorum queue lost its leader
    // (a node died), also after a new leader was elected; a new connection publishes fine. So a
    // long run of nacks without one ack is taken for that: these nacks are not charged to their
    // events (the connection counts as lost, everything in flight is published again after the
    // reconnect, to the next node). The first kNackStreak were charged: genuine refusals (a full
    // queue with reject-publish) still become dead letters, kNackStreak attempts per reconnect.
    nack_streak_ = 0;
    broken_reason_ = "RabbitMQ node " + masked_url_ + " nacked more than " + std::to_string(kNackStreak) +
                     " publishes in a row without an ack (a quorum queue whose leader was lost keeps nacking on "
                     "its old channel): reopening the connection";
    broken_by_message_ = false;
    connect_lost();
    return;
  }
  for (auto& s : settled) {
    BrokerOutcome o;
    o.ticket = s.item.ticket;
    if (!s.ok) {
      o.kind = BrokerOutcome::Kind::Refused;
      o.why = nack ? Refusal::Nacked : Refusal::Returned;
      o.reply = nack ? "basic.nack" : s.item.reply;
      o.refusal = amqp_refusal(o.why, s.item.exchange, s.item.routing_key);
    }
    out.push_back(std::move(o));
  }
}

void AmqpPublisher::on_return(const std::string& id, const std::string& lsn, const std::string& reply) {
  // A return precedes the ack of its message: the oldest unsettled message that matches.
  Sent* s = sent_.mark_returned([&](const Sent& x) { return x.message_id == id && (lsn.empty() || x.lsn == lsn); });
  if (s) s->reply = reply;
  else spdlog::warn("basic.return for unknown message {} ({}) ignored", id, reply);
}

void AmqpPublisher::check_confirm_timeout() {
  // A node whose quorum queue leader went silent (SIGSTOP, a partition) holds the channel's
  // publishes without a confirm or a nack, also after the other nodes elected a new leader,
  // while the connection itself stays alive (heartbeats flow): only a new connection publishes
  // again. A memory or disk alarm (connection.blocked) is a wait, not this.
  if (confirm_timeout_ms_ <= 0 || blocked_ || sent_.size() == 0) return;
  auto waited = std::chrono::steady_clock::now() - progress_at_;
  if (waited < std::chrono::milliseconds(confirm_timeout_ms_)) return;
  broken_reason_ = "RabbitMQ node " + masked_url_ + " confirmed nothing of " + std::to_string(sent_.size()) +
                   " messages in flight for " + std::to_string(confirm_timeout_ms_) +
                   " ms (--amqp-confirm-timeout-ms): reopening the connection";
  broken_by_message_ = false;
  connect_lost();
}

void AmqpPublisher::poll(std::vector<BrokerOutcome>& out) {
  send_pending();
  while (conn_ && broken_reason_.empty()) {
    amqp_frame_t f;
    struct timeval zero{0, 0};
    amqp_maybe_release_buffers(conn_);
    int st = amqp_simple_wait_frame_noblock(conn_, &f, &zero);
    if (st == AMQP_STATUS_TIMEOUT) {
      check_confirm_timeout();
      return;
    }
    if (st != AMQP_STATUS_OK) {
      if (st == AMQP_STATUS_HEARTBEAT_TIMEOUT)
        broken_reason_ = "RabbitMQ node " + masked_url_ + " went silent: no frame for 2 x heartbeat (" +
                         std::to_string(2 * heartbeat_s_) + " s), heartbeat timeout";
      else
        broken_reason_ = "reading from RabbitMQ node " + masked_url_ + " failed (connection lost?): " +
                         amqp_error_string2(st);
      connect_lost();
      return;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) continue;  // stray header/body frames
    switch (f.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
        settle(m->delivery_tag, m->multiple, false, out);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* m = static_cast<amqp_basic_nack_t*>(f.payload.method.decoded);
        settle(m->delivery_tag, m->multiple, true, out);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        auto* m = static_cast<amqp_basic_return_t*>(f.payload.method.decoded);
        std::string reply = std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
        amqp_message_t msg;
        amqp_rpc_reply_t r = amqp_read_message(conn_, f.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
          broken_reason_ = "reading a returned message failed: " + rpc_error(r);
          return;
        }
        std::string id, lsn;
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) id = bytes_str(msg.properties.message_id);
        if (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG)
          for (int i = 0; i < msg.properties.headers.num_entries; ++i) {
            auto& e = msg.properties.headers.entries[i];
            if (bytes_str(e.key) == "x-outbox-lsn" && e.value.kind == AMQP_FIELD_KIND_UTF8)
              lsn = bytes_str(e.value.value.bytes);
          }
        amqp_destroy_message(&msg);
        on_return(id, lsn, reply);
        break;
      }
      case AMQP_EXCHANGE_DECLARE_OK_METHOD: {
        if (f.channel != kAuxChannel || checks_sent_.empty()) break;
        std::string x = checks_sent_.front();
        checks_sent_.pop_front();
        known_exchanges_.insert(x);
        checking_.erase(x);
        send_held();
        break;
      }
      case AMQP_CHANNEL_OPEN_OK_METHOD:
        if (f.channel == kAuxChannel && aux_ == Aux::Opening) {
          aux_ = Aux::Open;
          send_checks();
        }
        break;
      case AMQP_CONNECTION_BLOCKED_METHOD: {
        auto* m = static_cast<amqp_connection_blocked_t*>(f.payload.method.decoded);
        blocked_ = true;
        BrokerOutcome o;
        o.kind = BrokerOutcome::Kind::Blocked;
        o.reply = bytes_str(m->reason);
        out.push_back(std::move(o));
        break;
      }
      case AMQP_CONNECTION_UNBLOCKED_METHOD: {
        blocked_ = false;
        progress_at_ = std::chrono::steady_clock::now();  // the wait starts again from here
        BrokerOutcome o;
        o.kind = BrokerOutcome::Kind::Unblocked;
        out.push_back(std::move(o));
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD: {
        auto* m = static_cast<amqp_channel_close_t*>(f.payload.method.decoded);
        std::string why = std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
        if (f.channel == kAuxChannel) {
          on_aux_close(m->reply_code, why, out);
          break;
        }
        amqp_channel_close_ok_t ok{};
        amqp_send_method(conn_, f.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        broken_reason_ = "RabbitMQ closed the publishing channel: " + why;
        // Channel errors answer something we sent. But 404 means an exchange that passed its
        // check is gone now: after the reconnect the check runs again and decides, so nobody is
        // charged for it (a missing default exchange then waits instead of dead-lettering).
        broken_by_message_ = m->reply_code != 404;
        return;
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        auto* m = static_cast<amqp_connection_close_t*>(f.payload.method.decoded);
        std::string why = std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
        amqp_connection_close_ok_t ok{};
        amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        broken_reason_ = "RabbitMQ node " + masked_url_ + " closed the connection: " + why;
        // 320 CONNECTION_FORCED is a broker shutting down or an operator; frame and syntax
        // errors (5xx) answer bytes we sent.
        broken_by_message_ = m->reply_code >= 500;
        if (!broken_by_message_) connect_lost();
        return;
      }
      default:
        break;
    }
  }
}

}  // namespace outbox
