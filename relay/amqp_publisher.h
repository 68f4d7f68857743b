// The broker side: one rabbitmq-c connection, channel 1 in confirm mode for publishing,
// channel 2 for passive exchange checks and topology declaration. Frames are read without
// blocking (the event loop polls the socket); acks, nacks, returns and connection.blocked /
// unblocked are handed to the caller.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>

#include "config.h"
#include "event.h"

struct amqp_connection_state_t_;

namespace outbox {

struct AmqpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct AmqpCallbacks {
  std::function<void(std::uint64_t tag, bool multiple, bool nack)> on_confirm;
  // A mandatory message came back unroutable: its message_id and x-outbox-lsn header, the reply.
  std::function<void(const std::string& message_id, const std::string& lsn, const std::string& reply)> on_return;
  std::function<void(bool blocked, const std::string& reason)> on_blocked;
};

struct PublishSpec {
  std::string exchange, routing_key, app_id;
  // Non-empty: add CloudEvents attributes (binary content mode, AMQP binding: "cloudEvents:"
  // application properties) with this `source`.
  std::string cloudevents_source;
};

class AmqpPublisher {
 public:
  AmqpPublisher() = default;
  ~AmqpPublisher();
  AmqpPublisher(const AmqpPublisher&) = delete;
  AmqpPublisher& operator=(const AmqpPublisher&) = delete;

  // Connects, logs in, opens channel 1 in confirm mode. Throws AmqpError (message masked).
  struct Tls {
    std::string cacert, cert, key;  // PEM files; empty = system defaults / no client certificate
  };
  // `name` is shown by RabbitMQ as the connection name (e.g. "outbox-relay slot=outbox").
  void connect(const std::string& url, int heartbeat_s, const std::string& name = "outbox-relay",
               const Tls& tls = Tls{});
  void declare_topology(const Topology& t);
  void close();
  bool connected() const { return conn_ != nullptr; }
  int socket() const;

  // True if the exchange exists (passive declare on channel 2; positive answers cached).
  bool exchange_exists(const std::string& name);

  // basic.publish with mandatory=true and the DESIGN 5.3 properties. Throws AmqpError when the
  // connection is broken.
  void publish(const Event& ev, const PublishSpec& spec);

  // Reads and dispatches every frame available without blocking. Throws AmqpError when the
  // connection or channel closed.
  void poll(const AmqpCallbacks& cb);
  // Frames already buffered inside rabbitmq-c (poll() would not see the socket readable).
  bool has_buffered() const;
  // The socket can take more data now (poll POLLOUT, no wait).
  bool writable() const;
  // TCP_CORK around a batch of publishes: the kernel sends full segments instead of one or more
  // per frame (fewer packets and wake-ups on both sides); uncorking sends what is pending at once.
  void cork(bool on);

 private:
  void open_aux_channel();
  [[noreturn]] void fail(const std::string& what, int status);
  amqp_connection_state_t_* conn_ = nullptr;
  bool aux_open_ = false;
  bool corked_ = false;
  std::set<std::string> known_exchanges_;
  std::string masked_url_;
};

}  // namespace outbox
