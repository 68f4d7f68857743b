// The broker's own limit for bench/relay, NATS JetStream: publish N messages of a given body
// size to a subject with JetStream async publish and a window of unacknowledged messages, with
// the headers the relay's NATS sink sends (Nats-Msg-Id, x-outbox-*), wait for every PubAck, and
// print "<count> <seconds> <rate> <cpu us per message>". With RATE, paced: RATE messages a second,
// each stamped with its send time (bare_pacing.h). A stream must capture SUBJECT. No PostgreSQL.
//   nats-bare-publisher URL SUBJECT COUNT SIZE [WINDOW [RATE]]
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bare_pacing.h"
#include "sinks/nats/encoded_message.h"

namespace {

std::mutex mu;
std::condition_variable cv;
long acked = 0, failed = 0;

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void*) {
  {
    std::lock_guard<std::mutex> g(mu);
    ++acked;
    if (pa == nullptr && pae != nullptr && ++failed == 1)
      std::fprintf(stderr, "publish failed: %s\n", pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
  }
  cv.notify_one();
  natsMsg_Destroy(msg);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: nats-bare-publisher URL SUBJECT COUNT SIZE [WINDOW [RATE]]\n");
    return 2;
  }
  std::string url = argv[1], subject = argv[2];
  long count = std::atol(argv[3]);
  long size = std::atol(argv[4]);
  long window = argc > 5 ? std::atol(argv[5]) : 1000;
  bench::Pacing pace;
  pace.rate = argc > 6 ? std::atol(argv[6]) : 0;
  natsOptions* o = nullptr;
  natsOptions_Create(&o);
  natsOptions_SetURL(o, url.c_str());
  natsOptions_SetAllowReconnect(o, false);
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, o);
  if (s != NATS_OK) {
    std::fprintf(stderr, "connect: %s\n", natsStatus_GetText(s));
    return 1;
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 1 << 24;  // the window below is the limit, as in the relay
  jo.PublishAsync.AckHandler = on_ack;
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) return 1;
  std::string body = "{\"pad\":\"" + std::string(size > 12 ? static_cast<size_t>(size - 12) : 0, 'x') + "\"}";
  long sent = 0;
  auto t0 = std::chrono::steady_clock::now();
  pace.start = t0;
  std::string stamp = "2026-11-23 05:17:57.590859+00";
  char id[64];
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Nats-Msg-Id", ""},           {"x-outbox-event-id", ""},       {"x-outbox-event-type", "order_created"},
      {"x-outbox-aggregate-type", "bench"}, {"x-outbox-aggregate-id", "1234567"}, {"x-outbox-lsn", "0/1A2B3C4D"},
      {"x-outbox-xid", "123456"},    {"x-outbox-commit-time", ""}};
  std::string scratch;
  // Ids unique to this run: the stream's duplicate window would drop a second run's messages.
  unsigned run = static_cast<unsigned>(std::chrono::system_clock::now().time_since_epoch().count() & 0xffffffffu);
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return acked >= count || (sent < count && sent - acked < window); });
      if (acked >= count) break;
    }
    long room;
    {
      std::lock_guard<std::mutex> g(mu);
      room = window - (sent - acked);
    }
    if (pace.on()) room = std::min(room, 1L);
    for (; room > 0 && sent < count; --room) {
      if (pace.on()) {
        std::this_thread::sleep_until(pace.due(sent));
        stamp = bench::timestamp_now();
      }
      // A distinct id per message (de-duplication would drop repeats), shaped like a uuid.
      std::snprintf(id, sizeof id, "%08x-e9d5-7ec2-94ef-%012ld", run, sent);
      headers[0].second = headers[1].second = id;
      headers[7].second = stamp;
      // Made as the relay makes its messages (encoded_message.h: the header block encoded
      // once, one allocation), so that the baseline is not the slower public header API.
      int made = NATS_OK;
      natsMsg* m = outbox::make_nats_message(subject, headers, body, scratch, made);
      if (m == nullptr) {
        std::fprintf(stderr, "message: %s\n", natsStatus_GetText(static_cast<natsStatus>(made)));
        return 1;
      }
      s = js_PublishMsgAsync(js, &m, nullptr);
      natsMsg_Destroy(m);
      if (s != NATS_OK) {
        std::fprintf(stderr, "publish: %s\n", natsStatus_GetText(s));
        return 1;
      }
      ++sent;
    }
  }
  if (failed > 0) {
    std::fprintf(stderr, "%ld of %ld publishes failed\n", failed, count);
    return 1;
  }
  bench::print_result(count, t0);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(o);
  return 0;
}
