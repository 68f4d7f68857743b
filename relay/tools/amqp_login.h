// The plain AMQP connection the tools and the benchmarks open: the URL (an empty vhost meaning
// "/"), TCP, a PLAIN login with the default frame size. Not the relay's own connection
// (sinks/rabbitmq/connection), which adds TLS, address rotation and timeouts.
#pragma once
#include <amqp.h>

#include <string>

namespace outbox {

enum class AmqpLogin { Ok, BadUrl, CannotConnect, Refused };

// A new connection to `url`, logged in, in `c` (channels are the caller's); on failure `c` is null
// and the result says which step failed, for each program to word (or to exit with).
AmqpLogin amqp_login_url(const std::string& url, amqp_connection_state_t& c);

}  // namespace outbox
