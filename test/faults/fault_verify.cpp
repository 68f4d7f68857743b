// fault-verify: the fault suite's verifying consumer.
//
//   fault-verify declare --amqp URL --queue Q --exchange EX [--routing-key '#']
//       declares the durable topic exchange EX and the durable queue Q bound to it, before the load starts, so that nothing the
//       relay publishes can miss it.
//   fault-verify check --amqp URL --queue Q --pg CONNINFO --scenario NAME --storage S
//       [--aggregate-type fault] [--idle-ms 3000] [--give-up-idle-ms 60000] [--timeout-s 300]
//       [--max-duplicates N] [--allow-unexpected] [--figure NAME=VALUE ...] [--delete-queue [--exchange EX]]
//       reads the expected set (fault_expected, written in the same transactions as the events)
//       from the server of --pg (the current primary), consumes Q with acks until every expected
//       event arrived and the queue was idle for --idle-ms (or nothing came for
//       --give-up-idle-ms, or --timeout-s passed), and prints one line:
//         scenario=... storage=... events=N lost=N unexpected=N duplicates=N order_violations=N [figures]
//
// A delivery is mapped to its event by the header outbox-original-id when it has one (a copy made
// by outbox.republish), else by message_id (the relay sets it to the event id,
// relay/sinks/rabbitmq/message.cpp). lost: expected, never delivered. unexpected: delivered, not expected
// (a rolled-back event, whose payload says "rb": true, counts here and also in
// rolled_back_delivered). duplicates: deliveries after an event's first. order_violations: within
// an aggregate, a first delivery whose seq is lower than an earlier first delivery's.
// Exit 1 when lost, unexpected (unless --allow-unexpected, and never for rolled-back events) or
// order_violations is above 0, or duplicates above --max-duplicates; 2 for a usage or setup error.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libpq-fe.h>
#include <sys/time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fault-verify: error: %s\n", what.c_str());
  std::exit(2);
}

struct Options {
  std::string mode, amqp, queue, exchange, routing_key = "#", pg, scenario, storage, aggregate_type = "fault";
  long idle_ms = 3000, give_up_idle_ms = 60000, timeout_s = 300;
  long long max_duplicates = -1;  // -1: no limit
  bool allow_unexpected = false, delete_queue = false;
  std::vector<std::string> figures;
};

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) fail("usage: fault-verify declare|check ... (see the comment at the top of fault_verify.cpp)");
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto v = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--amqp") o.amqp = v();
    else if (a == "--queue") o.queue = v();
    else if (a == "--exchange") o.exchange = v();
    else if (a == "--routing-key") o.routing_key = v();
    else if (a == "--pg") o.pg = v();
    else if (a == "--scenario") o.scenario = v();
    else if (a == "--storage") o.storage = v();
    else if (a == "--aggregate-type") o.aggregate_type = v();
    else if (a == "--idle-ms") o.idle_ms = std::atol(v().c_str());
    else if (a == "--give-up-idle-ms") o.give_up_idle_ms = std::atol(v().c_str());
    else if (a == "--timeout-s") o.timeout_s = std::atol(v().c_str());
    else if (a == "--max-duplicates") o.max_duplicates = std::atoll(v().c_str());
    else if (a == "--allow-unexpected") o.allow_unexpected = true;
    else if (a == "--delete-queue") o.delete_queue = true;
    else if (a == "--figure") o.figures.push_back(v());
    else fail("unknown argument " + a);
  }
  if (o.amqp.empty() || o.queue.empty()) fail("--amqp and --queue are required");
  if (o.mode == "declare" && o.exchange.empty()) fail("declare needs --exchange");
  if (o.mode == "check" && (o.pg.empty() || o.scenario.empty() || o.storage.empty()))
    fail("check needs --pg, --scenario and --storage");
  if (o.mode != "declare" && o.mode != "check") fail("mode is declare or check");
  return o;
}

void rpc_ok(amqp_connection_state_t c, const char* what) {
  amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) fail(std::string("RabbitMQ: ") + what + " failed");
}

