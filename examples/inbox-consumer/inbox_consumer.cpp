// inbox-consumer: the worked example of outbox.inbox_accept(). Reads the events outbox-relay
// publishes, from RabbitMQ, NATS JetStream or Redis Streams, and applies each exactly once:
//
//   BEGIN;
//   SELECT outbox.inbox_accept(<consumer>, <event id>);   -- false: a duplicate, skip it
//   <the effect: --apply, with $1 = the event id (uuid), $2 = the payload (jsonb)>
//   COMMIT;
//   then acknowledge the message to the broker
//
// Delivery is at least once: a message acknowledged by nobody (the consumer died after its
// COMMIT, before its ack) comes again, and the inbox, written in the transaction of the effect,
// says it was applied. A crash before the COMMIT leaves neither, and the message is applied
// when it comes again. Prints one line per message on stdout: "applied <id>" or "skipped <id>".
#include <libpq-fe.h>

#include <cctype>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "source.h"

namespace {

class Database {
 public:
  explicit Database(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) throw std::runtime_error(std::string("PostgreSQL: ") + PQerrorMessage(c_));
  }
  ~Database() { PQfinish(c_); }

  // The message's effect and its id in one transaction: true if applied, false if the inbox
  // already held the id (the effect is not run again).
  bool apply_once(const std::string& consumer, const inbox::Delivery& d, const std::string& apply_sql) {
    run("BEGIN", {});
    bool first = run("SELECT outbox.inbox_accept($1, $2)", {consumer.c_str(), d.id.c_str()}, {kText, kUuid}) == "t";
    if (first) run(apply_sql, {d.id.c_str(), d.body.c_str()}, {kUuid, kJsonb});
    run("COMMIT", {});
    return first;
  }

 private:
  // One statement; the first column of its first row ("" if none). Any error rolls back and
  // throws: the message is not acknowledged, so the broker delivers it again.
  // Parameter types are given, so that an --apply that leaves $1 or $2 out still runs.
  static constexpr Oid kText = 25, kUuid = 2950, kJsonb = 3802;

  std::string run(const std::string& sql, std::initializer_list<const char*> params,
                  std::initializer_list<Oid> types = {}) {
    PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(params.size()), types.size() ? types.begin() : nullptr,
                               params.begin(), nullptr, nullptr, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string err = PQresultErrorMessage(r);
      PQclear(r);
      PQclear(PQexec(c_, "ROLLBACK"));
      throw std::runtime_error("PostgreSQL: " + err);
    }
    std::string v = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    PQclear(r);
    return v;
  }

  PGconn* c_;
};

// 8-4-4-4-12 hex digits: what inbox_accept takes (anything else would fail the transaction
// every time the message came).
bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i])))
      return false;
  return true;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"inbox-consumer: apply each outbox event once, with outbox.inbox_accept() in the transaction of its effect"};
  std::string pg, consumer, broker, apply_sql = "INSERT INTO applied_events (event_id, payload) VALUES ($1, $2)";
  inbox::SourceOptions o;
  long idle_exit_ms = 0, crash_before_ack = 0;
  app.add_option("--pg", pg, "libpq connection string of the consumer's database (as a role given outbox.grant_consumer)")->required();
  app.add_option("--consumer", consumer, "the consumer's name in the inbox; the same at every start")->required();
  app.add_option("--broker", broker, "rabbitmq, nats or redis")->required()->check(CLI::IsMember({"rabbitmq", "nats", "redis"}));
  app.add_option("--url", o.url, "broker URL (default: $OUTBOX_AMQP_URL, $OUTBOX_NATS_URL or $OUTBOX_REDIS_URL)");
  app.add_option("--queue", o.queue, "RabbitMQ: the queue (declared durable)");
  app.add_option("--bind", o.bind, "RabbitMQ: EXCHANGE:ROUTING_KEY to bind the queue to");
  app.add_option("--stream", o.stream, "NATS: the JetStream stream; Redis: the stream key");
  app.add_option("--subject", o.subject, "NATS: the subjects to consume (e.g. outbox.>)");
  app.add_option("--group", o.group, "NATS: durable consumer name; Redis: consumer group (default: --consumer)");
  app.add_option("--ack-wait-ms", o.ack_wait_ms, "NATS: redeliver a message not acknowledged for this long");
  app.add_option("--apply", apply_sql, "the effect, run only the first time: SQL with $1 = event id (uuid), $2 = payload (jsonb)");
  app.add_option("--idle-exit-ms", idle_exit_ms, "exit 0 after this long without a message (0: never)");
  app.add_option("--crash-before-ack", crash_before_ack,
                 "tests: kill -9 itself after committing the N-th applied message, before acknowledging it");
  CLI11_PARSE(app, argc, argv);
  if (o.group.empty()) o.group = consumer;
  o.member = consumer;

  try {
    Database db(pg);
    std::unique_ptr<inbox::Source> src;
    if (broker == "rabbitmq") {
      o.url = o.url.empty() ? env_or("OUTBOX_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/") : o.url;
      if (o.queue.empty()) throw std::runtime_error("--broker rabbitmq needs --queue");
      src = inbox::open_rabbitmq(o);
    } else if (broker == "nats") {
      o.url = o.url.empty() ? env_or("OUTBOX_NATS_URL", "nats://127.0.0.1:4222") : o.url;
      if (o.stream.empty() || o.subject.empty()) throw std::runtime_error("--broker nats needs --stream and --subject");
      src = inbox::open_nats(o);
    } else {
      o.url = o.url.empty() ? env_or("OUTBOX_REDIS_URL", "redis://127.0.0.1:6379") : o.url;
      if (o.stream.empty()) throw std::runtime_error("--broker redis needs --stream");
      src = inbox::open_redis(o);
    }
    std::cerr << "inbox-consumer: consuming from " << broker << " as " << consumer << std::endl;

    long applied = 0, skipped = 0, idle_ms = 0;
    const int poll_ms = 200;
    for (;;) {
      inbox::Delivery d;
      if (!src->next(d, poll_ms)) {
        idle_ms += poll_ms;
        if (idle_exit_ms > 0 && idle_ms >= idle_exit_ms) break;
        continue;
      }
      idle_ms = 0;
      if (!is_uuid(d.id)) {  // not an outbox event: nothing to de-duplicate on
        std::cerr << "inbox-consumer: a message without a UUID id at " << d.where << ": acknowledged, not applied"
                  << std::endl;
        src->ack();
        continue;
      }
      bool first = db.apply_once(consumer, d, apply_sql);
      std::cout << (first ? "applied " : "skipped ") << d.id << " " << d.where << std::endl;
      if (first && ++applied == crash_before_ack) {
        std::cout << "crash after commit, before ack: " << d.id << std::endl;
        std::raise(SIGKILL);
      }
      if (!first) ++skipped;
      src->ack();
    }
    std::cerr << "inbox-consumer: idle; applied " << applied << ", skipped " << skipped << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "inbox-consumer: " << e.what() << std::endl;
    return 1;
  }
}
