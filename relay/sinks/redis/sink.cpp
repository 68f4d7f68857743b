#include "sinks/redis/sink.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "delivery/timestamp.h"
#include "sinks/redis/message.h"

namespace outbox {

namespace {

using Clock = std::chrono::steady_clock;

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

bool is_error(const RedisReplyPtr& r) { return r && r->type == REDIS_REPLY_ERROR; }

std::string err_text(const RedisReplyPtr& r) { return reply_text(r.get()); }

// An error reply to a start-up request that means the login is not good enough.
bool auth_refusal(const std::string& e) {
  return starts_with(e, "WRONGPASS") || starts_with(e, "NOPERM") || starts_with(e, "NOAUTH") ||
         starts_with(e, "ERR invalid password") || starts_with(e, "ERR invalid username-password");
}

}  // namespace

RedisSink::RedisSink(Options o) : o_(std::move(o)), rotation_(1) {
  if (o_.urls.empty()) throw SinkError("no Redis address given -- fix: give a redis:// URL", SinkErrorKind::Config);
  for (std::size_t i = 0; i < o_.urls.size(); ++i) {
    try {
      urls_.push_back(parse_redis_url(o_.urls[i]));
    } catch (const SinkError& e) {
      if (o_.urls.size() == 1) throw;
      throw SinkError("URL " + std::to_string(i + 1) + " of " + std::to_string(o_.urls.size()) + ": " + e.what(),
                      SinkErrorKind::Config);
    }
  }
  rotation_ = AddressRotation(urls_.size());
  if (auto p = stream_template_problem(o_.stream)) throw SinkError(*p, SinkErrorKind::Config);
  if (o_.dedup_window_ms < 0)
    throw SinkError("the Redis de-duplication window must be 0 (off) or more milliseconds", SinkErrorKind::Config);
  reader_ = redisReaderCreate();
}

RedisSink::~RedisSink() {
  close();
  if (reader_) redisReaderFree(reader_);
}

void RedisSink::close() {
  conn_.close();
  out_.clear();
  out_off_ = 0;
  inflight_.clear();
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
}

void RedisSink::open(bool /*started*/) { connect_any(true); }

std::vector<std::string> RedisSink::check() {
  std::vector<std::string> lines;
  connect_any(false);
  lines.push_back("Redis at " + node_ + ": connected and logged in");
  auto more = durability_report(Clock::now() + std::chrono::milliseconds(o_.connect_timeout_ms), false);
  lines.insert(lines.end(), more.begin(), more.end());
  lines.push_back("Redis stream name template \"" + o_.stream +
                  "\" (streams are created by the first XADD; a null value gives \"_\")");
  lines.push_back(o_.dedup_window_ms > 0
                      ? "Redis de-duplication: keys " + std::string(kDedupKeyPrefix) + "<event id> kept " +
                            std::to_string(o_.dedup_window_ms) + " ms (Lua script, loaded at start)"
                      : std::string("Redis de-duplication: off (plain XADD; a re-sent event is added again)"));
  lines.push_back(o_.maxlen > 0 ? "Redis streams trimmed to about " + std::to_string(o_.maxlen) + " entries (MAXLEN ~)"
                                : std::string("Redis streams not trimmed (maxlen 0)"));
  close();
  return lines;
}

void RedisSink::connect_any(bool load_script) {
  close();
  broken_reason_.clear();
  std::size_t i = connect_in_turn(rotation_, "Redis", [&](std::size_t k) { connect_one(urls_[k], load_script); },
                                  [&] { close(); });
  current_ = i;
  if (urls_.size() > 1)
    spdlog::info("connected to Redis node {} of {} at {}", i + 1, urls_.size(), node_);
  else
    spdlog::info("connected to Redis at {}", node_);
}

void RedisSink::connect_one(const RedisUrl& u, bool load_script) {
  node_ = u.masked;
  conn_.connect(u, o_.tls, o_.connect_timeout_ms);
  auto deadline = [&] { return Clock::now() + std::chrono::milliseconds(o_.connect_timeout_ms); };
  auto fail_auth = [&](const std::string& what, const std::string& e) {
    throw SinkError("Redis at " + node_ + " refused " + what + ": " + e +
                        " -- fix: the user and password of the URL (redis://user:password@host), and an ACL that "
                        "allows EVALSHA, EVAL, XADD, SET, GET, DEL (and SCRIPT LOAD, SELECT, CLIENT SETNAME)",
                    SinkErrorKind::Auth);
  };
  if (u.password) {
    std::vector<std::string> a{"AUTH"};
    if (u.user) a.push_back(*u.user);
    a.push_back(*u.password);
    auto r = conn_.command(a, deadline());
    if (is_error(r)) {
      std::string e = err_text(r);
      if (e.find("without any password configured") != std::string::npos)
        spdlog::warn("Redis at {} has no password set but the URL gives one: {}", node_, e);
      else if (auth_refusal(e) || starts_with(e, "ERR"))
        fail_auth("the login", e);
      else
        throw SinkError("Redis at " + node_ + ": AUTH failed: " + e);
    }
  }
  if (u.db != 0) {
    auto r = conn_.command({"SELECT", std::to_string(u.db)}, deadline());
    if (is_error(r)) {
      std::string e = err_text(r);
      if (auth_refusal(e)) fail_auth("SELECT", e);
      throw SinkError("Redis at " + node_ + ": SELECT " + std::to_string(u.db) + " failed: " + e +
                          " -- fix: a database number the server has (its databases setting)",
                      SinkErrorKind::Config);
    }
  }
  if (!o_.name.empty()) {
    auto r = conn_.command({"CLIENT", "SETNAME", o_.name}, deadline());
    if (is_error(r)) {
      std::string e = err_text(r);
      if (starts_with(e, "NOAUTH")) fail_auth("the connection without a password", e);
      spdlog::warn("Redis at {}: CLIENT SETNAME {} refused ({}); the connection stays unnamed", node_, o_.name, e);
    }
  }
  sha_.clear();
  if (load_script && o_.dedup_window_ms > 0) {
    auto r = conn_.command({"SCRIPT", "LOAD", kDedupScript}, deadline());
    if (r && r->type == REDIS_REPLY_STRING) {
      sha_.assign(r->str, r->len);
    } else {
      std::string e = err_text(r);
      if (starts_with(e, "NOAUTH")) fail_auth("the connection without a password", e);
      // Not fatal: every publish then sends the script itself (EVAL), which its ACL may allow.
      spdlog::warn("Redis at {}: SCRIPT LOAD refused ({}); publishing with EVAL (the script in every request)", node_,
                   e);
    }
  }
  if (load_script) {
    for (const auto& line : durability_report(deadline(), true)) (void)line;
  }
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  out_.clear();
  out_off_ = 0;
  inflight_.clear();
}

std::vector<std::string> RedisSink::durability_report(Clock::time_point deadline, bool log) {
  std::vector<std::string> lines;
  auto get = [&](const char* key, std::string& value, std::string& err) {
    auto r = conn_.command({"CONFIG", "GET", key}, deadline);
    if (is_error(r)) {
      err = err_text(r);
      return false;
    }
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
      value.assign(r->element[1]->str, r->element[1]->len);
      return true;
    }
    err = "unexpected reply " + err_text(r);
    return false;
  };
  std::string aof, fsync, err;
  if (!get("appendonly", aof, err) || !get("appendfsync", fsync, err)) {
    std::string l = "Redis at " + node_ + ": durability could not be checked (CONFIG GET refused: " + err +
                    "); make sure appendonly is yes, else a Redis restart loses confirmed events";
    if (log) spdlog::warn("{}", l);
    lines.push_back(l);
    return lines;
  }
  if (aof != "yes") {
    std::string l = "Redis at " + node_ + ": appendonly is " + aof +
                    ": a Redis restart loses confirmed events (the relay has acknowledged them to PostgreSQL) -- "
                    "fix: appendonly yes, appendfsync always (or everysec: up to a second lost on a host crash)";
    if (log) spdlog::warn("{}", l);
    lines.push_back(l);
  } else {
    std::string l = "Redis at " + node_ + ": appendonly yes, appendfsync " + fsync +
                    (fsync == "always" ? std::string(" (every confirmed event is on disk)")
                                       : std::string(": a crash of the host can lose the last confirmed events (" +
                                                     std::string(fsync == "everysec" ? "about a second" : "what the OS had not written") +
                                                     ")"));
    if (log) {
      if (fsync == "always") spdlog::info("{}", l);
      else spdlog::warn("{}", l);
    }
    lines.push_back(l);
  }
  return lines;
}

