// The polling outbox that pg-outbox replaces, built the usual way, as the baseline of bench/relay:
// every POLL_MS (default 1000) it runs
//   BEGIN; SELECT ... FROM polling_outbox WHERE status = 'pending' ORDER BY id
//          FOR UPDATE SKIP LOCKED LIMIT BATCH;
//   publish each row with publisher confirms (mandatory, persistent), wait for all confirms;
//   UPDATE polling_outbox SET status = 'sent' WHERE id = ANY(...); COMMIT;
// and polls again at once while batches come back full.
// Usage: polling-outbox CONNINFO AMQP_URL EXCHANGE ROUTING_KEY STOP_AFTER_N [POLL_MS] [BATCH] [MAX_SECONDS]
// Prints "<sent> <seconds>" when STOP_AFTER_N rows were sent, or once MAX_SECONDS passed and a
// poll found nothing left (so a live run drains what its load emitted).
#include <amqp.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tools/amqp_login.h"

namespace {
void die(const std::string& m) {
  std::fprintf(stderr, "polling-outbox: %s\n", m.c_str());
  std::exit(1);
}
PGresult* q(PGconn* c, const char* sql, ExecStatusType want) {
  PGresult* r = PQexec(c, sql);
  if (PQresultStatus(r) != want) die(std::string(sql) + ": " + PQresultErrorMessage(r));
  return r;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) die("usage: polling-outbox CONNINFO AMQP_URL EXCHANGE ROUTING_KEY STOP_AFTER_N [POLL_MS] [BATCH] [MAX_SECONDS]");
  std::string conninfo = argv[1], url = argv[2], exchange = argv[3], rk = argv[4];
  long stop_after = std::atol(argv[5]);
  long poll_ms = argc > 6 ? std::atol(argv[6]) : 1000;
  long batch = argc > 7 ? std::atol(argv[7]) : 100;
  double max_seconds = argc > 8 ? std::atof(argv[8]) : 600;

  PGconn* pg = PQconnectdb(conninfo.c_str());
  if (PQstatus(pg) != CONNECTION_OK) die(PQerrorMessage(pg));
  amqp_connection_state_t c;
  outbox::AmqpLogin login = outbox::amqp_login_url(url, c);
  if (login == outbox::AmqpLogin::BadUrl) die("bad AMQP URL");
  if (login == outbox::AmqpLogin::CannotConnect) die("cannot connect to RabbitMQ");
  if (login == outbox::AmqpLogin::Refused) die("login failed");
  amqp_channel_open(c, 1);
  amqp_confirm_select(c, 1);
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) die("confirm.select failed");

  std::string select = "SELECT id, event_type, payload::text, created_at::text FROM polling_outbox WHERE status = 'pending' "
                       "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT " + std::to_string(batch);
  long sent = 0;
  std::uint64_t tag = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int last = -1;
  while (sent < stop_after && !(elapsed() >= max_seconds && last == 0)) {
    PQclear(q(pg, "BEGIN", PGRES_COMMAND_OK));
    PGresult* r = q(pg, select.c_str(), PGRES_TUPLES_OK);
    int n = PQntuples(r);
    std::string ids = "{";
    for (int i = 0; i < n; ++i) {
      amqp_basic_properties_t p;
      std::memset(&p, 0, sizeof p);
      p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                 AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
      p.content_type = amqp_cstring_bytes("application/json");
      p.delivery_mode = 2;
      p.message_id = amqp_cstring_bytes(PQgetvalue(r, i, 0));
      p.type = amqp_cstring_bytes(PQgetvalue(r, i, 1));
      amqp_table_entry_t h[1];
      h[0].key = amqp_cstring_bytes("x-outbox-commit-time");
      h[0].value.kind = AMQP_FIELD_KIND_UTF8;
      h[0].value.value.bytes = amqp_cstring_bytes(PQgetvalue(r, i, 3));
      p.headers.num_entries = 1;
      p.headers.entries = h;
      amqp_bytes_t body{static_cast<size_t>(PQgetlength(r, i, 2)), PQgetvalue(r, i, 2)};
      if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange.c_str()), amqp_cstring_bytes(rk.c_str()), 1, 0, &p, body) !=
          AMQP_STATUS_OK)
        die("publish failed");
      ++tag;
      if (i) ids += ",";
      ids += PQgetvalue(r, i, 0);
    }
    ids += "}";
    // wait for every confirm of this batch
    std::uint64_t confirmed = tag - static_cast<std::uint64_t>(n);
    while (confirmed < tag) {
      amqp_frame_t f;
      if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) die("connection lost");
      if (f.frame_type != AMQP_FRAME_METHOD) continue;
      if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
        confirmed = a->multiple ? a->delivery_tag : confirmed + 1;
      } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        die("nacked");
      }
    }
    PQclear(r);
    if (n > 0) {
      const char* params[] = {ids.c_str()};
      PGresult* u = PQexecParams(pg, "UPDATE polling_outbox SET status = 'sent' WHERE id = ANY($1::bigint[])", 1, nullptr,
                                 params, nullptr, nullptr, 0);
      if (PQresultStatus(u) != PGRES_COMMAND_OK) die(PQresultErrorMessage(u));
      PQclear(u);
    }
    PQclear(q(pg, "COMMIT", PGRES_COMMAND_OK));
    sent += n;
    last = n;
    if (n < batch) std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  std::printf("%ld %.3f\n", sent, elapsed());
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  PQfinish(pg);
  return 0;
}
