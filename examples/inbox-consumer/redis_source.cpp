// Redis Streams: a consumer group. An entry read but not acknowledged (XACK) stays in the
// member's pending list; after a restart the member reads its pending entries first (ID 0), then
// new ones (ID >).
#include <hiredis/hiredis.h>

#include <deque>
#include <stdexcept>
#include <vector>

#include "source.h"

namespace inbox {
namespace {

struct Entry {
  std::string entry_id, id, body;
};

class RedisSource : public Source {
 public:
  explicit RedisSource(const SourceOptions& o) : key_(o.stream), group_(o.group), member_(o.member), count_(o.prefetch) {
    // redis://host:port only (no password or database in this example)
    std::string hostport = o.url.substr(o.url.find("://") == std::string::npos ? 0 : o.url.find("://") + 3);
    hostport = hostport.substr(0, hostport.find('/'));
    auto colon = hostport.rfind(':');
    int port = colon == std::string::npos ? 6379 : std::stoi(hostport.substr(colon + 1));
    c_ = redisConnect(hostport.substr(0, colon).c_str(), port);
    if (!c_ || c_->err) throw std::runtime_error("cannot connect to Redis at " + o.url);
    redisReply* r = command({"XGROUP", "CREATE", key_, group_, "0", "MKSTREAM"});
    bool exists = r->type == REDIS_REPLY_ERROR && std::string(r->str).rfind("BUSYGROUP", 0) == 0;
    bool failed = r->type == REDIS_REPLY_ERROR && !exists;
    std::string err = failed ? r->str : "";
    freeReplyObject(r);
    if (failed) throw std::runtime_error("Redis XGROUP CREATE " + key_ + " " + group_ + ": " + err);
  }
  ~RedisSource() override { redisFree(c_); }

  bool next(Delivery& d, int timeout_ms) override {
    if (buffer_.empty()) {
      bool was_pending = reading_pending_;
      read(timeout_ms);
      if (buffer_.empty() && was_pending) read(timeout_ms);  // pending done: the new entries
    }
    if (buffer_.empty()) return false;
    current_ = buffer_.front();
    buffer_.pop_front();
    d.id = current_.id;
    d.body = current_.body;
    d.where = key_ + " " + current_.entry_id + (reading_pending_ ? " (pending)" : "");
    return true;
  }

  void ack() override {
    redisReply* r = command({"XACK", key_, group_, current_.entry_id});
    bool ok = r->type == REDIS_REPLY_INTEGER;
    freeReplyObject(r);
    if (!ok) throw std::runtime_error("Redis XACK failed");
  }

 private:
  redisReply* command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (!r) throw std::runtime_error("Redis connection lost");
    return r;
  }

  // First this member's pending entries (delivered before, never acknowledged), from the
  // beginning of its pending list; then new entries, blocking up to timeout_ms.
  void read(int timeout_ms) {
    std::vector<std::string> args{"XREADGROUP", "GROUP", group_, member_, "COUNT", std::to_string(count_)};
    if (!reading_pending_) {
      args.insert(args.end(), {"BLOCK", std::to_string(timeout_ms)});
    }
    args.insert(args.end(), {"STREAMS", key_, reading_pending_ ? pending_from_ : ">"});
    redisReply* r = command(args);
    if (r->type == REDIS_REPLY_ERROR) {
      std::string err = r->str;
      freeReplyObject(r);
      throw std::runtime_error("Redis XREADGROUP: " + err);
    }
    size_t got = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
      redisReply* entries = r->element[0]->element[1];
      for (size_t i = 0; i < entries->elements; ++i, ++got) {
        redisReply* e = entries->element[i];
        Entry en;
        en.entry_id.assign(e->element[0]->str, e->element[0]->len);
        redisReply* kv = e->element[1];  // nil for an entry deleted while pending
        for (size_t k = 0; kv && kv->type == REDIS_REPLY_ARRAY && k + 1 < kv->elements; k += 2) {
          std::string f(kv->element[k]->str, kv->element[k]->len), v(kv->element[k + 1]->str, kv->element[k + 1]->len);
          if (f == "id") en.id = v;
          else if (f == "payload") en.body = v;
        }
        pending_from_ = en.entry_id;
        buffer_.push_back(std::move(en));
      }
    }
    freeReplyObject(r);
    if (reading_pending_ && got == 0) reading_pending_ = false;  // the pending list is done
  }

  redisContext* c_ = nullptr;
  std::string key_, group_, member_;
  int count_;
  bool reading_pending_ = true;
  std::string pending_from_ = "0";
  std::deque<Entry> buffer_;
  Entry current_;
};

}  // namespace

std::unique_ptr<Source> open_redis(const SourceOptions& o) { return std::make_unique<RedisSource>(o); }

}  // namespace inbox
