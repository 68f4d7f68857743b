#include "tools/amqp_login.h"

#include <amqp_tcp_socket.h>

#include <vector>

namespace outbox {

AmqpLogin amqp_login_url(const std::string& url, amqp_connection_state_t& c) {
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
  if (!s || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK)
    result = AmqpLogin::CannotConnect;
  else if (amqp_login(conn, ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password)
               .reply_type != AMQP_RESPONSE_NORMAL)
    result = AmqpLogin::Refused;
  if (result == AmqpLogin::Ok)
    c = conn;
  else
    amqp_destroy_connection(conn);
  return result;
}

}  // namespace outbox
