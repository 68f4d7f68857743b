// The broker's own limit for bench/relay, Redis edition: pipeline COUNT entries of a given
// payload size into one stream, at most WINDOW in flight, exactly as the Redis sink sends them
// (the same fields and x-outbox-* metadata, the same de-duplication script with EVALSHA, or a
// plain XADD with --plain), wait for every reply and print "<count> <seconds> <rate> <cpu us per
// message>". With RATE, paced: RATE entries a second, each stamped with its send time
// (bare_pacing.h). Plain TCP (redis://), no PostgreSQL.
//   redis-bare-publisher [--plain] URL STREAM COUNT SIZE [WINDOW [RATE]]
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bare_pacing.h"
#include "sinks/redis/connection.h"
#include "sinks/redis/message.h"

using namespace outbox;

namespace {

redisReply* run(redisContext* c, const std::vector<std::string>& argv) {
  std::string cmd = redis_format(argv);
  if (redisAppendFormattedCommand(c, cmd.data(), cmd.size()) != REDIS_OK) return nullptr;
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK) return nullptr;
  return static_cast<redisReply*>(r);
}

}  // namespace

int main(int argc, char** argv) {
  bool plain = false;
  std::vector<std::string> a;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--plain") == 0) plain = true;
    else a.push_back(argv[i]);
  }
  if (a.size() < 4) {
    std::fprintf(stderr, "usage: redis-bare-publisher [--plain] URL STREAM COUNT SIZE [WINDOW [RATE]]\n");
    return 2;
  }
  RedisUrl u;
  try {
    u = parse_redis_url(a[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  if (u.tls) {
    std::fprintf(stderr, "redis-bare-publisher: plain redis:// only\n");
    return 2;
  }
  std::string stream = a[1];
  long count = std::atol(a[2].c_str());
  long size = std::atol(a[3].c_str());
  long window = a.size() > 4 ? std::atol(a[4].c_str()) : 1000;
  bench::Pacing pace;
  pace.rate = a.size() > 5 ? std::atol(a[5].c_str()) : 0;
  redisContext* c = redisConnect(u.host.c_str(), u.port);
  if (!c || c->err) {
    std::fprintf(stderr, "cannot connect: %s\n", c ? c->errstr : "?");
    return 1;
  }
  auto check = [&](redisReply* r, const char* what) {
    if (!r || r->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "%s: %s\n", what, r ? r->str : c->errstr);
      std::exit(1);
    }
    return r;
  };
  if (u.password) {
    std::vector<std::string> av{"AUTH"};
    if (u.user) av.push_back(*u.user);
    av.push_back(*u.password);
    freeReplyObject(check(run(c, av), "AUTH"));
  }
  if (u.db) freeReplyObject(check(run(c, {"SELECT", std::to_string(u.db)}), "SELECT"));
  redisReply* l = check(run(c, {"SCRIPT", "LOAD", kDedupScript}), "SCRIPT LOAD");
  std::string sha(l->str, l->len);
  freeReplyObject(l);

  // The event the relay would publish (as amqp-bare-publisher's message: same ids and metadata).
  Event ev;
  ev.aggregate_type = "bench";
  ev.aggregate_id = "1234567";
  ev.event_type = "order_created";
  ev.payload = "{\"pad\":\"" + std::string(size > 12 ? static_cast<size_t>(size - 12) : 0, 'x') + "\"}";
  ev.lsn = 0x1A2B3C4D;
  ev.xid = 123456;
  ev.commit_time = "2026-11-23 05:17:57.590859+00";
  // A fresh id per run and event: the de-duplication keys do not collide with an earlier run.
  std::string run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());

  long sent = 0, replied = 0;
  auto t0 = std::chrono::steady_clock::now();
  pace.start = t0;
  while (replied < count) {
    // Refill once half the window came back, not per reply: one write carries many commands,
    // as the relay's turn does (one reply, one command per write would make Redis run, and with
    // appendfsync always fsync, once per command).
    bool refill = pace.on() ? sent == replied : sent - replied <= window / 2;
    while (refill && sent < count && sent - replied < window) {
      if (pace.on()) {  // one at a time, when due
        std::this_thread::sleep_until(pace.due(sent));
        ev.commit_time = bench::timestamp_now();
        refill = false;
      }
      ev.id = run_id + "-" + std::to_string(sent);
      auto e = build_entry(stream, ev);
      if (!e.entry) {
        std::fprintf(stderr, "%s\n", e.error.c_str());
        return 2;
      }
      std::vector<std::string> av;
      if (plain) {
        av = xadd_argv(*e.entry, 0);
      } else {
        av = {"EVALSHA", sha};
        auto args = dedup_args(*e.entry, 120000, 0, ev.id);
        av.insert(av.end(), args.begin(), args.end());
      }
      std::string cmd = redis_format(av);
      if (redisAppendFormattedCommand(c, cmd.data(), cmd.size()) != REDIS_OK) return 1;
      ++sent;
    }
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK) {
      std::fprintf(stderr, "connection: %s\n", c->errstr);
      return 1;
    }
    auto* rep = static_cast<redisReply*>(r);
    if (rep->type == REDIS_REPLY_ERROR) {
      std::fprintf(stderr, "refused: %s\n", rep->str);
      return 1;
    }
    freeReplyObject(rep);
    ++replied;
  }
  bench::print_result(count, t0);
  redisFree(c);
  return 0;
}