amqp_connection_state_t amqp_open(const std::string& url) {
  std::string u = url;
  amqp_connection_info ci;
  amqp_default_connection_info(&ci);
  if (amqp_parse_url(&u[0], &ci) != AMQP_STATUS_OK) fail("cannot parse " + url);
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(c);
  if (!s || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) fail("cannot connect to RabbitMQ");
  // amqp://host:port/ parses to an empty vhost; RabbitMQ's default vhost is "/".
  const char* vhost = (ci.vhost && *ci.vhost) ? ci.vhost : "/";
  amqp_rpc_reply_t r = amqp_login(c, vhost, 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) fail("RabbitMQ login failed");
  amqp_channel_open(c, 1);
  rpc_ok(c, "channel.open");
  return c;
}

void amqp_close(amqp_connection_state_t c) {
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

int declare(const Options& o) {
  auto c = amqp_open(o.amqp);
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(o.exchange.c_str()), amqp_cstring_bytes("topic"), 0, 1, 0, 0,
                        amqp_empty_table);
  rpc_ok(c, "exchange.declare");
  amqp_queue_declare(c, 1, amqp_cstring_bytes(o.queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
  rpc_ok(c, "queue.declare");
  amqp_queue_bind(c, 1, amqp_cstring_bytes(o.queue.c_str()), amqp_cstring_bytes(o.exchange.c_str()),
                  amqp_cstring_bytes(o.routing_key.c_str()), amqp_empty_table);
  rpc_ok(c, "queue.bind");
  amqp_close(c);
  return 0;
}

struct Expected {
  std::string aggregate;
  long long seq;
};

std::unordered_map<std::string, Expected> read_expected(const Options& o) {
  PGconn* pg = PQconnectdb(o.pg.c_str());
  if (PQstatus(pg) != CONNECTION_OK) fail(std::string("PostgreSQL: ") + PQerrorMessage(pg));
  std::string q = "SELECT event_id::text, aggregate_id, seq FROM fault_expected WHERE aggregate_type = '" +
                  o.aggregate_type + "'";
  PGresult* r = PQexec(pg, q.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) fail(std::string("reading fault_expected: ") + PQerrorMessage(pg));
  std::unordered_map<std::string, Expected> m;
  m.reserve(PQntuples(r) * 2);
  for (int i = 0; i < PQntuples(r); ++i) m[PQgetvalue(r, i, 0)] = {PQgetvalue(r, i, 1), std::atoll(PQgetvalue(r, i, 2))};
  PQclear(r);
  PQfinish(pg);
  return m;
}

std::string bytes(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

// An event emitted again by outbox.republish (or a relay's slot recovery) is a new event whose
// header outbox-original-id names the original: consumers de-duplicate on it (README.md), and so
// does this check, so that such a copy counts as the original's duplicate, not as unexpected.
std::string original_id(const amqp_basic_properties_t& p) {
  if (!(p._flags & AMQP_BASIC_HEADERS_FLAG)) return {};
  for (int i = 0; i < p.headers.num_entries; ++i) {
    const amqp_table_entry_t& e = p.headers.entries[i];
    if (bytes(e.key) == "outbox-original-id" &&
        (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES))
      return bytes(e.value.value.bytes);
  }
  return {};
}

int check(const Options& o) {
  auto expected = read_expected(o);
  auto c = amqp_open(o.amqp);
  amqp_basic_qos(c, 1, 0, 2000, 0);
  rpc_ok(c, "basic.qos");
  amqp_basic_consume(c, 1, amqp_cstring_bytes(o.queue.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  rpc_ok(c, "basic.consume");

  std::unordered_set<std::string> seen;
  std::unordered_map<std::string, long long> last_seq;  // aggregate -> seq of its latest first delivery
  long long duplicates = 0, unexpected = 0, rolled_back = 0, order_violations = 0, deliveries = 0;
  std::vector<std::string> samples;  // a few examples for the log
  uint64_t unacked_tag = 0;
  int unacked = 0;
  auto start = Clock::now(), last_msg = Clock::now();
  const auto deadline = start + std::chrono::seconds(o.timeout_s);
  for (;;) {
    auto now = Clock::now();
    auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_msg).count();
    bool complete = seen.size() >= expected.size();
    if ((complete && idle >= o.idle_ms) || idle >= o.give_up_idle_ms || now >= deadline) break;
    timeval tv{0, 200000};
    amqp_envelope_t env;
    amqp_maybe_release_buffers(c);
    amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      if (unacked) {
        amqp_basic_ack(c, 1, unacked_tag, 1);
        unacked = 0;
      }
      continue;
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) fail("consuming failed (connection or channel closed)");
    last_msg = Clock::now();
    ++deliveries;
    std::string id = original_id(env.message.properties);
    if (id.empty() && (env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG))
      id = bytes(env.message.properties.message_id);
    auto it = expected.find(id);
    if (it == expected.end()) {
      if (!seen.count(id)) {
        ++unexpected;
        std::string body = bytes(env.message.body);
        if (body.find("\"rb\": true") != std::string::npos || body.find("\"rb\":true") != std::string::npos)
          ++rolled_back;
        if (samples.size() < 5) samples.push_back("unexpected " + id + " " + body);
        seen.insert(id);
      } else {
        ++duplicates;
      }
    } else if (!seen.insert(id).second) {
      ++duplicates;
    } else {
      auto& last = last_seq[it->second.aggregate];
      if (it->second.seq < last) {
        ++order_violations;
        if (samples.size() < 10)
          samples.push_back("order: " + it->second.aggregate + " seq " + std::to_string(it->second.seq) +
                            " after " + std::to_string(last));
      } else {
        last = it->second.seq;
      }
    }
    unacked_tag = env.delivery_tag;
    if (++unacked >= 500) {
      amqp_basic_ack(c, 1, unacked_tag, 1);
      unacked = 0;
    }
    amqp_destroy_envelope(&env);
  }
  if (unacked) amqp_basic_ack(c, 1, unacked_tag, 1);
  long long lost = 0;
  for (const auto& [id, e] : expected) {
    if (!seen.count(id)) {
      ++lost;
      if (samples.size() < 15) samples.push_back("lost " + id + " " + e.aggregate + " seq " + std::to_string(e.seq));
    }
  }
  if (o.delete_queue) {
    amqp_queue_delete(c, 1, amqp_cstring_bytes(o.queue.c_str()), 0, 0);
    rpc_ok(c, "queue.delete");
    if (!o.exchange.empty()) {
      amqp_exchange_delete(c, 1, amqp_cstring_bytes(o.exchange.c_str()), 0);
      rpc_ok(c, "exchange.delete");
    }
  }
  amqp_close(c);
  for (const auto& s : samples) std::fprintf(stderr, "fault-verify: %s\n", s.c_str());
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::string line = "scenario=" + o.scenario + " storage=" + o.storage + " events=" + std::to_string(expected.size()) +
                     " lost=" + std::to_string(lost) + " unexpected=" + std::to_string(unexpected) +
                     " duplicates=" + std::to_string(duplicates) + " order_violations=" + std::to_string(order_violations);
  for (const auto& f : o.figures) line += " " + f;
  if (rolled_back) line += " rolled_back_delivered=" + std::to_string(rolled_back);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "fault-verify: %lld deliveries consumed in %.1f s\n", deliveries, secs);
  bool bad = lost > 0 || order_violations > 0 || rolled_back > 0 || (unexpected > 0 && !o.allow_unexpected);
  if (o.max_duplicates >= 0 && duplicates > o.max_duplicates) {
    std::fprintf(stderr, "fault-verify: %lld duplicates, more than the scenario's maximum of %lld\n", duplicates,
                 o.max_duplicates);
    bad = true;
  }
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  return o.mode == "declare" ? declare(o) : check(o);
}
