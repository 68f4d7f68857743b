// What the relay declares on RabbitMQ at each start ([topology] of the settings), and what it
// checks there: exchanges and queues by passive declares on the side channel, never in the data
// path. The AmqpPublisher's topology members (sinks/rabbitmq/connection.h).
#include <spdlog/spdlog.h>

#include "sinks/event_metadata.h"
#include "sinks/rabbitmq/amqp_values.h"
#include "sinks/rabbitmq/connection.h"

namespace outbox {

namespace {

// The x-arguments of a queue.declare.
std::vector<Header> queue_arguments(const Topology::Queue& q) {
  std::vector<Header> args;
  if (!q.dead_letter_exchange.empty()) args.push_back(string_header("x-dead-letter-exchange", q.dead_letter_exchange));
  if (!q.dead_letter_routing_key.empty())
    args.push_back(string_header("x-dead-letter-routing-key", q.dead_letter_routing_key));
  if (!q.queue_type.empty()) args.push_back(string_header("x-queue-type", q.queue_type));
  if (q.message_ttl_ms) args.push_back(int_header("x-message-ttl", *q.message_ttl_ms));
  if (q.max_length) args.push_back(int_header("x-max-length", *q.max_length));
  if (q.max_priority) args.push_back(int_header("x-max-priority", *q.max_priority));
  return args;
}

}  // namespace

bool AmqpPublisher::exchange_exists(const std::string& name) {
  if (name.empty() || known_exchanges_.count(name)) return true;
  open_aux_channel();
  amqp_exchange_declare(conn_, kAuxChannel, bytes_of(name), amqp_cstring_bytes("topic"), 1, 0, 0, 0,
                        amqp_empty_table);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) {
    known_exchanges_.insert(name);
    return true;
  }
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
    int code = m->reply_code;
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_, kAuxChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    aux_ = Aux::Closed;
    if (code == 404) return false;
    throw AmqpError("checking exchange \"" + name + "\" failed: " + rpc_error(r));
  }
  throw AmqpError("checking exchange \"" + name + "\" failed: " + rpc_error(r));
}

bool AmqpPublisher::queue_exists(const std::string& name) {
  open_aux_channel();
  amqp_queue_declare(conn_, kAuxChannel, bytes_of(name), 1, 0, 0, 0, amqp_empty_table);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    int code = static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code;
    std::string why = rpc_error(r);
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_, kAuxChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    aux_ = Aux::Closed;
    if (code == 404) return false;
    throw AmqpError("checking queue \"" + name + "\" failed: " + why +
                    (code == 405 ? " -- fix: the queue is exclusive to another connection; choose another name" : ""));
  }
  throw AmqpError("checking queue \"" + name + "\" failed: " + rpc_error(r));
}

std::vector<std::string> AmqpPublisher::check_topology(const Topology& t, std::set<std::string>& would_create) {
  std::vector<std::string> out;
  std::set<std::string> new_queues;
  for (const auto& x : t.exchanges) {
    if (exchange_exists(x.name)) {
      out.push_back("exchange \"" + x.name + "\" exists (its type and flags are not compared: a difference would "
                    "fail the relay's declaration)");
    } else {
      would_create.insert(x.name);
      out.push_back("exchange \"" + x.name + "\" does not exist: the relay would create it (type " + x.type +
                    (x.durable ? ", durable" : ", transient") + (x.auto_delete ? ", auto-delete" : "") + ")");
    }
  }
  for (const auto& q : t.queues) {
    if (queue_exists(q.name)) {
      out.push_back("queue \"" + q.name + "\" exists (its arguments are not compared)");
    } else {
      new_queues.insert(q.name);
      out.push_back("queue \"" + q.name + "\" does not exist: the relay would create it" +
                    (q.queue_type.empty() ? std::string() : " (" + q.queue_type + ")"));
    }
  }
  for (const auto& b : t.bindings) {
    bool ex_ok = would_create.count(b.exchange) || exchange_exists(b.exchange);
    bool q_ok = new_queues.count(b.queue) || queue_exists(b.queue);
    if (!ex_ok)
      throw AmqpError("binding " + b.queue + " <- " + b.exchange + ": exchange \"" + b.exchange +
                      "\" neither exists nor is in [topology] -- fix: add it to [[topology.exchanges]] or declare it");
    if (!q_ok)
      throw AmqpError("binding " + b.queue + " <- " + b.exchange + ": queue \"" + b.queue +
                      "\" neither exists nor is in [topology] -- fix: add it to [[topology.queues]] or declare it");
    out.push_back("queue \"" + b.queue + "\" would be bound to exchange \"" + b.exchange + "\" with routing key \"" +
                  b.routing_key + "\"");
  }
  return out;
}

void AmqpPublisher::declare_topology(const Topology& t) {
  if (t.empty()) return;
  open_aux_channel();
  auto check = [&](const std::string& what) {
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
      throw AmqpError("declaring " + what + " failed: " + rpc_error(r) +
                      " -- fix: the [topology] in the config file disagrees with what exists on the broker");
  };
  for (const auto& x : t.exchanges) {
    amqp_exchange_declare(conn_, kAuxChannel, amqp_cstring_bytes(x.name.c_str()), amqp_cstring_bytes(x.type.c_str()), 0,
                          x.durable, x.auto_delete, 0, amqp_empty_table);
    check("exchange " + x.name);
    known_exchanges_.insert(x.name);
  }
  for (const auto& q : t.queues) {
    std::vector<Header> args = queue_arguments(q);
    std::vector<amqp_table_entry_t> entries = table_entries(args);
    amqp_table_t table{static_cast<int>(entries.size()), entries.empty() ? nullptr : entries.data()};
    amqp_queue_declare(conn_, kAuxChannel, amqp_cstring_bytes(q.name.c_str()), 0, q.durable, q.exclusive, q.auto_delete,
                       table);
    check("queue " + q.name);
  }
  for (const auto& b : t.bindings) {
    amqp_queue_bind(conn_, kAuxChannel, amqp_cstring_bytes(b.queue.c_str()), amqp_cstring_bytes(b.exchange.c_str()),
                    amqp_cstring_bytes(b.routing_key.c_str()), amqp_empty_table);
    check("binding " + b.queue + " <- " + b.exchange + " (" + b.routing_key + ")");
  }
  spdlog::info("declared topology: {} exchanges, {} queues, {} bindings", t.exchanges.size(), t.queues.size(),
               t.bindings.size());
}

}  // namespace outbox
