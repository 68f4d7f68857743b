// The plain AMQP connection the tools and the benchmarks open: the URL (an empty vhost meaning
// "/"), TCP, a PLAIN login with the default frame size. Not the relay's own connection
// (sinks/rabbitmq/connection), which adds TLS, address rotation and timeouts.
#pragma once
#include <amqp.h>

#include <string>

namespace outbox {

enum class AmqpLogin { Ok, BadUrl, CannotConnect, Refused };

// A new connection to `url`, logged in, in `c` (channels are the caller's); on failure `c` is null
// and the result says which step failed, for each program to word (or to exit with). `why`, when
// given, gets what the library or the broker said (for Refused, the broker's close reason when it
// sent one) and the user and vhost the login was for.
AmqpLogin amqp_login_url(const std::string& url, amqp_connection_state_t& c, std::string* why = nullptr);

// What went wrong in `r`, a reply of the broker or of the library: for a channel.close or
// connection.close its code and text as the broker wrote them ("404 NOT_FOUND - no queue 'q' in
// vhost '/'"), otherwise the library's error string.
std::string amqp_reply_reason(const amqp_rpc_reply_t& r);

}  // namespace outbox