void RedisSink::set_broken(const std::string& why) {
  if (!broken_reason_.empty()) return;
  broken_reason_ = why;
  spdlog::warn("Redis connection to {} lost: {}", node_, why);
  if (urls_.size() > 1) rotation_.failed(current_);
}

std::optional<std::string> RedisSink::publish(std::uint64_t ticket, const Event& ev) {
  if (broken()) throw SinkError("Redis at " + node_ + ": " + broken_reason_);
  if (!conn_.open()) throw SinkError("not connected to Redis");
  auto built = build_entry(o_.stream, ev, o_.cloudevents_source, wall_us());
  if (!built.entry) return built.error;
  InFlight f;
  f.ticket = ticket;
  f.stream = built.entry->stream;
  if (inflight_.empty()) progress_at_ = Clock::now();
  // Without an event id there is no key to de-duplicate by: a plain XADD.
  if (o_.dedup_window_ms > 0 && !ev.id.empty()) {
    f.args = dedup_args(std::move(*built.entry), o_.dedup_window_ms, o_.maxlen, ev.id);
    f.eval = sha_.empty();
    if (f.eval) append_redis_command(out_, {"EVAL", kDedupScript}, f.args);
    else append_redis_command(out_, {"EVALSHA", sha_}, f.args);
  } else {
    append_redis_command(out_, {}, xadd_argv(std::move(*built.entry), o_.maxlen));
  }
  inflight_.push_back(std::move(f));
  if (!batching_) send_pending();
  return std::nullopt;
}

