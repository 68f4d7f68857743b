// The delivery unit: per-aggregate order through refusals, retries, dead letters, suspects after
// a closed channel, the default exchange missing. Driven with plain values and a recording sink.
#include "delivery/delivery.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "sinks/rabbitmq/message.h"

using namespace outbox;
using namespace std::chrono_literals;

namespace {

struct RecordingSink : Sink {
  struct Pub {
    std::uint64_t ticket;
    std::string id, exchange;
  };
  std::vector<Pub> pubs;
  bool up = true, is_blocked = false, throws = false;
  std::string reason;
  const char* name() const override { return "rec"; }
  const char* display_name() const override { return "Recorder"; }
  void open(bool) override {}
  std::vector<std::string> check() override { return {}; }
  void close() override {}
  bool connected() const override { return up; }
  std::string node() const override { return "rec"; }
  int socket() const override { return -1; }
  void poll(std::vector<BrokerOutcome>&) override {}
  bool broken() const override { return false; }
  const std::string& broken_reason() const override { return reason; }
  bool blocked() const override { return is_blocked; }
  std::optional<std::string> publish(std::uint64_t ticket, const Event& ev) override {
    if (throws) throw SinkError("connection reset while writing");
    if (ev.event_type == "too-big-for-this-broker") return std::string("field \"x\" is too big");
    // What RabbitSink refuses (the AMQP mapping), so the dead-letter paths are those of RabbitMQ.
    MessageDefaults d;
    d.exchange = "events";
    auto built = build_message(ev, d, 0);
    if (auto* err = std::get_if<std::string>(&built)) return *err;
    pubs.push_back({ticket, ev.id, ev.exchange.value_or("events")});
    return std::nullopt;
  }
  std::uint64_t ticket_of(const std::string& id) const {
    for (auto it = pubs.rbegin(); it != pubs.rend(); ++it)
      if (it->id == id) return it->ticket;
    ADD_FAILURE() << "never published: " << id;
    return 0;
  }
  bool published(const std::string& id) const {
    for (auto& p : pubs)
      if (p.id == id) return true;
    return false;
  }
};

Event ev(const std::string& id, std::optional<std::string> agg, Lsn lsn = 0) {
  Event e;
  e.id = id;
  e.event_type = "t";
  e.payload = "{}";
  if (agg) {
    e.aggregate_type = "order";
    e.aggregate_id = *agg;
  }
  e.lsn = lsn ? lsn : 0x1000 + std::hash<std::string>{}(id) % 100000;
  return e;
}

DeliveryOptions opts(int max_attempts = 3) {
  DeliveryOptions o;
  o.max_attempts = max_attempts;
  o.retry_base = 10ms;
  o.retry_max = 40ms;
  o.default_exchange = "events";
  return o;
}

struct Fixture {
  Delivery d;
  RecordingSink sink;
  Delivery::Clock::time_point now = Delivery::Clock::time_point{} + 1h;
  explicit Fixture(DeliveryOptions o = opts()) : d(std::move(o)) {}
  void pump() { d.pump(now, sink); }
  void confirm(const std::string& id) { d.confirmed(sink.ticket_of(id), now); }
  void refuse(const std::string& id, Refusal r = Refusal::Returned) { d.refused(sink.ticket_of(id), r, "312 NO_ROUTE", now); }
  void later(std::chrono::milliseconds ms) {
    now += ms;
    pump();
  }
};

TEST(Delivery, OneEventPerAggregateInFlightOthersPipelined) {
  Fixture f;
  f.d.add(ev("a1", "A"), 1);
  f.d.add(ev("a2", "A"), 1);
  f.d.add(ev("b1", "B"), 1);
  f.d.add(ev("b2", "B"), 2);
  f.pump();
  ASSERT_EQ(f.sink.pubs.size(), 2u);
  EXPECT_EQ(f.sink.pubs[0].id, "a1");
  EXPECT_EQ(f.sink.pubs[1].id, "b1");
  f.confirm("b1");
  f.pump();
  EXPECT_TRUE(f.sink.published("b2"));
  EXPECT_FALSE(f.sink.published("a2"));
  f.confirm("a1");
  f.pump();
  EXPECT_TRUE(f.sink.published("a2"));
  EXPECT_EQ(f.d.take_settled().size(), 2u);
}

// Where an event's time went: from the relay reading it to its last publish (held back behind
// its aggregate here), and from that publish to the confirm.
TEST(Delivery, SettledTellsHowLongAnEventWaitedInTheRelayAndForItsConfirm) {
  Fixture f;
  auto t0 = f.now;
  f.d.add(ev("a1", "A"), 1, t0);
  f.d.add(ev("a2", "A"), 2, t0);
  f.now = t0 + 1ms;
  f.pump();  // a1 out; a2 waits for it
  f.now = t0 + 3ms;
  f.confirm("a1");
  f.now = t0 + 5ms;
  f.pump();  // a2 out
  f.now = t0 + 6ms;
  f.confirm("a2");
  auto s = f.d.take_settled();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_TRUE(s[0].confirmed);
  EXPECT_EQ(s[0].held, 1ms);
  EXPECT_EQ(s[0].latency, 2ms);
  EXPECT_EQ(s[1].held, 5ms);
  EXPECT_EQ(s[1].latency, 1ms);
  Event bad = ev("x1", "X");
  bad.invalid = "not an event";
  f.d.add(bad, 3, t0);
  f.pump();
  EXPECT_TRUE(f.d.take_settled().empty());  // the relay settles it once its row is written
  EXPECT_EQ(f.d.take_dead_letters().size(), 1u);
}

// A drained aggregate's node serves the next new one (Delivery::spare_keys_): the reused queue
// starts empty and holds its new key's order, and the old key, back later, is a queue of its own.
TEST(Delivery, ADrainedAggregatesNodeServesTheNextOneWithItsOwnOrder) {
  Fixture f;
  f.d.add(ev("a1", "A"), 1);
  f.pump();
  f.confirm("a1");  // A drained: its node is spare
  f.d.add(ev("b1", "B"), 2);
  f.d.add(ev("b2", "B"), 2);
  f.d.add(ev("a2", "A"), 3);
  f.d.add(ev("a3", "A"), 3);
  f.pump();
  ASSERT_EQ(f.sink.pubs.size(), 3u);  // a1, then one each of B and A
  EXPECT_EQ(f.sink.pubs[1].id, "b1");
  EXPECT_EQ(f.sink.pubs[2].id, "a2");
  f.confirm("a2");
  f.pump();
  EXPECT_TRUE(f.sink.published("a3"));
  EXPECT_FALSE(f.sink.published("b2"));
  f.confirm("b1");
  f.confirm("a3");
  f.pump();
  EXPECT_TRUE(f.sink.published("b2"));
  f.confirm("b2");
  f.pump();
  EXPECT_TRUE(f.d.idle());
  // Rounds of 300 keys, two events each, drained before the next round: more keys than spares
  // kept, each round's keys on reused nodes. Within a key, the first is confirmed before the
  // second goes out.
  std::size_t seen = f.sink.pubs.size();
  for (int round = 0; round < 3; ++round) {
    std::string r = "r" + std::to_string(round) + "-";
    for (int i = 0; i < 600; ++i) f.d.add(ev(r + std::to_string(i), std::to_string(i % 300)), 10 + round);
    std::set<std::string> confirmed;
    for (int turn = 0; turn < 10 && !f.d.idle(); ++turn) {
      f.pump();
      std::vector<std::string> out;
      for (; seen < f.sink.pubs.size(); ++seen) out.push_back(f.sink.pubs[seen].id);
      for (const auto& id : out) {
        int i = std::stoi(id.substr(r.size()));
        if (i >= 300) EXPECT_TRUE(confirmed.count(r + std::to_string(i - 300))) << id << " before its key's first";
        f.confirm(id);
        confirmed.insert(id);
      }
    }
    EXPECT_EQ(confirmed.size(), 600u) << "round " << round;
    EXPECT_TRUE(f.d.idle()) << "round " << round;
  }
}

TEST(Delivery, CommitOrderingHoldsLaterKeysBehindABusyOneAggregateOrderingDoesNot) {
  for (Ordering ord : {Ordering::Commit, Ordering::Aggregate}) {
    DeliveryOptions o = opts();
    o.ordering = ord;
    Fixture f(o);
    f.d.add(ev("a1", "A"), 1);
    f.d.add(ev("a2", "A"), 2);
    f.d.add(ev("b1", "B"), 3);
    f.pump();
    EXPECT_EQ(f.sink.published("b1"), ord == Ordering::Aggregate);
    f.confirm("a1");
    f.pump();
    EXPECT_TRUE(f.sink.published("a2"));
    EXPECT_TRUE(f.sink.published("b1"));
    if (ord == Ordering::Commit) EXPECT_EQ(f.sink.pubs.back().id, "b1");
    // A retry does not hold other keys back in either mode.
    f.refuse("a2");
    f.d.add(ev("c1", "C"), 4);
    f.pump();
    EXPECT_TRUE(f.sink.published("c1"));
  }
}

// --ordering none: an aggregate's events are all in flight at once, and a refused one is
// overtaken by the next (what the default never lets happen); each is still settled once.
TEST(Delivery, NoOrderingPipelinesAnAggregateAndLetsARetryBeOvertaken) {
  DeliveryOptions o = opts();
  o.ordering = Ordering::None;
  Fixture f(o);
  f.d.add(ev("a1", "A"), 1);
  f.d.add(ev("a2", "A"), 2);
  f.d.add(ev("n1", std::nullopt), 3);
  f.d.add(ev("n2", std::nullopt), 3);
  f.pump();
  ASSERT_EQ(f.sink.pubs.size(), 4u) << "every event in flight at once";
  f.refuse("a1");
  f.confirm("a2");
  f.confirm("n1");
  f.confirm("n2");
  f.pump();
  EXPECT_EQ(f.sink.pubs.size(), 4u) << "the retry waits for its delay";
  f.later(10ms);
  EXPECT_EQ(f.sink.pubs.back().id, "a1") << "retried after a2 was confirmed: overtaken";
  f.confirm("a1");
  f.pump();
  EXPECT_EQ(f.d.take_settled().size(), 4u);
  EXPECT_EQ(f.d.stats().retries, 1u);
}

TEST(Delivery, EventsWithoutAggregateShareOneKey) {
  Fixture f;
  f.d.add(ev("n1", std::nullopt), 1);
  f.d.add(ev("n2", std::nullopt), 1);
  f.pump();
  EXPECT_EQ(f.sink.pubs.size(), 1u);
  EXPECT_NE(Delivery::ordering_key(ev("x", "A")), Delivery::ordering_key(ev("y", std::nullopt)));
}

TEST(Delivery, ReturnedEventHoldsItsAggregateUntilRetried) {
  Fixture f;
  f.d.add(ev("a1", "A"), 1);
  f.d.add(ev("a2", "A"), 1);
  f.d.add(ev("b1", "B"), 1);
  f.pump();
  f.refuse("a1");
  f.confirm("b1");
  f.pump();
  EXPECT_FALSE(f.sink.published("a2")) << "a later event of A overtook the returned one";
  ASSERT_TRUE(f.d.next_due().has_value());
  f.later(10ms);  // first retry after retry_base
  EXPECT_EQ(f.sink.pubs.back().id, "a1");
  f.confirm("a1");
  f.pump();
  EXPECT_EQ(f.sink.pubs.back().id, "a2");
  EXPECT_EQ(f.d.stats().retries, 1u);
}

// The dead letter's reason is the sink's words for the refusal (naming the sink and where the
// message went) and how often: "exchange does not exist 5 times" named no exchange, and
// "unroutable (returned by the broker)" was RabbitMQ's word for a NATS refusal. The broker's own
// text stays in broker_reply.
TEST(Delivery, ADeadLettersReasonIsTheSinksWordsAndTheCount) {
  Fixture f(opts(2));
  f.d.add(ev("a1", "A"), 1);
  f.pump();
  const std::string words = R"(NATS: no JetStream stream captures subject "evts.x")";
  f.d.refused(f.sink.ticket_of("a1"), Refusal::Returned, "no responders", f.now, words);
  f.later(10ms);
  f.d.refused(f.sink.ticket_of("a1"), Refusal::Returned, "no responders", f.now, words);
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].reason, words + ", 2 times");
  EXPECT_EQ(dl[0].broker_reply, "no responders");
  // A sink without words for it: the kind of refusal and the reply, not another broker's words.
  f.d.add(ev("b1", "B"), 2);
  f.pump();
  f.d.refused(f.sink.ticket_of("b1"), Refusal::Returned, "312 NO_ROUTE", f.now);
  f.later(10ms);
  f.d.refused(f.sink.ticket_of("b1"), Refusal::Returned, "312 NO_ROUTE", f.now);
  dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].reason, "returned: 312 NO_ROUTE, 2 times");
}

