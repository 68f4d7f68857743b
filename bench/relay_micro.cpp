// Micro-benchmarks of the relay's CPU work per event (Google Benchmark), to show where the relay
// stands against the broker's ~15-25k events/s: parsing a wal2json line (table row, wal message
// with its MAC check, a forged message), the ack tracker and confirm window bookkeeping, and
// building the dead-letter JSON.
#include <benchmark/benchmark.h>

#include <string>

#include <nlohmann/json.hpp>

#include "delivery/ack_tracker.h"
#include "delivery/confirm_window.h"
#include "source/message_auth.h"
#include "source/pg_admin.h"
#include "source/wal2json_parser.h"

using namespace outbox;

namespace {
const std::string kRow =
    R"({"action":"I","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00","schema":"outbox","table":"events","columns":[{"name":"id","value":"01a206f4-b323-744b-8afe-2745731e8f4a"},{"name":"aggregate_type","value":"order"},{"name":"aggregate_id","value":"42"},{"name":"event_type","value":"created"},{"name":"payload","value":"{\"order_id\": 4711, \"customer\": \"customer-4711\", \"currency\": \"EUR\", \"total\": 129.95, \"items\": [{\"sku\": \"A-100\", \"qty\": 2, \"price\": 39.99}, {\"sku\": \"B-220\", \"qty\": 1}], \"channel\": \"web\"}"},{"name":"headers","value":"{\"tenant\": \"acme\"}"},{"name":"exchange","value":null},{"name":"routing_key","value":null},{"name":"correlation_id","value":"c1"},{"name":"causation_id","value":null},{"name":"created_at","value":"2026-11-23 05:50:29.666044+00"}]})";
// A wal-storage message as outbox_emit writes it: {"mac":"<HMAC-SHA256(key, body)>", + body.
const std::string kKey(32, 'k');
const std::string kBody =
    R"({"id":"01a206f4-b324-708f-9581-81de7a2fde29","aggregate_type":"order","aggregate_id":"7","event_type":"created","payload":{"order_id": 4711, "customer": "customer-4711", "currency": "EUR", "total": 129.95, "items": [{"sku": "A-100", "qty": 2, "price": 39.99}, {"sku": "B-220", "qty": 1}], "channel": "web"},"headers":{"tenant": "acme"},"exchange":null,"routing_key":null,"correlation_id":null,"causation_id":null,"created_at":"2026-11-23T05:50:29.666044+00:00"})";
std::string message_line(const std::string& content) {
  return R"({"action":"M","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00","transactional":true,"prefix":"outbox","content":)" +
         nlohmann::json(content).dump() + "}";
}
const std::string kMessage = message_line("{\"mac\":\"" + hmac_sha256_hex(kKey, kBody) + "\"," + kBody.substr(1));
const std::string kForged = message_line(kBody);  // what any role can write: no MAC
const std::string kBegin = R"({"action":"B","xid":1010163,"timestamp":"2026-11-23 05:50:29.66806+00"})";

// `line` parsed once an iteration, into the same ParsedLine, as the relay reads its stream.
void parse_each(benchmark::State& st, Wal2jsonParser& p, const std::string& line) {
  ParsedLine out;
  for (auto _ : st) {
    p.parse(line, 1, out);
    benchmark::DoNotOptimize(out);
  }
  st.SetItemsProcessed(st.iterations());
}

void BM_ParseTableRow(benchmark::State& st) {
  Wal2jsonParser p;
  parse_each(st, p, kRow);
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(kRow.size()));
}
BENCHMARK(BM_ParseTableRow);

void BM_ParseWalMessage(benchmark::State& st) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  ParsedLine out;
  p.parse(kMessage, 1, out);
  if (out.kind != LineKind::Event) st.SkipWithError("the bench message does not verify");
  parse_each(st, p, kMessage);
}
BENCHMARK(BM_ParseWalMessage);

// The part of BM_ParseWalMessage that authenticates the message: HMAC-SHA256 of its body.
void BM_MessageMac(benchmark::State& st) {
  MessageAuth a;
  a.set_key(kKey);
  unsigned char mac[kHmacSha256Bytes];
  for (auto _ : st) {
    a.mac(kBody, mac);
    benchmark::DoNotOptimize(mac);
  }
  st.SetItemsProcessed(st.iterations());
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(kBody.size()));
}
BENCHMARK(BM_MessageMac);

// A forged message (no MAC) is rejected: the cost of a flood of them.
void BM_RejectForgedMessage(benchmark::State& st) {
  Wal2jsonParser p;
  p.set_message_key(kKey);
  parse_each(st, p, kForged);
}
BENCHMARK(BM_RejectForgedMessage);

void BM_ParseBeginLine(benchmark::State& st) {
  Wal2jsonParser p;
  parse_each(st, p, kBegin);
}
BENCHMARK(BM_ParseBeginLine);

// One transaction of one event through tracker + window: begin, add, publish, commit, ack.
void BM_TrackOneEventTransaction(benchmark::State& st) {
  AckTracker t;
  ConfirmWindow<AckTracker::TxnId> w;
  std::vector<ConfirmWindow<AckTracker::TxnId>::Settled> out;
  Lsn lsn = 0;
  for (auto _ : st) {
    auto id = t.begin(TxnIdentity{7, lsn + 1});
    auto tag = w.add(t.add_event(id, lsn + 1));
    t.commit(id, ++lsn);
    out.clear();
    w.confirm(tag, false, false, out);
    for (auto& s : out) t.settle(s.item);
  }
  benchmark::DoNotOptimize(t.ack_lsn());
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_TrackOneEventTransaction);

void BM_DeadLetterJson(benchmark::State& st) {
  Wal2jsonParser p;
  ParsedLine out;
  p.parse(kRow, 1, out);
  for (auto _ : st) benchmark::DoNotOptimize(event_to_json(out.event));
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_DeadLetterJson);
}  // namespace

BENCHMARK_MAIN();
