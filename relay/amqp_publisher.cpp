#include "amqp_publisher.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <spdlog/spdlog.h>

#include "mask.h"
#include "timestamp.h"

namespace outbox {

namespace {

constexpr amqp_channel_t kPubChannel = 1;
constexpr amqp_channel_t kAuxChannel = 2;
const std::string kCeVersion = "1.0";

std::string bytes_str(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

std::string rpc_error(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "ok";
    case AMQP_RESPONSE_NONE: return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "server closed the connection: " + std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "server closed the channel: " + std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
      }
      return "server exception";
  }
  return "unknown";
}

amqp_bytes_t bytes_of(const std::string& s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

}  // namespace

AmqpPublisher::~AmqpPublisher() { close(); }

void AmqpPublisher::fail(const std::string& what, int status) {
  std::string msg = what + (status ? std::string(": ") + amqp_error_string2(status) : "");
  throw AmqpError(msg);
}

void AmqpPublisher::close() {
  if (!conn_) return;
  // Best effort, bounded: the broker may be gone.
  struct timeval tv{1, 0};
  amqp_set_rpc_timeout(conn_, &tv);
  amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
  aux_open_ = false;
  corked_ = false;
  known_exchanges_.clear();
}

void AmqpPublisher::connect(const std::string& url, int heartbeat_s, const std::string& name, const Tls& tls) {
  close();
  masked_url_ = mask_url(url);
  std::vector<char> buf(url.begin(), url.end());
  buf.push_back('\0');
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK)
    throw AmqpError("cannot parse AMQP URL \"" + masked_url_ + "\" -- fix: use amqp://user:pass@host:port/vhost");
  // "amqp://host:port/" has an empty vhost by the URI spec; everyone means "/".
  if (info.vhost == nullptr || info.vhost[0] == '\0') info.vhost = const_cast<char*>("/");
  conn_ = amqp_new_connection();
  amqp_socket_t* sock = nullptr;
  if (info.ssl) {
    sock = amqp_ssl_socket_new(conn_);
    if (sock) {
      amqp_ssl_socket_set_verify_peer(sock, 1);
      amqp_ssl_socket_set_verify_hostname(sock, 1);
      if (!tls.cacert.empty() && amqp_ssl_socket_set_cacert(sock, tls.cacert.c_str()) != AMQP_STATUS_OK) {
        amqp_destroy_connection(conn_);
        conn_ = nullptr;
        throw AmqpError("cannot load the CA file " + tls.cacert + " (--amqp-cacert)");
      }
      if (!tls.cert.empty() && amqp_ssl_socket_set_key(sock, tls.cert.c_str(), tls.key.c_str()) != AMQP_STATUS_OK) {
        amqp_destroy_connection(conn_);
        conn_ = nullptr;
        throw AmqpError("cannot load the client certificate " + tls.cert + " / key " + tls.key +
                        " (--amqp-cert, --amqp-key)");
      }
    }
  } else {
    sock = amqp_tcp_socket_new(conn_);
  }
  if (!sock) {
    amqp_destroy_connection(conn_);
    conn_ = nullptr;
    throw AmqpError("cannot create the AMQP socket");
  }
  struct timeval tv{10, 0};
  int st = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
  if (st != AMQP_STATUS_OK) {
    amqp_destroy_connection(conn_);
    conn_ = nullptr;
    throw AmqpError("cannot connect to RabbitMQ at " + masked_url_ + ": " + amqp_error_string2(st) +
                    " -- fix: check that RabbitMQ runs and --amqp points at it");
  }
  amqp_set_handshake_timeout(conn_, &tv);
  amqp_set_rpc_timeout(conn_, &tv);
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
  amqp_rpc_reply_t r = amqp_login_with_properties(conn_, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat_s,
                                                  &client_props, AMQP_SASL_METHOD_PLAIN, info.user, info.password);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    std::string e = rpc_error(r);
    amqp_destroy_connection(conn_);
    conn_ = nullptr;
    throw AmqpError("RabbitMQ login at " + masked_url_ + " failed: " + e +
                    " -- fix: check user, password and vhost in --amqp (guest only works from localhost)");
  }
  amqp_channel_open(conn_, kPubChannel);
  r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("opening the AMQP channel failed: " + rpc_error(r));
  amqp_confirm_select(conn_, kPubChannel);
  r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("confirm.select failed: " + rpc_error(r));
  spdlog::info("connected to RabbitMQ at {} (confirm mode)", masked_url_);
}

void AmqpPublisher::open_aux_channel() {
  if (aux_open_) return;
  amqp_channel_open(conn_, kAuxChannel);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("opening the AMQP side channel failed: " + rpc_error(r));
  aux_open_ = true;
}

bool AmqpPublisher::exchange_exists(const std::string& name) {
  if (name.empty() || name.rfind("amq.", 0) == 0 || known_exchanges_.count(name)) return true;
  open_aux_channel();
  amqp_exchange_declare(conn_, kAuxChannel, amqp_cstring_bytes(name.c_str()), amqp_cstring_bytes("topic"), 1, 0, 0, 0,
                        amqp_empty_table);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    known_exchanges_.insert(name);
    return true;
  }
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
    int code = m->reply_code;
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_, kAuxChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    aux_open_ = false;
    if (code == 404) return false;
    throw AmqpError("checking exchange \"" + name + "\" failed: " + rpc_error(r));
  }
  throw AmqpError("checking exchange \"" + name + "\" failed: " + rpc_error(r));
}