TEST(Delivery, DeadLetterAfterMaxAttemptsThenTheAggregateContinues) {
  Fixture f(opts(2));
  f.d.add(ev("a1", "A"), 7);
  f.d.add(ev("a2", "A"), 7);
  f.pump();
  f.refuse("a1", Refusal::Nacked);
  f.later(10ms);
  f.refuse("a1", Refusal::Nacked);
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].ev.id, "a1");
  EXPECT_EQ(dl[0].attempts, 2);
  EXPECT_EQ(dl[0].txn, 7u);
  EXPECT_NE(dl[0].reason.find("nacked"), std::string::npos);
  f.pump();
  EXPECT_EQ(f.sink.pubs.back().id, "a2");
}

TEST(Delivery, UnpublishableEventBecomesDeadLetterAtItsTurnWithoutBeingSent) {
  Fixture f;
  f.d.add(ev("a1", "A"), 1);
  Event bad = ev("a2", "A");
  bad.invalid = "header \"n\" holds 1e300";
  f.d.add(bad, 1);
  Event big = ev("b1", "B");
  big.headers.push_back(Header{"h", HeaderValue{HeaderValue::Kind::String, std::string(300000, 'x'), 0, 0, false}});
  f.d.add(big, 1);
  f.pump();
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].ev.id, "b1");
  EXPECT_NE(dl[0].reason.find("header table"), std::string::npos) << dl[0].reason;
  EXPECT_EQ(dl[0].attempts, 0);
  EXPECT_FALSE(f.d.take_dead_letters().size());
  f.confirm("a1");
  f.pump();
  dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].ev.id, "a2");
  EXPECT_FALSE(f.sink.published("a2"));
  EXPECT_TRUE(f.d.idle());
}

