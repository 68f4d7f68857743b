#include "sinks/rabbitmq/amqp_values.h"

namespace outbox {

amqp_bytes_t bytes_of(const std::string& s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

std::string bytes_str(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

std::vector<amqp_table_entry_t> table_entries(const std::vector<Header>& headers) {
  std::vector<amqp_table_entry_t> t;
  table_entries(headers, t);
  return t;
}

void table_entries(const std::vector<Header>& headers, std::vector<amqp_table_entry_t>& t) {
  t.resize(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const HeaderValue& v = headers[i].value;
    amqp_field_value_t& f = t[i].value;
    t[i].key = bytes_of(headers[i].name);
    switch (v.kind) {
      case HeaderValue::Kind::String: f.kind = AMQP_FIELD_KIND_UTF8; f.value.bytes = bytes_of(v.s); break;
      case HeaderValue::Kind::Int: f.kind = AMQP_FIELD_KIND_I64; f.value.i64 = v.i; break;
      case HeaderValue::Kind::Double: f.kind = AMQP_FIELD_KIND_F64; f.value.f64 = v.d; break;
      case HeaderValue::Kind::Bool: f.kind = AMQP_FIELD_KIND_BOOLEAN; f.value.boolean = v.b; break;
      case HeaderValue::Kind::Null: f.kind = AMQP_FIELD_KIND_VOID; break;
    }
  }
}

std::string rpc_error(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "ok";
    case AMQP_RESPONSE_NONE: return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        return "server closed the connection: " + std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        return "server closed the channel: " + std::to_string(m->reply_code) + " " + bytes_str(m->reply_text);
      }
      return "server exception";
  }
  return "unknown";
}

}  // namespace outbox
