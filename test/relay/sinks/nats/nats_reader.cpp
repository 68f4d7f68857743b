#include "sinks/nats/nats_reader.h"

#include <cstdlib>
#include <stdexcept>

#include <nats/nats.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace outbox::test {

namespace {

struct Js {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  explicit Js(const std::string& url) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsOptions_SetAllowReconnect(o, false);
    natsOptions_SetTimeout(o, 5000);
    natsStatus s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) throw std::runtime_error(std::string("nats reader: connect: ") + natsStatus_GetText(s));
    s = natsConnection_JetStream(&js, nc, nullptr);
    if (s != NATS_OK) throw std::runtime_error(std::string("nats reader: jetstream: ") + natsStatus_GetText(s));
  }
  ~Js() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
};

jsStreamInfo* info(Js& c, const std::string& stream, jsErrCode* jerr) {
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, jerr);
  if (s != NATS_OK) return nullptr;
  return si;
}

}  // namespace

namespace {

std::string b64decode(const std::string& in) {
  if (in.empty()) return "";
  std::string out(3 * ((in.size() + 3) / 4), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error("nats reader: bad base64");
  std::size_t pad = 0;
  for (std::size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string trim(const std::string& s) {
  std::size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// "NATS/1.0\r\nk: v\r\n...\r\n\r\n", parsed here rather than by nats.c: nats.c 3.4.1 skips the
// CRLF after an empty value and reads the next header line as that value.
std::map<std::string, std::string> parse_headers(const std::string& raw) {
  std::map<std::string, std::string> h;
  std::size_t pos = raw.find("\r\n");
  while (pos != std::string::npos) {
    pos += 2;
    std::size_t end = raw.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    std::string line = raw.substr(pos, end - pos);
    std::size_t colon = line.find(':');
    if (colon != std::string::npos) h.emplace(line.substr(0, colon), trim(line.substr(colon + 1)));
    pos = end;
  }
  return h;
}

}  // namespace

std::vector<NatsStoredMessage> read_nats_stream(const std::string& url, const std::string& stream) {
  Js c(url);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = info(c, stream, &jerr);
  if (si == nullptr) throw std::runtime_error("nats reader: no stream " + stream);
  std::uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, msgs = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  std::vector<NatsStoredMessage> out;
  if (msgs == 0) return out;
  // The stream's message API ($JS.API.STREAM.MSG.GET), raw: subject, headers and body as stored.
  std::string api = "$JS.API.STREAM.MSG.GET." + stream;
  for (std::uint64_t seq = first; seq <= last; ++seq) {
    std::string req = "{\"seq\":" + std::to_string(seq) + "}";
    natsMsg* reply = nullptr;
    natsStatus s = natsConnection_Request(&reply, c.nc, api.c_str(), req.data(), static_cast<int>(req.size()), 5000);
    if (s != NATS_OK) throw std::runtime_error("nats reader: get " + std::to_string(seq) + ": " + natsStatus_GetText(s));
    auto j = nlohmann::json::parse(std::string(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply))));
    natsMsg_Destroy(reply);
    if (j.contains("error")) {
      if (j["error"].value("err_code", 0) == JSNoMessageFoundErr) continue;  // deleted
      throw std::runtime_error("nats reader: get " + std::to_string(seq) + ": " + j["error"].dump());
    }
    const auto& m = j.at("message");
    NatsStoredMessage r;
    r.subject = m.at("subject").get<std::string>();
    r.data = b64decode(m.value("data", ""));
    r.headers = parse_headers(b64decode(m.value("hdrs", "")));
    r.seq = m.at("seq").get<std::uint64_t>();
    out.push_back(std::move(r));
  }
  return out;
}

std::uint64_t count_nats_stream(const std::string& url, const std::string& stream) {
  Js c(url);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = info(c, stream, &jerr);
  if (si == nullptr) throw std::runtime_error("nats reader: no stream " + stream);
  std::uint64_t n = si->State.Msgs;
  jsStreamInfo_Destroy(si);
  return n;
}

bool nats_stream_exists(const std::string& url, const std::string& stream) {
  Js c(url);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = info(c, stream, &jerr);
  if (si != nullptr) {
    jsStreamInfo_Destroy(si);
    return true;
  }
  if (jerr == JSStreamNotFoundErr) return false;
  throw std::runtime_error("nats reader: stream info " + stream);
}

void delete_nats_stream(const std::string& url, const std::string& stream) {
  Js c(url);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(c.js, stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK && jerr != JSStreamNotFoundErr)
    throw std::runtime_error("nats reader: delete " + stream + ": " + natsStatus_GetText(s));
}

void create_nats_stream(const std::string& url, const std::string& stream, const std::vector<std::string>& subjects,
                        std::int64_t duplicate_window_ms, std::int64_t max_msgs) {
  Js c(url);
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream.c_str();
  std::vector<const char*> subj;
  for (const auto& s : subjects) subj.push_back(s.c_str());
  cfg.Subjects = subj.data();
  cfg.SubjectsLen = static_cast<int>(subj.size());
  cfg.Duplicates = duplicate_window_ms * 1000000;
  if (max_msgs > 0) {
    cfg.MaxMsgs = max_msgs;
    cfg.Discard = js_DiscardNew;
  }
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, c.js, &cfg, nullptr, &jerr);
  if (s != NATS_OK) throw std::runtime_error("nats reader: create " + stream + ": " + natsStatus_GetText(s));
  jsStreamInfo_Destroy(si);
}

}  // namespace outbox::test