TEST(Delivery, ClosedChannelWithOneInFlightChargesItAcrossReconnects) {
  Fixture f(opts(2));
  Event a = ev("a1", "A", 0x5000);
  f.d.add(a, 1);
  f.pump();
  f.d.lost(true, "406 PRECONDITION_FAILED");
  f.d.reset();
  // The slot sends it again after the reconnect; the second close makes it a dead letter.
  f.d.add(a, 1);
  f.d.add(ev("b1", "B"), 1);
  f.pump();
  EXPECT_EQ(f.sink.pubs.back().id, "a1") << "the charged event goes alone";
  EXPECT_EQ(f.d.in_flight(), 1u);
  f.d.lost(true, "406 PRECONDITION_FAILED");
  f.d.reset();
  f.sink.pubs.clear();
  f.d.add(a, 1);
  f.d.add(ev("b1", "B"), 1);
  f.pump();
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].ev.id, "a1");
  EXPECT_EQ(dl[0].broker_reply, "406 PRECONDITION_FAILED");
  EXPECT_FALSE(f.sink.published("a1"));
  EXPECT_TRUE(f.sink.published("b1"));
  // Not written yet when the session ends: it must come again and be written then.
  f.d.reset();
  f.d.add(a, 1);
  f.pump();
  dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u) << "a dead letter lost with its session was settled without being written";
  f.d.dead_letter_written(dl[0]);
  // Sent again after it was written, before its transaction was acknowledged: settled, not a
  // second dead letter.
  f.d.reset();
  f.d.take_settled();
  f.d.add(a, 1);
  f.pump();
  EXPECT_TRUE(f.d.take_dead_letters().empty());
  EXPECT_EQ(f.d.take_settled().size(), 1u);
  EXPECT_TRUE(f.d.idle());
  f.d.forget_before(0x5001);
  EXPECT_EQ(f.d.remembered(), 0u);
}

