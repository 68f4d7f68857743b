// A nats.c message created with its header block already encoded, as nats.c creates a message it
// received. nats.c's public API keeps a message's headers as a hash of heap strings: four
// allocations per header, the hash walked twice per write to encode them, and all of it freed
// again (a third of the relay's CPU per event on a NATS drain went to malloc and free). A message
// made here is one allocation and is written as it is.
//
// It uses natsMsg_create, which libnats exports but does not declare (the same signature from
// 3.4.1 to the newest release read). encoded_messages_work() checks, once, that nats.c reads back
// a message made so (its headers, its data); where it does not, the public API is used.
#pragma once
#include <string>
#include <utility>
#include <vector>

struct __natsMsg;

namespace outbox {

// Appends "NATS/1.0\r\n", a "name: value\r\n" line per header in the order given, and "\r\n":
// the header block of the NATS protocol (HPUB), as nats.c's own encoder writes it for the same
// headers. Values must hold no CR or LF (build_nats_message refuses them).
void append_nats_header_block(std::string& out, const std::vector<std::pair<std::string, std::string>>& headers);

// The message (ours to destroy or hand to js_PublishMsgAsync), or nullptr and a nats.c status in
// `status` when it could not be made. `scratch` is reused across calls.
__natsMsg* make_nats_message(const std::string& subject, const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::string& data, std::string& scratch, int& status);

// Whether messages are made with their header block encoded (checked once per process).
bool encoded_messages_work();

}  // namespace outbox