void AmqpPublisher::declare_topology(const Topology& t) {
  if (t.empty()) return;
  open_aux_channel();
  auto check = [&](const std::string& what) {
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
      throw AmqpError("declaring " + what + " failed: " + rpc_error(r) +
                      " -- fix: the [topology] in the config file disagrees with what exists on the broker");
  };
  for (const auto& x : t.exchanges) {
    amqp_exchange_declare(conn_, kAuxChannel, amqp_cstring_bytes(x.name.c_str()), amqp_cstring_bytes(x.type.c_str()), 0,
                          x.durable, x.auto_delete, 0, amqp_empty_table);
    check("exchange " + x.name);
    known_exchanges_.insert(x.name);
  }
  for (const auto& q : t.queues) {
    std::vector<amqp_table_entry_t> args;
    auto add_str = [&](const char* k, const std::string& v) {
      amqp_table_entry_t e;
      e.key = amqp_cstring_bytes(k);
      e.value.kind = AMQP_FIELD_KIND_UTF8;
      e.value.value.bytes = bytes_of(v);
      args.push_back(e);
    };
    auto add_int = [&](const char* k, std::int64_t v) {
      amqp_table_entry_t e;
      e.key = amqp_cstring_bytes(k);
      e.value.kind = AMQP_FIELD_KIND_I64;
      e.value.value.i64 = v;
      args.push_back(e);
    };
    if (!q.dead_letter_exchange.empty()) add_str("x-dead-letter-exchange", q.dead_letter_exchange);
    if (!q.dead_letter_routing_key.empty()) add_str("x-dead-letter-routing-key", q.dead_letter_routing_key);
    if (!q.queue_type.empty()) add_str("x-queue-type", q.queue_type);
    if (q.message_ttl_ms) add_int("x-message-ttl", *q.message_ttl_ms);
    if (q.max_length) add_int("x-max-length", *q.max_length);
    amqp_table_t table{static_cast<int>(args.size()), args.empty() ? nullptr : args.data()};
    amqp_queue_declare(conn_, kAuxChannel, amqp_cstring_bytes(q.name.c_str()), 0, q.durable, q.exclusive, q.auto_delete,
                       table);
    check("queue " + q.name);
  }
  for (const auto& b : t.bindings) {
    amqp_queue_bind(conn_, kAuxChannel, amqp_cstring_bytes(b.queue.c_str()), amqp_cstring_bytes(b.exchange.c_str()),
                    amqp_cstring_bytes(b.routing_key.c_str()), amqp_empty_table);
    check("binding " + b.queue + " <- " + b.exchange + " (" + b.routing_key + ")");
  }
  spdlog::info("declared topology: {} exchanges, {} queues, {} bindings", t.exchanges.size(), t.queues.size(),
               t.bindings.size());
}

int AmqpPublisher::socket() const { return conn_ ? amqp_get_sockfd(conn_) : -1; }

bool AmqpPublisher::has_buffered() const {
  return conn_ && (amqp_frames_enqueued(conn_) || amqp_data_in_buffer(conn_));
}

