// The broker's own limit for bench/relay: publish N persistent messages of a given size to an
// exchange/routing key with publisher confirms and a window, like the relay does (same
// properties shape, mandatory), and print the rate. No PostgreSQL involved.
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: amqp-bare-publisher URL EXCHANGE ROUTING_KEY COUNT SIZE [WINDOW]\n");
    return 2;
  }
  std::string url = argv[1], exchange = argv[2], rk = argv[3];
  long count = std::atol(argv[4]);
  long size = std::atol(argv[5]);
  long window = argc > 6 ? std::atol(argv[6]) : 1000;
  char* ubuf = strdup(url.c_str());
  amqp_connection_info ci;
  if (amqp_parse_url(ubuf, &ci) != AMQP_STATUS_OK) return 2;
  // "amqp://host:port/" has an empty vhost by the URI spec; everyone means "/".
  if (ci.vhost == nullptr || ci.vhost[0] == '\0') ci.vhost = const_cast<char*>("/");
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(c);
  if (amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) return 1;
  if (amqp_login(c, ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
      AMQP_RESPONSE_NORMAL)
    return 1;
  amqp_channel_open(c, 1);
  amqp_confirm_select(c, 1);
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) return 1;
  std::string body = "{\"pad\":\"" + std::string(size > 12 ? static_cast<size_t>(size - 12) : 0, 'x') + "\"}";
  long sent = 0, confirmed = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (confirmed < count) {
    while (sent < count && sent - confirmed < window) {
      amqp_basic_properties_t p;
      std::memset(&p, 0, sizeof p);
      p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                 AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
      p.content_type = amqp_cstring_bytes("application/json");
      p.delivery_mode = 2;
      p.message_id = amqp_cstring_bytes("0190f3a0-0000-7000-8000-000000000000");
      p.type = amqp_cstring_bytes("bench");
      p.app_id = amqp_cstring_bytes("bare");
      p.timestamp = 1;
      amqp_table_entry_t h[2];
      h[0].key = amqp_cstring_bytes("x-outbox-lsn");
      h[0].value.kind = AMQP_FIELD_KIND_UTF8;
      h[0].value.value.bytes = amqp_cstring_bytes("0/1000000");
      h[1].key = amqp_cstring_bytes("x-outbox-xid");
      h[1].value.kind = AMQP_FIELD_KIND_I64;
      h[1].value.value.i64 = 1;
      p.headers.num_entries = 2;
      p.headers.entries = h;
      amqp_bytes_t b{body.size(), const_cast<char*>(body.data())};
      if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange.c_str()), amqp_cstring_bytes(rk.c_str()), 1, 0, &p, b) !=
          AMQP_STATUS_OK)
        return 1;
      ++sent;
    }
    amqp_frame_t f;
    if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) return 1;
    if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      long tag = static_cast<long>(a->delivery_tag);
      confirmed = a->multiple ? tag : confirmed + 1;  // acks arrive in order on one queue
    } else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
      std::fprintf(stderr, "unroutable: bind a queue first\n");
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%ld %.3f %.0f\n", count, secs, count / secs);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return 0;
}
