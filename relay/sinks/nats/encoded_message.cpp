#include "sinks/nats/encoded_message.h"

#include <cstring>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

// Exported by libnats (src/msg.c), not declared by nats.h. hdrLen > 0: the first hdrLen bytes of
// buf are the header block, kept encoded until something asks for a header; nats.c's publish
// writes such a block as it is (pub.c: "a message was received and is sent back").
extern "C" natsStatus natsMsg_create(natsMsg** newMsg, const char* subject, int subjLen, const char* reply,
                                     int replyLen, const char* buf, int bufLen, int hdrLen);
// Exported, undeclared: the header bytes publish will write (pub.c asks it first).
extern "C" int natsMsgHeader_encodedLen(natsMsg* msg);

namespace outbox {

namespace {

constexpr std::size_t kScratchKept = 64 * 1024;

natsMsg* make_with_api(const std::string& subject, const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& data, int& status) {
  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  for (std::size_t i = 0; s == NATS_OK && i < headers.size(); ++i)
    s = natsMsgHeader_Add(m, headers[i].first.c_str(), headers[i].second.c_str());
  status = s;
  if (s == NATS_OK) return m;
  natsMsg_Destroy(m);
  return nullptr;
}

natsMsg* make_encoded(const std::string& subject, const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& data, std::string& scratch, int& status) {
  scratch.clear();
  int hdr_len = -1;  // no header block: a PUB, as natsMsg_Create makes
  if (!headers.empty()) {
    append_nats_header_block(scratch, headers);
    hdr_len = static_cast<int>(scratch.size());
  }
  scratch.append(data);
  natsMsg* m = nullptr;
  status = natsMsg_create(&m, subject.data(), static_cast<int>(subject.size()), nullptr, 0, scratch.data(),
                          static_cast<int>(scratch.size()), hdr_len);
  // Kept for the next message, but not the size of one large event (up to the server's
  // max_payload) for the life of the process.
  if (scratch.capacity() > kScratchKept) std::string().swap(scratch);
  return status == NATS_OK ? m : nullptr;
}

// nats.c would send the block as it is (its publish asks natsMsgHeader_encodedLen, which must
// give the block's length before anything lifted it), and reads back what was made: the subject,
// the data, and every header (lifting the block with its own parser). A nats.c whose message
// layout, sender or parser differs fails here.
bool reads_back() {
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Nats-Msg-Id", "check-1"}, {"x-outbox-event-type", "a b"}, {"x-outbox-check", "v"}};
  const std::string subject = "outbox.check", data = "{\"k\": 1}";
  // Destroying a message needs the library open (its garbage collector's lock); a connect opens
  // it too, but this may run first.
  if (nats_Open(-1) != NATS_OK) return false;
  std::string scratch;
  int status = 0;
  natsMsg* m = make_encoded(subject, headers, data, scratch, status);
  if (m == nullptr) return false;
  std::string block;
  append_nats_header_block(block, headers);
  bool ok = natsMsgHeader_encodedLen(m) == static_cast<int>(block.size()) && natsMsg_GetSubject(m) != nullptr &&
            subject == natsMsg_GetSubject(m) && natsMsg_GetDataLength(m) == static_cast<int>(data.size()) &&
            std::memcmp(natsMsg_GetData(m), data.data(), data.size()) == 0 && natsMsg_GetReply(m) == nullptr;
  for (const auto& [k, v] : headers) {
    const char* got = nullptr;
    ok = ok && natsMsgHeader_Get(m, k.c_str(), &got) == NATS_OK && got != nullptr && v == got;
  }
  natsMsg_Destroy(m);
  return ok;
}

}  // namespace

void append_nats_header_block(std::string& out, const std::vector<std::pair<std::string, std::string>>& headers) {
  out.append("NATS/1.0\r\n");
  for (const auto& [k, v] : headers) {
    out.append(k);
    out.append(": ");
    out.append(v);
    out.append("\r\n");
  }
  out.append("\r\n");
}

bool encoded_messages_work() {
  static const bool works = [] {
    bool w = reads_back();
    if (!w)
      spdlog::warn("NATS: this nats.c does not read back a message made with its header block encoded; messages are "
                   "made with its public header API (slower, same bytes)");
    return w;
  }();
  return works;
}

__natsMsg* make_nats_message(const std::string& subject,
                             const std::vector<std::pair<std::string, std::string>>& headers, const std::string& data,
                             std::string& scratch, int& status) {
  if (encoded_messages_work()) return make_encoded(subject, headers, data, scratch, status);
  return make_with_api(subject, headers, data, status);
}

}  // namespace outbox
