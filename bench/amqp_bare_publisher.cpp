// The broker's own limit for bench/relay and bench/sinks: publish N persistent messages of a given
// body size to an exchange/routing key with publisher confirms and a window, exactly as the relay
// does (same properties and headers, mandatory), and print "<count> <seconds> <rate> <cpu us per
// message>". RabbitMQ itself bounds it here (persisting, confirming): writing bursts corked or
// refilling the window by halves measured no faster, so it publishes whenever the window has
// room. With RATE, paced: RATE messages a second, each stamped with its send time
// (bare_pacing.h). No PostgreSQL.
//   amqp-bare-publisher URL EXCHANGE ROUTING_KEY COUNT SIZE [WINDOW [RATE]]
#include <amqp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "bare_pacing.h"
#include "tools/amqp_login.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: amqp-bare-publisher URL EXCHANGE ROUTING_KEY COUNT SIZE [WINDOW [RATE]]\n");
    return 2;
  }
  std::string url = argv[1], exchange = argv[2], rk = argv[3];
  long count = std::atol(argv[4]);
  long size = std::atol(argv[5]);
  long window = argc > 6 ? std::atol(argv[6]) : 1000;
  bench::Pacing pace;
  pace.rate = argc > 7 ? std::atol(argv[7]) : 0;
  amqp_connection_state_t c;
  outbox::AmqpLogin login = outbox::amqp_login_url(url, c);
  if (login != outbox::AmqpLogin::Ok) return login == outbox::AmqpLogin::BadUrl ? 2 : 1;
  amqp_channel_open(c, 1);
  amqp_confirm_select(c, 1);
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) return 1;
  std::string body = "{\"pad\":\"" + std::string(size > 12 ? static_cast<size_t>(size - 12) : 0, 'x') + "\"}";
  long sent = 0, confirmed = 0;
  std::string stamp = "2026-11-23 05:17:57.590859+00";
  auto t0 = std::chrono::steady_clock::now();
  pace.start = t0;
  while (confirmed < count) {
    while (sent < count && sent - confirmed < window &&
           (!pace.on() || std::chrono::steady_clock::now() >= pace.due(sent))) {
      amqp_basic_properties_t p;
      std::memset(&p, 0, sizeof p);
      p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                 AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
      p.content_type = amqp_cstring_bytes("application/json");
      p.delivery_mode = 2;
      p.message_id = amqp_cstring_bytes("01a206d6-e9d5-7ec2-94ef-64c6fa8e6933");
      p.type = amqp_cstring_bytes("order_created");
      p.app_id = amqp_cstring_bytes("outbox-relay");
      p.timestamp = 1795410000;
      // The same headers as the relay sends (DESIGN 5.3), so the broker does the same work.
      amqp_table_entry_t h[5];
      auto str = [](amqp_table_entry_t& e, const char* k, const char* v) {
        e.key = amqp_cstring_bytes(k);
        e.value.kind = AMQP_FIELD_KIND_UTF8;
        e.value.value.bytes = amqp_cstring_bytes(v);
      };
      if (pace.on()) stamp = bench::timestamp_now();
      str(h[0], "x-outbox-aggregate-type", "bench");
      str(h[1], "x-outbox-aggregate-id", "1234567");
      str(h[2], "x-outbox-lsn", "0/1A2B3C4D");
      h[3].key = amqp_cstring_bytes("x-outbox-xid");
      h[3].value.kind = AMQP_FIELD_KIND_I64;
      h[3].value.value.i64 = 123456;
      str(h[4], "x-outbox-commit-time", stamp.c_str());
      p.headers.num_entries = 5;
      p.headers.entries = h;
      amqp_bytes_t b{body.size(), const_cast<char*>(body.data())};
      if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange.c_str()), amqp_cstring_bytes(rk.c_str()), 1, 0, &p, b) !=
          AMQP_STATUS_OK)
        return 1;
      ++sent;
    }
    amqp_frame_t f;
    int st;
    if (pace.on() && sent < count) {
      // Take what arrived, else sleep until the next message is due (the confirms wait).
      timeval now{0, 0};
      st = amqp_simple_wait_frame_noblock(c, &f, &now);
      if (st == AMQP_STATUS_TIMEOUT) {
        std::this_thread::sleep_until(pace.due(sent));
        continue;
      }
    } else {
      st = amqp_simple_wait_frame(c, &f);
    }
    if (st != AMQP_STATUS_OK) return 1;
    if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      long tag = static_cast<long>(a->delivery_tag);
      confirmed = a->multiple ? tag : confirmed + 1;  // acks arrive in order on one queue
    } else if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
      std::fprintf(stderr, "unroutable: bind a queue first\n");
      return 1;
    }
  }
  bench::print_result(count, t0);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return 0;
}
