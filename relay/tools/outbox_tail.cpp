// outbox-tail: a small RabbitMQ consumer that prints each message as one JSON line (routing key,
// properties, headers, body), for the demo, the benchmarks and humans. It can declare its queue
// and bind it (--bind EXCHANGE:ROUTING_KEY, repeatable), stop after --count messages or after
// --idle-ms without messages. The lines are written by nlohmann-json: invalid UTF-8 in a string
// becomes U+FFFD; a body that is JSON is embedded byte for byte, any other body as a string.
#include <amqp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tools/amqp_login.h"

namespace {

std::string s(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

using ojson = nlohmann::ordered_json;  // members in the order written

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

ojson field(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: return s(v.value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN: return v.value.boolean != 0;
    case AMQP_FIELD_KIND_I8: return v.value.i8;
    case AMQP_FIELD_KIND_U8: return v.value.u8;
    case AMQP_FIELD_KIND_I16: return v.value.i16;
    case AMQP_FIELD_KIND_U16: return v.value.u16;
    case AMQP_FIELD_KIND_I32: return v.value.i32;
    case AMQP_FIELD_KIND_U32: return v.value.u32;
    case AMQP_FIELD_KIND_I64: return v.value.i64;
    case AMQP_FIELD_KIND_U64: return v.value.u64;
    case AMQP_FIELD_KIND_F32: return v.value.f32;
    case AMQP_FIELD_KIND_F64: return v.value.f64;
    case AMQP_FIELD_KIND_VOID: return nullptr;
    default: return "?";
  }
}

// The body as JSON: byte for byte when it is JSON (numbers keep every digit), else as a string.
std::string body_json(const std::string& body) {
  if (nlohmann::json::accept(body)) return body;
  return dump(ojson(body));
}

void die(const std::string& what, int code = 1) {
  std::cerr << "outbox-tail: " << what << "\n";
  std::exit(code);
}

// The broker's reason for a refusal ("404 NOT_FOUND - no queue 'q' in vhost '/'") is the fix's
// half: without it "queue.bind failed" leaves the user guessing which name was wrong.
void check(amqp_connection_state_t c, const std::string& what, const std::string& fix = "") {
  amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    die(what + " failed: " + outbox::amqp_reply_reason(r) + (fix.empty() ? "" : " -- fix: " + fix));
}

struct Binding {
  std::string exchange, key;
};

// EXCHANGE:ROUTING_KEY, refused before anything is declared: a missing key used to mean '#', which
// bound the queue to every message of the exchange (and --bind declares a durable queue).
Binding parse_bind(const std::string& b) {
  auto colon = b.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == b.size())
    die("--bind " + b + ": give EXCHANGE:ROUTING_KEY, both not empty (e.g. --bind 'amq.topic:order.#'; " +
            "'#' matches every key of a topic exchange)",
        2);
  return {b.substr(0, colon), b.substr(colon + 1)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"outbox-tail: print RabbitMQ messages as JSON lines"};
  std::string url = std::getenv("OUTBOX_AMQP_URL") ? std::getenv("OUTBOX_AMQP_URL") : "amqp://guest:guest@127.0.0.1:5672/";
  std::string queue;
  std::vector<std::string> binds;
  long count = 0, idle_ms = 0;
  bool declare = false, exclusive = false, quiet = false;
  app.add_option("--url", url, "AMQP URL (default: $OUTBOX_AMQP_URL)");
  app.add_option("--queue", queue, "queue to consume")->required();
  app.add_flag("--declare", declare, "declare the queue (durable unless --exclusive)");
  app.add_flag("--exclusive", exclusive, "declare it exclusive/auto-delete");
  app.add_option("--bind", binds, "EXCHANGE:ROUTING_KEY to bind the queue to (repeatable; implies --declare; the exchange must exist)");
  app.add_option("--count", count, "exit after this many messages");
  app.add_option("--idle-ms", idle_ms, "exit after this long without a message");
  app.add_flag("--quiet", quiet, "print only a final count");
  CLI11_PARSE(app, argc, argv);
  std::vector<Binding> bindings;
  for (const auto& b : binds) bindings.push_back(parse_bind(b));
  if (!bindings.empty()) declare = true;

  amqp_connection_state_t c;
  std::string why;
  outbox::AmqpLogin login = outbox::amqp_login_url(url, c, &why);
  if (login == outbox::AmqpLogin::BadUrl) die("bad --url: expected amqp://user:password@host:port/vhost", 2);
  if (login == outbox::AmqpLogin::CannotConnect) die("cannot connect to RabbitMQ at " + why);
  if (login == outbox::AmqpLogin::Refused)
    die("login refused for " + why +
        " -- the user or its password in --url (default $OUTBOX_AMQP_URL) is wrong, or the user may not use "
        "the vhost");
  amqp_channel_open(c, 1);
  check(c, "channel.open");
  // The exchanges first (passive: nothing is made), so that a wrong name leaves no queue behind.
  for (const auto& b : bindings) {
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(b.exchange.c_str()), amqp_cstring_bytes("topic"), 1, 0, 0, 0,
                          amqp_empty_table);
    check(c, "--bind " + b.exchange + ":" + b.key, "name an exchange that exists (amq.topic is the relay's default)");
  }
  if (declare) {
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue.c_str()), 0, !exclusive, exclusive, exclusive, amqp_empty_table);
    check(c, "declaring queue " + queue);
  }
  for (const auto& b : bindings) {
    amqp_queue_bind(c, 1, amqp_cstring_bytes(queue.c_str()), amqp_cstring_bytes(b.exchange.c_str()),
                    amqp_cstring_bytes(b.key.c_str()), amqp_empty_table);
    check(c, "--bind " + b.exchange + ":" + b.key);
  }
  amqp_basic_qos(c, 1, 0, 500, 0);
  check(c, "basic.qos");
  amqp_basic_consume(c, 1, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  check(c, "consuming queue " + queue, declare ? "" : "--declare makes the queue, --bind EXCHANGE:KEY binds it");
  std::cerr << "outbox-tail: consuming " << queue << "\n";

  long n = 0;
  while (count == 0 || n < count) {
    amqp_envelope_t env;
    amqp_maybe_release_buffers(c);
    struct timeval tv{idle_ms / 1000, static_cast<long>((idle_ms % 1000) * 1000)};
    amqp_rpc_reply_t r = amqp_consume_message(c, &env, idle_ms > 0 ? &tv : nullptr, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) break;
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) break;
        continue;
      }
      break;
    }
    auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    ++n;
    if (!quiet) {
      const amqp_basic_properties_t& p = env.message.properties;
      ojson m = ojson::object();
      m["n"] = n;
      m["received_us"] = now_us;
      m["exchange"] = s(env.exchange);
      m["routing_key"] = s(env.routing_key);
      if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) m["message_id"] = s(p.message_id);
      if (p._flags & AMQP_BASIC_TYPE_FLAG) m["type"] = s(p.type);
      if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) m["correlation_id"] = s(p.correlation_id);
      if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) m["content_type"] = s(p.content_type);
      if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) m["delivery_mode"] = p.delivery_mode;
      if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) m["timestamp"] = p.timestamp;
      if (p._flags & AMQP_BASIC_APP_ID_FLAG) m["app_id"] = s(p.app_id);
      if (p._flags & AMQP_BASIC_PRIORITY_FLAG) m["priority"] = p.priority;
      ojson headers = ojson::object();
      if (p._flags & AMQP_BASIC_HEADERS_FLAG)
        for (int i = 0; i < p.headers.num_entries; ++i) headers[s(p.headers.entries[i].key)] = field(p.headers.entries[i].value);
      m["headers"] = std::move(headers);
      // {..., "body": <body>}: the body last, spliced in as it is when it is JSON.
      std::string line = dump(m);
      line.pop_back();
      line += ",\"body\":" + body_json(s(env.message.body)) + "}";
      std::cout << line << std::endl;
    }
    amqp_basic_ack(c, 1, env.delivery_tag, 0);
    amqp_destroy_envelope(&env);
  }
  if (quiet) std::cout << n << std::endl;
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return 0;
}
