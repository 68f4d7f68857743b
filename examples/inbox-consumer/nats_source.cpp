// NATS JetStream: a durable pull consumer with explicit acknowledgements. A message not
// acknowledged within its AckWait is delivered again, to this consumer after a restart as well.
#include <nats/nats.h>

#include <stdexcept>

#include "source.h"

namespace inbox {
namespace {

class NatsSource : public Source {
 public:
  explicit NatsSource(const SourceOptions& o) {
    if (natsConnection_ConnectTo(&nc_, o.url.c_str()) != NATS_OK)
      throw std::runtime_error("cannot connect to NATS at " + o.url + ": " + nats_GetLastError(nullptr));
    if (natsConnection_JetStream(&js_, nc_, nullptr) != NATS_OK) throw std::runtime_error("NATS: no JetStream context");
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o.stream.c_str();
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckWait = static_cast<int64_t>(o.ack_wait_ms) * 1000000;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_PullSubscribe(&sub_, js_, o.subject.c_str(), o.group.c_str(), nullptr, &so, &jerr) != NATS_OK)
      throw std::runtime_error("NATS: cannot consume " + o.subject + " of stream " + o.stream + " as " + o.group + ": " +
                               nats_GetLastError(nullptr));
    batch_ = o.prefetch;
  }
  ~NatsSource() override {
    natsMsgList_Destroy(&list_);
    natsSubscription_Destroy(sub_);  // not Unsubscribe: that would delete the durable consumer
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }

  bool next(Delivery& d, int timeout_ms) override {
    if (pos_ >= list_.Count) {
      natsMsgList_Destroy(&list_);
      list_ = natsMsgList{};
      pos_ = 0;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list_, sub_, batch_, timeout_ms, &jerr);
      if (s == NATS_TIMEOUT || (s == NATS_OK && list_.Count == 0)) return false;
      if (s != NATS_OK) throw std::runtime_error(std::string("NATS fetch failed: ") + natsStatus_GetText(s));
    }
    natsMsg* m = list_.Msgs[pos_++];
    const char* id = nullptr;
    d.id = natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id ? id : "";
    d.body.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    d.where = natsMsg_GetSubject(m);
    current_ = m;
    return true;
  }

  void ack() override {
    if (natsMsg_Ack(current_, nullptr) != NATS_OK) throw std::runtime_error("NATS ack failed");
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
  natsMsgList list_{};
  int pos_ = 0;
  int batch_ = 100;
  natsMsg* current_ = nullptr;
};

}  // namespace

std::unique_ptr<Source> open_nats(const SourceOptions& o) { return std::make_unique<NatsSource>(o); }

}  // namespace inbox