void RedisSink::send_pending() {
  if (!conn_.open() || broken()) return;
  while (out_off_ < out_.size()) {
    long n = conn_.write_some(out_.data() + out_off_, out_.size() - out_off_);
    if (n < 0) {
      set_broken(conn_.error() + " with " + std::to_string(inflight_.size()) + " requests in flight");
      return;
    }
    if (n == 0) break;
    out_off_ += static_cast<std::size_t>(n);
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > (1u << 20) && out_off_ > out_.size() / 2) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
}

void RedisSink::batch(bool on) {
  batching_ = on;
  if (!on) send_pending();
}

short RedisSink::poll_events() const {
  return static_cast<short>(POLLIN | (pending() || conn_.want_write() ? POLLOUT : 0));
}

int RedisSink::tick_ms() const {
  if (o_.ack_timeout_ms <= 0) return 1000;
  return std::max(5, std::min(1000, o_.ack_timeout_ms / 4));
}

void RedisSink::check_ack_timeout() {
  if (o_.ack_timeout_ms <= 0 || inflight_.empty() || broken()) return;
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - progress_at_).count();
  if (waited >= o_.ack_timeout_ms)
    set_broken("no reply for " + std::to_string(waited) + " ms with " + std::to_string(inflight_.size()) +
               " requests in flight (ack timeout " + std::to_string(o_.ack_timeout_ms) + " ms)");
}

void RedisSink::poll(std::vector<BrokerOutcome>& out) {
  if (!conn_.open() || broken()) return;
  std::string read_error;
  char buf[65536];
  for (;;) {
    long n = conn_.read_some(buf, sizeof buf);
    if (n < 0) {
      read_error = conn_.error();
      break;
    }
    if (n == 0) break;
    if (redisReaderFeed(reader_, buf, static_cast<std::size_t>(n)) != REDIS_OK) {
      read_error = std::string("protocol error: ") + reader_->errstr;
      break;
    }
  }
  bool resent = false;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
      set_broken(std::string("protocol error: ") + reader_->errstr);
      break;
    }
    if (!raw) break;
    RedisReplyPtr r(static_cast<redisReply*>(raw));
    if (inflight_.empty()) {
      set_broken("a reply with no request in flight: " + reply_text(r.get()));
      break;
    }
    progress_at_ = Clock::now();
    InFlight f = std::move(inflight_.front());
    inflight_.pop_front();
    ReplyMeaning m = classify_reply(r.get());
    if (m.kind == ReplyMeaning::Kind::NoScript && !f.eval && !f.args.empty()) {
      // The script cache was flushed (SCRIPT FLUSH, a restart behind a proxy, a failover): EVAL
      // sends the script itself and caches it again for the EVALSHAs that follow.
      f.eval = true;
      if (inflight_.empty()) progress_at_ = Clock::now();
      append_redis_command(out_, {"EVAL", kDedupScript}, f.args);
      inflight_.push_back(std::move(f));
      resent = true;
      continue;
    }
    if (m.kind == ReplyMeaning::Kind::Broken) {
      // Put it back: the request is as lost as those behind it (the delivery unit sends them again).
      inflight_.push_front(std::move(f));
      set_broken("Redis answered " + m.text);
      break;
    }
    BrokerOutcome o;
    o.ticket = f.ticket;
    if (m.kind == ReplyMeaning::Kind::Confirmed) {
      o.kind = BrokerOutcome::Kind::Confirmed;
      o.duplicate = m.duplicate;
    } else {
      o.kind = BrokerOutcome::Kind::Refused;
      o.why = Refusal::Nacked;
      o.reply = m.text;
      o.refusal = redis_refusal(f.stream, m.text);
    }
    out.push_back(std::move(o));
  }
  if (!read_error.empty())
    set_broken(read_error + (inflight_.empty() ? std::string()
                                               : " with " + std::to_string(inflight_.size()) + " requests in flight"));
  if (resent) send_pending();
  check_ack_timeout();
}

}  // namespace outbox