TEST(Delivery, ClosedChannelWithSeveralInFlightMakesSuspectsThatGoAlone) {
  Fixture f;
  std::vector<Event> evs = {ev("a", "A", 0x10), ev("b", "B", 0x20), ev("c", "C", 0x30)};
  for (auto& e : evs) f.d.add(e, 1);
  f.pump();
  EXPECT_EQ(f.d.in_flight(), 3u);
  f.d.lost(true, "404 NOT_FOUND");
  f.d.reset();
  for (auto& e : evs) f.d.add(e, 1);
  f.d.add(ev("d", "D", 0x40), 1);
  f.sink.pubs.clear();
  for (const char* id : {"a", "b", "c"}) {
    f.pump();
    ASSERT_EQ(f.d.in_flight(), 1u) << "suspect " << id << " not alone";
    EXPECT_EQ(f.sink.pubs.back().id, id);
    f.confirm(id);
  }
  f.pump();
  EXPECT_EQ(f.sink.pubs.back().id, "d");
  EXPECT_EQ(f.d.stats().suspects, 3u);
  EXPECT_EQ(f.d.remembered(), 0u);
}

TEST(Delivery, LostSocketChargesNobody) {
  Fixture f;
  f.d.add(ev("a", "A", 0x10), 1);
  f.pump();
  f.d.lost(false, "connection reset");
  EXPECT_EQ(f.d.remembered(), 0u);
}

