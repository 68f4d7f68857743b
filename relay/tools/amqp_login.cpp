#include "tools/amqp_login.h"

#include <amqp_tcp_socket.h>

#include <vector>

namespace outbox {

std::string amqp_reply_reason(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "no error";
    case AMQP_RESPONSE_NONE: return "no reply from the broker";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION: break;
  }
  const amqp_bytes_t* text = nullptr;
  unsigned code = 0;
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* m = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
    code = m->reply_code;
    text = &m->reply_text;
  } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* m = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
    code = m->reply_code;
    text = &m->reply_text;
  }
  if (text == nullptr) return "the broker answered with an unexpected method";
  // RabbitMQ's text begins with the code's name: "NOT_FOUND - no queue ...".
  return std::to_string(code) + " " + std::string(static_cast<const char*>(text->bytes), text->len);
}

AmqpLogin amqp_login_url(const std::string& url, amqp_connection_state_t& c, std::string* why) {
  c = nullptr;
  std::vector<char> buf(url.begin(), url.end());  // amqp_parse_url cuts it up in place
  buf.push_back('\0');
  amqp_connection_info ci;
  if (amqp_parse_url(buf.data(), &ci) != AMQP_STATUS_OK) return AmqpLogin::BadUrl;
  // "amqp://host:port/" has an empty vhost by the URI spec; everyone means "/".
  if (ci.vhost == nullptr || ci.vhost[0] == '\0') ci.vhost = const_cast<char*>("/");
  amqp_connection_state_t conn = amqp_new_connection();
  AmqpLogin result = AmqpLogin::Ok;
  amqp_socket_t* s = amqp_tcp_socket_new(conn);
  int opened = s ? amqp_socket_open(s, ci.host, ci.port) : AMQP_STATUS_NO_MEMORY;
  if (opened != AMQP_STATUS_OK) {
    result = AmqpLogin::CannotConnect;
    if (why) *why = std::string(ci.host) + ":" + std::to_string(ci.port) + ": " + amqp_error_string2(opened);
  } else {
    amqp_rpc_reply_t r =
        amqp_login(conn, ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      result = AmqpLogin::Refused;
      if (why) *why = "user \"" + std::string(ci.user) + "\", vhost \"" + ci.vhost + "\": " + amqp_reply_reason(r);
    }
  }
  if (result == AmqpLogin::Ok)
    c = conn;
  else
    amqp_destroy_connection(conn);
  return result;
}

}  // namespace outbox
