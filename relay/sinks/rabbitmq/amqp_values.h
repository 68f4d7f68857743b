// Between the relay's values and rabbitmq-c's: byte strings, field tables, an RPC reply as text
// (for the RabbitMQ sink's connection and topology; rabbitmq-c types, so not in their headers).
#pragma once
#include <string>
#include <vector>

#include <amqp.h>

#include "delivery/event.h"

namespace outbox {

// Points at the string's bytes: valid while the string is.
amqp_bytes_t bytes_of(const std::string& s);
std::string bytes_str(amqp_bytes_t b);

// The headers as field-table entries, in their order: valid while the headers are.
std::vector<amqp_table_entry_t> table_entries(const std::vector<Header>& headers);
// The same into `out` (a buffer kept per connection: no allocation per message).
void table_entries(const std::vector<Header>& headers, std::vector<amqp_table_entry_t>& out);

// What an RPC reply says ("ok", the library's error, the server's close code and text).
std::string rpc_error(const amqp_rpc_reply_t& r);

}  // namespace outbox