void AmqpPublisher::cork(bool on) {
  if (!conn_ || corked_ == on) return;
  int v = on ? 1 : 0;
  if (::setsockopt(amqp_get_sockfd(conn_), IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0) corked_ = on;
}

bool AmqpPublisher::writable() const {
  if (!conn_) return false;
  pollfd p{amqp_get_sockfd(conn_), POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

void AmqpPublisher::publish(const Event& ev, const PublishSpec& spec) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof p);
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TYPE_FLAG |
             AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
  p.content_type = amqp_cstring_bytes("application/json");
  p.delivery_mode = 2;
  p.type = bytes_of(ev.event_type);
  p.app_id = bytes_of(spec.app_id);
  if (!ev.id.empty()) {
    p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    p.message_id = bytes_of(ev.id);
  }
  if (ev.correlation_id) {
    p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    p.correlation_id = bytes_of(*ev.correlation_id);
  }
  std::int64_t ts_us = 0;
  if (auto t = parse_timestamp_us(ev.created_at)) ts_us = *t;
  else if (auto c = parse_timestamp_us(ev.commit_time)) ts_us = *c;
  else
    ts_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  p.timestamp = static_cast<std::uint64_t>(ts_us / 1000000);

  std::string lsn = format_lsn(ev.lsn);
  std::vector<amqp_table_entry_t> h;
  h.reserve(ev.headers.size() + 6);
  for (const auto& hd : ev.headers) {
    amqp_table_entry_t e;
    e.key = bytes_of(hd.name);
    switch (hd.value.kind) {
      case HeaderValue::Kind::String:
        e.value.kind = AMQP_FIELD_KIND_UTF8;
        e.value.value.bytes = bytes_of(hd.value.s);
        break;
      case HeaderValue::Kind::Int:
        e.value.kind = AMQP_FIELD_KIND_I64;
        e.value.value.i64 = hd.value.i;
        break;
      case HeaderValue::Kind::Double:
        e.value.kind = AMQP_FIELD_KIND_F64;
        e.value.value.f64 = hd.value.d;
        break;
      case HeaderValue::Kind::Bool:
        e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
        e.value.value.boolean = hd.value.b;
        break;
      case HeaderValue::Kind::Null:
        e.value.kind = AMQP_FIELD_KIND_VOID;
        break;
    }
    h.push_back(e);
  }
  auto add_str = [&](const char* k, const std::string& v) {
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = bytes_of(v);
    h.push_back(e);
  };
  if (ev.aggregate_type) add_str("x-outbox-aggregate-type", *ev.aggregate_type);
  if (ev.aggregate_id) add_str("x-outbox-aggregate-id", *ev.aggregate_id);
  add_str("x-outbox-lsn", lsn);
  {
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes("x-outbox-xid");
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = static_cast<std::int64_t>(ev.xid);
    h.push_back(e);
  }
  if (!ev.commit_time.empty()) add_str("x-outbox-commit-time", ev.commit_time);
  if (ev.causation_id) add_str("x-outbox-causation-id", *ev.causation_id);
  std::string ce_time;
  if (!spec.cloudevents_source.empty()) {
    ce_time = format_rfc3339_us(ts_us);
    add_str("cloudEvents:specversion", kCeVersion);
    add_str("cloudEvents:id", ev.id);
    add_str("cloudEvents:source", spec.cloudevents_source);
    add_str("cloudEvents:type", ev.event_type);
    add_str("cloudEvents:time", ce_time);
    if (ev.aggregate_id) add_str("cloudEvents:subject", *ev.aggregate_id);
  }
  p.headers.num_entries = static_cast<int>(h.size());
  p.headers.entries = h.data();

  int st = amqp_basic_publish(conn_, kPubChannel, bytes_of(spec.exchange), bytes_of(spec.routing_key), 1, 0, &p,
                              bytes_of(ev.payload));
  if (st != AMQP_STATUS_OK) fail("basic.publish failed (connection to RabbitMQ lost?)", st);
}

void AmqpPublisher::poll(const AmqpCallbacks& cb) {
  while (true) {
    amqp_frame_t f;
    struct timeval zero{0, 0};
    amqp_maybe_release_buffers(conn_);
    int st = amqp_simple_wait_frame_noblock(conn_, &f, &zero);
    if (st == AMQP_STATUS_TIMEOUT) return;
    if (st != AMQP_STATUS_OK) fail("reading from RabbitMQ failed (connection lost?)", st);
    if (f.frame_type != AMQP_FRAME_METHOD) continue;  // stray header/body frames
    switch (f.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* m = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
        cb.on_confirm(m->delivery_tag, m->multiple, false);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* m = static_cast<amqp_basic_nack_t*>(f.payload.method.decoded);
        cb.on_confirm(m->delivery_tag, m->multiple, true);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        auto* m = static_cast<amqp_basic_return_t*>(f.payload.method.decoded);
        std::string reply = std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
        amqp_message_t msg;
        amqp_rpc_reply_t r = amqp_read_message(conn_, f.channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) throw AmqpError("reading a returned message failed: " + rpc_error(r));
        std::string id, lsn;
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) id = bytes_str(msg.properties.message_id);
        if (msg.properties._flags & AMQP_BASIC_HEADERS_FLAG)
          for (int i = 0; i < msg.properties.headers.num_entries; ++i) {
            auto& e = msg.properties.headers.entries[i];
            if (bytes_str(e.key) == "x-outbox-lsn" && e.value.kind == AMQP_FIELD_KIND_UTF8) lsn = bytes_str(e.value.value.bytes);
          }
        amqp_destroy_message(&msg);
        cb.on_return(id, lsn, reply);
        break;
      }
      case AMQP_CONNECTION_BLOCKED_METHOD: {
        auto* m = static_cast<amqp_connection_blocked_t*>(f.payload.method.decoded);
        cb.on_blocked(true, bytes_str(m->reason));
        break;
      }
      case AMQP_CONNECTION_UNBLOCKED_METHOD:
        cb.on_blocked(false, "");
        break;
      case AMQP_CHANNEL_CLOSE_METHOD: {
        auto* m = static_cast<amqp_channel_close_t*>(f.payload.method.decoded);
        std::string why = std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
        amqp_channel_close_ok_t ok{};
        amqp_send_method(conn_, f.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        if (f.channel == kAuxChannel) {
          aux_open_ = false;
          break;
        }
        throw AmqpError("RabbitMQ closed the publishing channel: " + why);
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        auto* m = static_cast<amqp_connection_close_t*>(f.payload.method.decoded);
        std::string why = std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
        amqp_connection_close_ok_t ok{};
        amqp_send_method(conn_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        throw AmqpError("RabbitMQ closed the connection: " + why);
      }
      default:
        break;
    }
  }
}

}  // namespace outbox