TEST(Delivery, MissingDefaultExchangeWaitsWithoutChargingAttempts) {
  Fixture f(opts(1));
  f.d.add(ev("a", "A"), 1);
  Event other = ev("b", "B");
  other.exchange = "elsewhere";
  f.d.add(other, 1);
  f.pump();
  f.d.refused(f.sink.ticket_of("a"), Refusal::ExchangeMissing, "404 NOT_FOUND", f.now);
  f.d.refused(f.sink.ticket_of("b"), Refusal::ExchangeMissing, "404 NOT_FOUND", f.now);
  EXPECT_TRUE(f.d.default_exchange_missing());
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u) << "only the event naming a missing exchange of its own is charged";
  EXPECT_EQ(dl[0].ev.id, "b");
  for (int i = 0; i < 5; ++i) {
    f.later(40ms);
    f.d.refused(f.sink.ticket_of("a"), Refusal::ExchangeMissing, "404 NOT_FOUND", f.now);
  }
  EXPECT_TRUE(f.d.take_dead_letters().empty());
  f.later(40ms);
  f.confirm("a");
  EXPECT_FALSE(f.d.default_exchange_missing());
}

// A sink's destination gone (a JetStream stream deleted): its events wait, uncharged, for any
// sink; the reply is kept for the log and /readyz until one that waited is confirmed.
TEST(Delivery, MissingDestinationWaitsWithoutChargingAttempts) {
  Fixture f(opts(1));
  f.d.add(ev("a", "A"), 1);
  f.pump();
  for (int i = 0; i < 5; ++i) {
    f.d.refused(f.sink.ticket_of("a"), Refusal::DestinationMissing, "no stream", f.now);
    EXPECT_EQ(f.d.destination_missing(0), "no stream");
    f.later(40ms);
  }
  EXPECT_TRUE(f.d.take_dead_letters().empty());
  EXPECT_EQ(f.d.stats().retries, 0u);
  ASSERT_TRUE(f.sink.published("a"));
  f.confirm("a");
  EXPECT_EQ(f.d.destination_missing(0), "");
  EXPECT_EQ(f.d.take_settled().size(), 1u);
}

TEST(Delivery, WindowAndBackpressure) {
  DeliveryOptions o = opts();
  o.max_in_flight = 2;
  o.max_held = 3;
  Fixture f(o);
  for (int i = 0; i < 3; ++i) f.d.add(ev("e" + std::to_string(i), std::to_string(i)), 1);
  EXPECT_FALSE(f.d.accepting());
  f.pump();
  EXPECT_EQ(f.d.in_flight(), 2u);
  f.confirm("e0");
  EXPECT_TRUE(f.d.accepting());
  f.pump();
  EXPECT_EQ(f.d.in_flight(), 2u);
}

// Random workloads and broker behaviour: whatever the answers, each event ends exactly once, an
// aggregate never has two events in flight, and its events are confirmed in stream order.
TEST(Delivery, RandomizedOrderAndCompleteness) {
  for (unsigned seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    DeliveryOptions o = opts(1 + static_cast<int>(rng() % 4));
    o.max_in_flight = 1 + rng() % 8;
    o.ordering = seed % 2 ? Ordering::Commit : Ordering::Aggregate;
    Fixture f(o);
    int n = 20 + static_cast<int>(rng() % 80);
    int keys = 1 + static_cast<int>(rng() % 6);
    std::map<std::string, std::string> key_of;
    std::map<std::string, int> pos;
    for (int i = 0; i < n; ++i) {
      std::string id = "e" + std::to_string(i);
      int k = static_cast<int>(rng() % (keys + 1));
      auto agg = k == keys ? std::nullopt : std::optional<std::string>(std::to_string(k));
      f.d.add(ev(id, agg, 0x100 + static_cast<Lsn>(i)), static_cast<std::uint64_t>(i));
      key_of[id] = agg ? *agg : "-";
      pos[id] = i;
    }
    std::map<std::string, int> last_confirmed;
    std::set<std::string> ended;
    std::set<std::uint64_t> open;
    std::map<std::uint64_t, std::string> id_of;
    std::size_t seen = 0;
    std::set<std::string> first_published;
    int last_first = -1;
    for (int step = 0; step < 100000 && ended.size() < static_cast<std::size_t>(n); ++step) {
      f.pump();
      for (; seen < f.sink.pubs.size(); ++seen) {
        const std::string& pid = f.sink.pubs[seen].id;
        if (o.ordering == Ordering::Commit && !first_published.count(pid)) {
          ASSERT_GT(pos[pid], last_first) << "seed " << seed << ": first attempts out of commit order";
          last_first = pos[pid];
          first_published.insert(pid);
        }
        open.insert(f.sink.pubs[seen].ticket);
        id_of[f.sink.pubs[seen].ticket] = f.sink.pubs[seen].id;
      }
      std::map<std::string, int> per_key;
      for (auto t : open) ASSERT_LE(++per_key[key_of[id_of[t]]], 1) << "seed " << seed;
      for (auto& d : f.d.take_dead_letters()) ASSERT_TRUE(ended.insert(d.ev.id).second) << "seed " << seed;
      if (open.empty()) {
        f.now += 50ms;
        continue;
      }
      auto it = open.begin();
      std::advance(it, rng() % open.size());
      std::uint64_t t = *it;
      open.erase(it);
      std::string id = id_of[t];
      unsigned r = rng() % 10;
      if (r < 7) {
        f.d.confirmed(t, f.now);
        ASSERT_TRUE(ended.insert(id).second) << "seed " << seed;
        auto& lc = last_confirmed.try_emplace(key_of[id], -1).first->second;
        ASSERT_LT(lc, pos[id]) << "seed " << seed << ": " << id << " confirmed out of order";
        lc = pos[id];
      } else {
        f.d.refused(t, r < 9 ? Refusal::Returned : Refusal::Nacked, "no", f.now);
      }
      for (auto& d : f.d.take_dead_letters()) ASSERT_TRUE(ended.insert(d.ev.id).second) << "seed " << seed;
    }
    EXPECT_EQ(ended.size(), static_cast<std::size_t>(n)) << "seed " << seed;
    EXPECT_TRUE(f.d.idle()) << "seed " << seed;
  }
}

}  // namespace

