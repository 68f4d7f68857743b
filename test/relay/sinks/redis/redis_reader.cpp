#include "sinks/redis/redis_reader.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "sinks/redis/connection.h"
#include "sinks/redis/message.h"

namespace outbox::test {

namespace {

struct Free {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, Free>;

Reply run(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> a;
  std::vector<size_t> l;
  for (const auto& s : argv) {
    a.push_back(s.data());
    l.push_back(s.size());
  }
  void* r = redisCommandArgv(c, static_cast<int>(a.size()), a.data(), l.data());
  if (!r) throw std::runtime_error("redis: " + std::string(c->errstr) + " (" + argv[0] + ")");
  Reply rep(static_cast<redisReply*>(r));
  if (rep->type == REDIS_REPLY_ERROR) throw std::runtime_error("redis " + argv[0] + ": " + std::string(rep->str, rep->len));
  return rep;
}

std::string str(const redisReply* r) { return std::string(r->str, r->len); }

}  // namespace

RedisReader::RedisReader(const std::string& url) {
  RedisUrl u = parse_redis_url(url);
  if (u.tls) throw std::runtime_error("RedisReader: plain redis:// only");
  timeval tv{10, 0};
  c_ = redisConnectWithTimeout(u.host.c_str(), u.port, tv);
  if (!c_ || c_->err) {
    std::string e = c_ ? c_->errstr : "out of memory";
    if (c_) redisFree(c_);
    c_ = nullptr;
    throw std::runtime_error("RedisReader: cannot connect to " + u.masked + ": " + e);
  }
  redisSetTimeout(c_, tv);
  if (u.password) {
    std::vector<std::string> a{"AUTH"};
    if (u.user) a.push_back(*u.user);
    a.push_back(*u.password);
    run(c_, a);
  }
  if (u.db) run(c_, {"SELECT", std::to_string(u.db)});
}

RedisReader::~RedisReader() {
  if (c_) redisFree(c_);
}

std::vector<StreamEntry> RedisReader::entries(const std::string& stream) {
  std::vector<StreamEntry> out;
  std::string start = "-";
  for (;;) {
    Reply r = run(c_, {"XRANGE", stream, start, "+", "COUNT", "1000"});
    if (r->elements == 0) break;
    for (std::size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      StreamEntry se;
      se.id = str(e->element[0]);
      const redisReply* f = e->element[1];
      for (std::size_t k = 0; k + 1 < f->elements; k += 2) {
        se.order.push_back(str(f->element[k]));
        se.fields[str(f->element[k])] = str(f->element[k + 1]);
      }
      out.push_back(std::move(se));
    }
    if (r->elements < 1000) break;
    start = "(" + out.back().id;  // exclusive range start (Redis 6.2+)
  }
  return out;
}

std::vector<std::string> RedisReader::streams(const std::string& pattern) {
  std::vector<std::string> out;
  std::string cursor = "0";
  do {
    Reply r = run(c_, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream"});
    cursor = str(r->element[0]);
    for (std::size_t i = 0; i < r->element[1]->elements; ++i) out.push_back(str(r->element[1]->element[i]));
  } while (cursor != "0");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::int64_t RedisReader::length(const std::string& stream) { return run(c_, {"XLEN", stream})->integer; }

std::string RedisReader::command(const std::vector<std::string>& argv) {
  Reply r = run(c_, argv);
  return reply_text(r.get());
}

}  // namespace outbox::test
