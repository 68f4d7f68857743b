// outbox-stream-tail: outbox-tail for the other brokers. Reads a JetStream stream (an ordered
// consumer, nothing left behind) or a Redis stream (XREAD BLOCK) and prints each event as one JSON
// line, each broker's message as it holds it: n, received_us (the consumer's clock, for
// commit-to-delivery latency), then NATS: subject, headers (name -> text); Redis: stream,
// entry_id, fields (name -> text, the field headers as the JSON object it holds); last the body
// (the data, or the field payload). For the demo, the benchmarks and humans; plain TCP only (the
// relay's TLS is tested by the relay's tests).
#include <hiredis/hiredis.h>
#include <nats/nats.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using ojson = nlohmann::ordered_json;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A body that is JSON is embedded as JSON, anything else as a string.
ojson body_of(const std::string& text) {
  ojson b = ojson::parse(text, nullptr, false);
  return b.is_discarded() ? ojson(text) : b;
}

struct Limits {
  long count = 0;  // 0 = no limit
  long idle_ms = 0;  // 0 = wait forever
  bool quiet = false;
};

int tail_nats(const std::string& url, const std::string& stream, const std::string& subject, bool only_new,
              const Limits& lim) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* sub = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) {
    std::cerr << "outbox-stream-tail: cannot connect to " << url << ": " << nats_GetLastError(nullptr) << "\n";
    return 1;
  }
  natsConnection_JetStream(&js, nc, nullptr);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = only_new ? js_DeliverNew : js_DeliverAll;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  std::string subj = subject.empty() ? ">" : subject;
  if (js_SubscribeSync(&sub, js, subj.c_str(), nullptr, &so, &jerr) != NATS_OK) {
    std::cerr << "outbox-stream-tail: cannot read stream " << stream << ": " << nats_GetLastError(nullptr) << "\n";
    return 1;
  }
  long n = 0;
  while (lim.count == 0 || n < lim.count) {
    natsMsg* m = nullptr;
    natsStatus st = natsSubscription_NextMsg(&m, sub, lim.idle_ms > 0 ? lim.idle_ms : 3600 * 1000);
    if (st == NATS_TIMEOUT) {
      if (lim.idle_ms > 0) break;
      continue;
    }
    if (st != NATS_OK) break;
    std::int64_t t = now_us();
    ++n;
    if (!lim.quiet) {
      ojson line;
      line["n"] = n;
      line["received_us"] = t;
      line["subject"] = natsMsg_GetSubject(m);
      ojson h = ojson::object();
      const char** keys = nullptr;
      int count = 0;
      if (natsMsgHeader_Keys(m, &keys, &count) == NATS_OK) {
        for (int i = 0; i < count; ++i) {
          const char* v = nullptr;
          if (natsMsgHeader_Get(m, keys[i], &v) == NATS_OK && v) h[keys[i]] = v;
        }
        free(keys);
      }
      line["headers"] = h;
      line["body"] = body_of(std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))));
      std::cout << dump(line) << "\n" << std::flush;
    }
    natsMsg_Destroy(m);
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return 0;
}