namespace {

TEST(Delivery, ParkKeepsAnAggregatesLaterEventsBehindItsDeadLetterUntilReleased) {
  DeliveryOptions o = opts(1);
  o.on_dead_letter = OnDeadLetter::Park;
  Fixture f(o);
  f.d.add(ev("a1", "A"), 1);
  f.d.add(ev("a2", "A"), 2);
  f.d.add(ev("b1", "B"), 2);
  f.pump();
  f.refuse("a1");  // max_attempts 1: a dead letter, and A is parked
  f.pump();
  f.d.add(ev("a3", "A"), 3);
  f.pump();
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 3u);
  EXPECT_EQ(dl[0].ev.id, "a1");
  EXPECT_EQ(dl[1].ev.id, "a2");
  EXPECT_EQ(dl[2].ev.id, "a3");
  EXPECT_NE(dl[1].reason.find("parked"), std::string::npos);
  EXPECT_FALSE(f.sink.published("a2"));
  EXPECT_TRUE(f.sink.published("b1"));
  EXPECT_EQ(f.d.parked(), 1u);
  // The release comes in stream order, then the re-emitted events: published again, in order.
  f.d.add_release(std::string("order"), std::string("A"), 4);
  f.d.add(ev("r1", "A"), 4);
  f.d.add(ev("r2", "A"), 4);
  f.pump();
  EXPECT_EQ(f.d.parked(), 0u);
  EXPECT_EQ(f.sink.pubs.back().id, "r1");
  f.confirm("r1");
  f.pump();
  EXPECT_EQ(f.sink.pubs.back().id, "r2");
  EXPECT_TRUE(f.d.take_dead_letters().empty());
}

TEST(Delivery, ContinueLetsTheAggregateGoOnAndParkedKeysLoadAtStart) {
  Fixture f(opts(1));
  f.d.add(ev("a1", "A"), 1);
  f.d.add(ev("a2", "A"), 1);
  f.pump();
  f.refuse("a1");
  f.pump();
  EXPECT_TRUE(f.sink.published("a2"));
  EXPECT_EQ(f.d.parked(), 0u);

  DeliveryOptions o = opts(1);
  o.on_dead_letter = OnDeadLetter::Park;
  Fixture g(o);
  g.d.park(std::string("order"), std::string("Z"));
  g.d.park(std::nullopt, std::nullopt);
  g.d.add(ev("z1", "Z"), 1);
  g.d.add(ev("n1", std::nullopt), 1);
  g.d.add(ev("y1", "Y"), 1);
  g.pump();
  EXPECT_EQ(g.d.take_dead_letters().size(), 2u);
  EXPECT_TRUE(g.sink.published("y1"));
}

// Two sinks: events routed by event type ("n.*" to sink 1). The fixture's sink is sink 0.
struct TwoSinks {
  Delivery d;
  RecordingSink a, b;
  Delivery::Clock::time_point now = Delivery::Clock::time_point{} + 1h;
  explicit TwoSinks(Ordering ord, std::size_t window = 1000) : d(route(ord, window)) {}
  static DeliveryOptions route(Ordering ord, std::size_t window = 1000) {
    DeliveryOptions o = opts();
    o.ordering = ord;
    o.max_in_flight = window;
    o.route = [](const Event& e) -> std::size_t { return e.event_type.rfind("n.", 0) == 0 ? 1 : 0; };
    return o;
  }
  void pump() { d.pump(now, std::vector<Sink*>{&a, &b}); }
};

