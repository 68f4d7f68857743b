// The Redis Streams sink: each event becomes one entry (XADD) of a stream named by a template,
// through a Lua script that makes re-sends idempotent (sinks/redis/message.h), pipelined on one
// connection that this class owns (sinks/redis/connection.h: non-blocking TCP, TLS for rediss://).
// The script's reply is the confirm: Redis answers in order, so replies are matched to tickets
// first in, first out. Durability is Redis's: with appendonly off (or appendfsync everysec) a
// confirmed entry can be lost by a Redis restart (or a host crash); open() and check() say so.
//
// Supported: a single Redis node, or a primary with its replicas/sentinel-managed failover given
// as several URLs (tried in order; a READONLY reply breaks the connection so the next address is
// tried). Not Redis Cluster: the script's two keys (de-duplication key, stream) would need one
// hash slot.
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sinks/address_rotation.h"
#include "sinks/redis/connection.h"
#include "delivery/sink.h"

struct redisReader;

namespace outbox {

class RedisSink : public Sink {
 public:
  struct Options {
    // redis://[user:pass@]host:port[/db] or rediss://; several = tried in order (from the last one
    // that worked, or the one after the last one that failed).
    std::vector<std::string> urls;
    // Placeholders {aggregate_type} {event_type} {routing_key} {exchange}; a null value gives "_".
    std::string stream = "outbox:{aggregate_type}";
    std::uint64_t maxlen = 0;           // 0 = unbounded; else XADD MAXLEN ~ maxlen
    std::int64_t dedup_window_ms = 120000;  // 0 = no de-duplication (plain XADD)
    RedisTls tls;
    int connect_timeout_ms = 10000;  // per address: TCP, TLS and each start-up request
    // Requests in flight and no reply for this long: the connection counts as lost. 0 = never.
    int ack_timeout_ms = 30000;
    std::string name = "outbox-relay";  // CLIENT SETNAME
    // Above this many bytes waiting to be written, writable() is false (publish still takes more).
    std::size_t max_output_bytes = 64u << 20;
    std::string cloudevents_source;  // "" = no CloudEvents attributes (--cloudevents-source)
  };

  // Throws SinkError(Config) for a bad URL or stream name template.
  explicit RedisSink(Options o);
  ~RedisSink() override;
  RedisSink(const RedisSink&) = delete;
  RedisSink& operator=(const RedisSink&) = delete;

  const char* name() const override { return "redis"; }
  const char* display_name() const override { return "Redis"; }

  // Connects, logs in (AUTH: WRONGPASS/NOPERM => Auth), SELECT db, CLIENT SETNAME, loads the
  // de-duplication script (SCRIPT LOAD) and logs the durability settings (CONFIG GET appendonly,
  // appendfsync; a warning when appendonly is off; a note when CONFIG is not allowed). Redis
  // creates streams on the first XADD, so `started` changes nothing here.
  void open(bool started) override;
  // Connects and logs in, then reports the durability settings, the stream name template, the
  // de-duplication and MAXLEN settings; creates and loads nothing.
  std::vector<std::string> check() override;
  void close() override;
  bool connected() const override { return conn_.open(); }
  std::string node() const override { return connected() ? node_ : std::string(); }

  // Encodes the event's EVALSHA (or XADD) into the output buffer and writes what the socket takes
  // now (unless inside batch(true)). Returns the reason when the event can never be published
  // (an empty or over-long stream name, a reserved header name); throws SinkError when the
  // connection is broken or not open. De-duplication is keyed by the event id ("outbox:dedup:" +
  // id, kept dedup_window_ms: about 100 bytes of Redis memory per event of the window): ids must
  // be unique (the outbox table's default makes them so); an event without an id is a plain XADD.
  std::optional<std::string> publish(std::uint64_t ticket, const Event& ev) override;

  int socket() const override { return conn_.fd(); }
  short poll_events() const override;
  // Reads what is available, emits Confirmed (duplicate for the de-duplication marker) or
  // Refused(Nacked, the error text) per reply, in order; an EVALSHA answered NOSCRIPT is sent again
  // as EVAL (its outcome comes later, after the replies pipelined behind it). EOF, a read error, a
  // READONLY/LOADING/MASTERDOWN-like reply or the ack timeout make broken() true after the
  // outcomes before it.
  void poll(std::vector<BrokerOutcome>& out) override;
  bool broken() const override { return !broken_reason_.empty(); }
  const std::string& broken_reason() const override { return broken_reason_; }

  bool has_buffered() const override { return conn_.has_buffered(); }
  bool pending() const override { return out_off_ < out_.size(); }
  void send_pending() override;
  bool writable() const override { return out_.size() - out_off_ < o_.max_output_bytes; }
  void batch(bool on) override;
  int tick_ms() const override;

  // Requests written or waiting to be written whose replies have not arrived.
  std::size_t in_flight() const { return inflight_.size(); }
  const Options& options() const { return o_; }

 private:
  struct InFlight {
    std::uint64_t ticket = 0;
    // The script's arguments (numkeys, keys, ARGV), kept for a re-send as EVAL on NOSCRIPT.
    std::vector<std::string> args;
    bool eval = false;  // already sent with EVAL
    std::string stream;  // named by a refusal
  };
  void connect_any(bool load_script);
  void connect_one(const RedisUrl& u, bool load_script);
  std::vector<std::string> durability_report(std::chrono::steady_clock::time_point deadline, bool log);
  void set_broken(const std::string& why);
  void check_ack_timeout();

  Options o_;
  std::vector<RedisUrl> urls_;
  AddressRotation rotation_;
  std::size_t current_ = 0;
  RedisConnection conn_;
  redisReader* reader_ = nullptr;
  std::string node_;
  std::string sha_;
  std::string out_;            // encoded requests not yet written, from out_off_
  std::size_t out_off_ = 0;
  std::deque<InFlight> inflight_;
  bool batching_ = false;
  std::string broken_reason_;
  // When the oldest request's wait began or a reply last arrived (for ack_timeout_ms).
  std::chrono::steady_clock::time_point progress_at_{};
};

}  // namespace outbox
