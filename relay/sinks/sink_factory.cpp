#include "sinks/sink_factory.h"

#include <stdexcept>

#include "sinks/nats/sink.h"
#include "sinks/rabbitmq/sink.h"
#include "sinks/redis/sink.h"

namespace outbox {

namespace {

std::unique_ptr<Sink> rabbitmq(const Config& c, const std::string& name) {
  RabbitSink::Options o;
  o.urls = c.amqp_urls;
  o.publisher.heartbeat_s = c.heartbeat_s;
  o.publisher.connect_timeout_ms = c.amqp_connect_timeout_ms;
  o.publisher.confirm_timeout_ms = c.amqp_confirm_timeout_ms;
  o.publisher.name = name;
  o.publisher.tls = AmqpPublisher::Tls{c.amqp_cacert, c.amqp_cert, c.amqp_key};
  o.topology = c.topology;
  o.defaults.exchange = c.exchange;
  o.defaults.app_id = c.app_id;
  o.defaults.cloudevents_source = c.cloudevents_source;
  return std::make_unique<RabbitSink>(std::move(o));
}

std::unique_ptr<Sink> nats(const Config& c, const std::string& name) {
  NatsSink::Options o;
  o.urls = c.nats_urls;
  o.subject_prefix = c.nats_subject_prefix;
  for (const NatsStream& s : c.nats_streams)
    o.streams.push_back(NatsSink::Stream{s.name, s.subjects, s.storage, s.replicas, s.duplicate_window_ms});
  o.tls = NatsSink::Tls{c.nats_cacert, c.nats_cert, c.nats_key};
  o.connect_timeout_ms = c.amqp_connect_timeout_ms;
  o.ack_timeout_ms = c.nats_ack_timeout_ms;
  o.name = name;
  return std::make_unique<NatsSink>(std::move(o));
}

std::unique_ptr<Sink> redis(const Config& c, const std::string& name) {
  RedisSink::Options o;
  o.urls = c.redis_urls;
  o.stream = c.redis_stream;
  o.maxlen = static_cast<std::uint64_t>(c.redis_maxlen);
  o.dedup_window_ms = c.redis_dedup_window_ms;
  o.tls = RedisTls{c.redis_cacert, c.redis_cert, c.redis_key};
  o.connect_timeout_ms = c.amqp_connect_timeout_ms;
  o.ack_timeout_ms = c.redis_ack_timeout_ms;
  // CLIENT SETNAME takes no spaces.
  o.name = name;
  for (char& ch : o.name)
    if (ch == ' ') ch = '_';
  return std::make_unique<RedisSink>(std::move(o));
}

}  // namespace

std::vector<std::unique_ptr<Sink>> make_sinks(const Config& c, const std::string& connection_name) {
  std::vector<std::unique_ptr<Sink>> out;
  for (const std::string& kind : c.sinks) {
    if (kind == "rabbitmq") out.push_back(rabbitmq(c, connection_name));
    else if (kind == "nats") out.push_back(nats(c, connection_name));
    else if (kind == "redis") out.push_back(redis(c, connection_name));
    else throw std::logic_error("sink " + kind + " is not built into this relay");
  }
  return out;
}

}  // namespace outbox