Event typed(const std::string& id, const std::string& agg, const std::string& type) {
  Event e = ev(id, agg);
  e.event_type = type;
  return e;
}

TEST(Delivery, EachEventGoesToItsRoutedSink) {
  TwoSinks t(Ordering::Aggregate);
  t.d.add(typed("r1", "A", "r.x"), 1);
  t.d.add(typed("n1", "B", "n.x"), 1);
  t.pump();
  ASSERT_EQ(t.a.pubs.size(), 1u);
  ASSERT_EQ(t.b.pubs.size(), 1u);
  EXPECT_EQ(t.a.pubs[0].id, "r1");
  EXPECT_EQ(t.b.pubs[0].id, "n1");
  EXPECT_NE(t.a.pubs[0].ticket, t.b.pubs[0].ticket) << "tickets are unique across sinks";
  t.d.confirmed(t.b.pubs[0].ticket, t.now, true);
  EXPECT_EQ(t.d.stats(1).confirmed, 1u);
  EXPECT_EQ(t.d.stats(1).duplicates, 1u);
  EXPECT_EQ(t.d.stats(0).confirmed, 0u);
  EXPECT_EQ(t.d.in_flight(0), 1u);
}

TEST(Delivery, ASinkThatIsDownHoldsBackOnlyItsOwnEventsUnderAggregateOrdering) {
  TwoSinks t(Ordering::Aggregate);
  t.b.up = false;
  t.d.add(typed("n1", "B", "n.x"), 1);
  t.d.add(typed("r1", "A", "r.x"), 2);
  t.d.add(typed("n2", "C", "n.x"), 3);
  t.d.add(typed("r2", "D", "r.x"), 3);
  t.pump();
  EXPECT_EQ(t.a.pubs.size(), 2u) << "the other sink's events pass the waiting ones";
  EXPECT_TRUE(t.b.pubs.empty());
  t.b.up = true;
  t.pump();
  ASSERT_EQ(t.b.pubs.size(), 2u);
  EXPECT_EQ(t.b.pubs[0].id, "n1") << "the waiting events go in their order once the sink is back";
  EXPECT_EQ(t.b.pubs[1].id, "n2");
}

TEST(Delivery, ASinkThatIsDownHoldsBackEverythingBehindItUnderCommitOrdering) {
  TwoSinks t(Ordering::Commit);
  t.b.is_blocked = true;
  t.d.add(typed("r0", "A", "r.x"), 1);
  t.d.add(typed("n1", "B", "n.x"), 2);
  t.d.add(typed("r1", "C", "r.x"), 3);
  t.pump();
  ASSERT_EQ(t.a.pubs.size(), 1u) << "only what came before the waiting event";
  EXPECT_EQ(t.a.pubs[0].id, "r0");
  t.b.is_blocked = false;
  t.pump();
  EXPECT_EQ(t.b.pubs.size(), 1u);
  EXPECT_EQ(t.a.pubs.size(), 2u);
}

TEST(Delivery, ALostSinkRequeuesOnlyItsOwnMessagesInFlight) {
  TwoSinks t(Ordering::Aggregate);
  t.d.add(typed("n1", "B", "n.x"), 1);
  t.d.add(typed("n2", "B", "n.x"), 1);
  t.d.add(typed("r1", "A", "r.x"), 1);
  t.pump();
  ASSERT_EQ(t.b.pubs.size(), 1u);
  t.d.lost(1, false, "connection reset");
  t.d.requeue(1);
  EXPECT_EQ(t.d.in_flight(1), 0u);
  EXPECT_EQ(t.d.in_flight(0), 1u) << "the other sink's message stays in flight";
  t.b.up = false;
  t.pump();
  EXPECT_EQ(t.b.pubs.size(), 1u);
  t.b.up = true;
  t.pump();
  ASSERT_EQ(t.b.pubs.size(), 2u);
  EXPECT_EQ(t.b.pubs[1].id, "n1") << "the lost message goes again, before the next of its aggregate";
  t.d.confirmed(t.b.pubs[0].ticket, t.now);  // the first attempt's late answer: ignored
  EXPECT_EQ(t.d.stats(1).confirmed, 0u);
  t.d.confirmed(t.b.pubs[1].ticket, t.now);
  t.pump();
  EXPECT_EQ(t.b.pubs.back().id, "n2");
}