int tail_redis(const std::string& url, const std::string& stream, bool only_new, const Limits& lim) {
  std::string rest = url.rfind("redis://", 0) == 0 ? url.substr(8) : url;
  std::string db;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string auth;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  auto colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  int port = colon == std::string::npos ? 6379 : std::stoi(rest.substr(colon + 1));
  redisContext* c = redisConnect(host.c_str(), port);
  if (!c || c->err) {
    std::cerr << "outbox-stream-tail: cannot connect to " << host << ":" << port << (c ? std::string(": ") + c->errstr : "")
              << "\n";
    return 1;
  }
  auto cmd = [&](std::initializer_list<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  };
  if (!auth.empty()) {
    auto colon2 = auth.find(':');
    redisReply* r = colon2 == std::string::npos || colon2 == 0 ? cmd({"AUTH", auth.substr(colon2 == 0 ? 1 : 0)})
                                                               : cmd({"AUTH", auth.substr(0, colon2), auth.substr(colon2 + 1)});
    if (r) freeReplyObject(r);
  }
  if (!db.empty()) {
    if (redisReply* r = cmd({"SELECT", db})) freeReplyObject(r);
  }
  std::string last = only_new ? "$" : "0";
  long n = 0;
  while (lim.count == 0 || n < lim.count) {
    redisReply* r = cmd({"XREAD", "COUNT", "1000", "BLOCK", std::to_string(lim.idle_ms > 0 ? lim.idle_ms : 0), "STREAMS",
                         stream, last});
    if (!r) break;
    if (r->type == REDIS_REPLY_NIL) {
      freeReplyObject(r);
      if (lim.idle_ms > 0) break;
      continue;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
      std::cerr << "outbox-stream-tail: XREAD: " << (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") << "\n";
      freeReplyObject(r);
      return 1;
    }
    std::int64_t t = now_us();
    redisReply* entries = r->element[0]->element[1];
    for (std::size_t i = 0; i < entries->elements && (lim.count == 0 || n < lim.count); ++i) {
      redisReply* e = entries->element[i];
      last.assign(e->element[0]->str, e->element[0]->len);
      ++n;
      if (lim.quiet) continue;
      ojson line;
      line["n"] = n;
      line["received_us"] = t;
      line["stream"] = stream;
      line["entry_id"] = last;
      ojson fields = ojson::object();
      ojson body;
      redisReply* kv = e->element[1];
      for (std::size_t k = 0; k + 1 < kv->elements; k += 2) {
        std::string key(kv->element[k]->str, kv->element[k]->len), val(kv->element[k + 1]->str, kv->element[k + 1]->len);
        if (key == "payload") {
          body = body_of(val);
        } else if (key == "headers") {
          // The relay writes the event's headers as one JSON object: shown as one, not as a string.
          ojson h = ojson::parse(val, nullptr, false);
          fields[key] = h.is_object() ? h : ojson(val);
        } else {
          fields[key] = val;
        }
      }
      line["fields"] = fields;
      line["body"] = body;
      std::cout << dump(line) << "\n";
    }
    std::cout << std::flush;
    freeReplyObject(r);
  }
  redisFree(c);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"outbox-stream-tail: print the events of a JetStream or Redis stream as JSON lines", "outbox-stream-tail"};
  std::string nats, redis, stream, subject;
  bool only_new = false;
  Limits lim;
  // A URL of its own, or the one the stack's env (and outbox-tail's habit) gives.
  auto* nats_opt = app.add_option("--nats", nats, "read NATS JetStream at URL nats://host:port (without URL: $OUTBOX_NATS_URL, else nats://127.0.0.1:4222)")
                       ->expected(0, 1);
  auto* redis_opt = app.add_option("--redis", redis, "read Redis at URL redis://[user:pass@]host:port[/db] (without URL: $OUTBOX_REDIS_URL, else redis://127.0.0.1:6379)")
                        ->expected(0, 1);
  app.add_option("--stream", stream, "JetStream stream name, or Redis stream key")->required();
  app.add_option("--subject", subject, "NATS only: subject filter (default every subject of the stream)");
  app.add_flag("--new", only_new, "only events added after the start (default: from the beginning)");
  app.add_option("--count", lim.count, "stop after this many events");
  app.add_option("--idle-ms", lim.idle_ms, "stop after this long without an event");
  app.add_flag("--quiet", lim.quiet, "print nothing (count only)");
  CLI11_PARSE(app, argc, argv);
  if ((nats_opt->count() > 0) == (redis_opt->count() > 0)) {
    std::cerr << "outbox-stream-tail: give exactly one of --nats [URL] and --redis [URL] (without URL: "
                 "$OUTBOX_NATS_URL or $OUTBOX_REDIS_URL)\n";
    return 2;
  }
  auto from_env = [](const char* var, const char* fallback) {
    const char* v = std::getenv(var);
    return std::string(v && *v ? v : fallback);
  };
  if (nats_opt->count() > 0 && nats.empty()) nats = from_env("OUTBOX_NATS_URL", "nats://127.0.0.1:4222");
  if (redis_opt->count() > 0 && redis.empty()) redis = from_env("OUTBOX_REDIS_URL", "redis://127.0.0.1:6379");
  return nats.empty() ? tail_redis(redis, stream, only_new, lim) : tail_nats(nats, stream, subject, only_new, lim);
}
