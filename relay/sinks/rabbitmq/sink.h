// RabbitMQ as a sink: the AmqpPublisher (one connection, confirm mode) behind the Sink interface,
// plus what the relay does with RabbitMQ at each start: declare the [topology] of the settings and
// check that the default exchange exists. Events become AMQP messages here (sinks/rabbitmq/message.h).
#pragma once
#include <string>
#include <vector>

#include "sinks/rabbitmq/message.h"
#include "sinks/rabbitmq/connection.h"
#include "sinks/rabbitmq/settings.h"
#include "delivery/sink.h"

namespace outbox {

class RabbitSink : public Sink {
 public:
  struct Options {
    std::vector<std::string> urls;
    AmqpPublisher::Options publisher;
    Topology topology;
    MessageDefaults defaults;
  };
  explicit RabbitSink(Options o) : o_(std::move(o)) {}

  const char* name() const override { return "rabbitmq"; }
  const char* display_name() const override { return "RabbitMQ"; }
  void open(bool started) override;
  std::vector<std::string> check() override;
  void close() override {
    pub_.close();
    blocked_ = false;
  }
  bool connected() const override { return pub_.connected(); }
  std::string node() const override { return pub_.node(); }
  std::optional<std::string> publish(std::uint64_t ticket, const Event& ev) override;
  int socket() const override { return pub_.socket(); }
  void poll(std::vector<BrokerOutcome>& out) override;
  bool broken() const override { return pub_.broken(); }
  const std::string& broken_reason() const override { return pub_.broken_reason(); }
  bool broken_by_message() const override { return pub_.broken_by_message(); }
  bool has_buffered() const override { return pub_.has_buffered(); }
  bool pending() const override { return pub_.pending(); }
  void send_pending() override { pub_.send_pending(); }
  bool writable() const override { return pub_.writable(); }
  void batch(bool on) override;
  bool blocked() const override { return blocked_; }

  AmqpPublisher& publisher() { return pub_; }

 private:
  Options o_;
  AmqpPublisher pub_;
  bool blocked_ = false;
  // The wall clock read when the batch opened: the timestamp of events without a commit time,
  // one clock read per turn instead of one per event. 0 outside a batch.
  std::int64_t batch_now_us_ = 0;
};

}  // namespace outbox
