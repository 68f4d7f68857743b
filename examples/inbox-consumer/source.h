// What the inbox consumer needs from a broker: the next message (its id and body) and, once the
// transaction that applied it committed, its acknowledgement. One implementation per broker.
#pragma once
#include <memory>
#include <string>

namespace inbox {

struct Delivery {
  std::string id;    // the outbox event id: AMQP message_id, NATS Nats-Msg-Id, Redis field id
  std::string body;  // the payload
  std::string where; // queue / subject / stream entry, for the log
};

class Source {
 public:
  virtual ~Source() = default;
  // The next message, waiting up to timeout_ms; false if none came. Throws on a broken connection.
  virtual bool next(Delivery& d, int timeout_ms) = 0;
  // Acknowledge the message next() returned last: the broker will not deliver it again.
  virtual void ack() = 0;
};

struct SourceOptions {
  std::string url;
  std::string queue;       // RabbitMQ: the queue, declared durable
  std::string bind;        // RabbitMQ: EXCHANGE:ROUTING_KEY to bind it to ("" = none)
  std::string stream;      // NATS: the JetStream stream; Redis: the stream key
  std::string subject;     // NATS: the subject filter of the durable consumer
  std::string group;       // NATS: the durable consumer; Redis: the consumer group
  std::string member;      // Redis: the consumer within the group (its pending entries)
  int ack_wait_ms = 30000; // NATS: unacknowledged for this long, a message is delivered again
  int prefetch = 100;
};

std::unique_ptr<Source> open_rabbitmq(const SourceOptions& o);
std::unique_ptr<Source> open_nats(const SourceOptions& o);
std::unique_ptr<Source> open_redis(const SourceOptions& o);

}  // namespace inbox
