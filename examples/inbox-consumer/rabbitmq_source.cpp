// RabbitMQ: a durable queue, manual acknowledgements. A message not acknowledged when the
// connection goes (a crash, kill -9) is queued again and delivered with redelivered = true.
#include <amqp.h>

#include <stdexcept>
#include <sys/time.h>

#include "source.h"
#include "tools/amqp_login.h"

namespace inbox {
namespace {

std::string str(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

class RabbitSource : public Source {
 public:
  explicit RabbitSource(const SourceOptions& o) {
    if (outbox::amqp_login_url(o.url, c_) != outbox::AmqpLogin::Ok)
      throw std::runtime_error("cannot connect to RabbitMQ at " + o.url);
    amqp_channel_open(c_, 1);
    check("channel.open");
    amqp_queue_declare(c_, 1, amqp_cstring_bytes(o.queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
    check("queue.declare " + o.queue);
    if (!o.bind.empty()) {
      auto colon = o.bind.find(':');
      std::string ex = o.bind.substr(0, colon), key = colon == std::string::npos ? "#" : o.bind.substr(colon + 1);
      amqp_queue_bind(c_, 1, amqp_cstring_bytes(o.queue.c_str()), amqp_cstring_bytes(ex.c_str()),
                      amqp_cstring_bytes(key.c_str()), amqp_empty_table);
      check("queue.bind " + o.bind);
    }
    amqp_basic_qos(c_, 1, 0, static_cast<uint16_t>(o.prefetch), 0);
    check("basic.qos");
    amqp_basic_consume(c_, 1, amqp_cstring_bytes(o.queue.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check("basic.consume " + o.queue);
  }
  ~RabbitSource() override {
    amqp_connection_close(c_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c_);
  }

  bool next(Delivery& d, int timeout_ms) override {
    for (;;) {
      amqp_maybe_release_buffers(c_);
      struct timeval tv{timeout_ms / 1000, static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
      amqp_envelope_t env;
      amqp_rpc_reply_t r = amqp_consume_message(c_, &env, &tv, 0);
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) return false;
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t f;  // a frame other than a delivery (e.g. a heartbeat): read it and go on
        if (amqp_simple_wait_frame(c_, &f) != AMQP_STATUS_OK) throw std::runtime_error("RabbitMQ connection lost");
        continue;
      }
      if (r.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("RabbitMQ connection lost");
      const amqp_basic_properties_t& p = env.message.properties;
      d.id = (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? str(p.message_id) : "";
      d.body = str(env.message.body);
      d.where = str(env.routing_key) + (env.redelivered ? " (redelivered)" : "");
      tag_ = env.delivery_tag;
      amqp_destroy_envelope(&env);
      return true;
    }
  }

  void ack() override {
    if (amqp_basic_ack(c_, 1, tag_, 0) != AMQP_STATUS_OK) throw std::runtime_error("RabbitMQ ack failed");
  }

 private:
  void check(const std::string& what) {
    if (amqp_get_rpc_reply(c_).reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error("RabbitMQ " + what + " failed");
  }

  amqp_connection_state_t c_ = nullptr;
  uint64_t tag_ = 0;
};

}  // namespace

std::unique_ptr<Source> open_rabbitmq(const SourceOptions& o) { return std::make_unique<RabbitSource>(o); }

}  // namespace inbox