// A silent broker (unanswered, not yet timed out) fills its own window, not the other sinks':
// they go on publishing. A suspect is alone within its sink only.
TEST(Delivery, EachSinkHasAWindowOfItsOwn) {
  TwoSinks t(Ordering::Aggregate, 2);
  for (int i = 0; i < 3; ++i) t.d.add(typed("n" + std::to_string(i), "B" + std::to_string(i), "n.x"), 1);
  for (int i = 0; i < 2; ++i) t.d.add(typed("r" + std::to_string(i), "A" + std::to_string(i), "r.x"), 2);
  t.pump();
  EXPECT_EQ(t.b.pubs.size(), 2u) << "sink 1's window is 2";
  ASSERT_EQ(t.a.pubs.size(), 2u) << "sink 0 publishes past sink 1's full window";
  EXPECT_EQ(t.d.in_flight(0), 2u);
  EXPECT_EQ(t.d.in_flight(1), 2u);
  EXPECT_EQ(t.d.in_flight(), 4u);
  t.d.confirmed(t.a.pubs[0].ticket, t.now);
  t.d.confirmed(t.a.pubs[1].ticket, t.now);
  // Sink 1's connection closed with one message out: that one is a suspect and goes alone there.
  t.d.confirmed(t.b.pubs[1].ticket, t.now);
  t.d.lost(1, true, "406 PRECONDITION_FAILED");
  t.d.requeue(1);
  t.b.pubs.clear();
  t.d.add(typed("r2", "A2", "r.x"), 3);
  t.d.add(typed("r3", "A3", "r.x"), 3);
  t.pump();
  ASSERT_EQ(t.b.pubs.size(), 1u) << "the suspect alone";
  EXPECT_EQ(t.b.pubs[0].id, "n0");
  EXPECT_EQ(t.a.pubs.size(), 4u) << "sink 0 is not held by sink 1's suspect";
  t.d.confirmed(t.b.pubs[0].ticket, t.now);
  t.pump();
  ASSERT_EQ(t.b.pubs.size(), 2u);
  EXPECT_EQ(t.b.pubs[1].id, "n2");
}

TEST(Delivery, WhatASinkCannotTakeIsADeadLetterNamingTheSink) {
  Fixture f;
  Event e = ev("x1", "A");
  e.event_type = "too-big-for-this-broker";
  f.d.add(e, 1);
  f.d.add(ev("x2", "A"), 1);
  f.pump();
  auto dl = f.d.take_dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_NE(dl[0].reason.find("cannot be published to Recorder: field \"x\""), std::string::npos) << dl[0].reason;
  EXPECT_TRUE(f.sink.published("x2"));
}

TEST(Delivery, APublishThatThrowsLeavesTheEventFirstAndReportsTheSink) {
  TwoSinks t(Ordering::Aggregate);
  t.b.throws = true;
  t.d.add(typed("n1", "B", "n.x"), 1);
  t.d.add(typed("n2", "C", "n.x"), 1);
  t.d.add(typed("r1", "A", "r.x"), 1);
  t.pump();
  auto failures = t.d.take_publish_failures();
  ASSERT_EQ(failures.size(), 1u) << "one report per sink and turn, not per event";
  EXPECT_EQ(failures[0].first, 1u);
  EXPECT_NE(failures[0].second.find("connection reset"), std::string::npos);
  EXPECT_EQ(t.a.pubs.size(), 1u) << "the other sink's event still goes";
  EXPECT_TRUE(t.d.take_dead_letters().empty()) << "not the events' fault";
  t.b.throws = false;
  t.pump();
  ASSERT_EQ(t.b.pubs.size(), 2u);
  EXPECT_EQ(t.b.pubs[0].id, "n1");
}

TEST(Delivery, OnlyTheDefaultExchangesSinkWaitsForIt) {
  DeliveryOptions o = TwoSinks::route(Ordering::Aggregate);
  o.default_exchange_sink = 0;
  Delivery d(o);
  RecordingSink a, b;
  auto now = Delivery::Clock::time_point{} + 1h;
  d.add(typed("r1", "A", "r.x"), 1);
  d.add(typed("n1", "B", "n.x"), 1);
  d.pump(now, std::vector<Sink*>{&a, &b});
  d.refused(a.ticket_of("r1"), Refusal::ExchangeMissing, "404 NOT_FOUND", now);
  EXPECT_TRUE(d.default_exchange_missing());
  d.confirmed(b.ticket_of("n1"), now);
  EXPECT_TRUE(d.default_exchange_missing()) << "a NATS confirm says nothing about RabbitMQ's default exchange";
}

}  // namespace
