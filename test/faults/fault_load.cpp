// fault-load: the fault suite's load generator.
//
//   fault-load --pg CONNINFO [--aggregates 20] [--rate 1500] (--count N | --duration-s S)
//              [--storage table|wal] [--rollback-pct 5] [--max-events-per-tx 3]
//              [--aggregate-type fault] [--progress-file FILE]
//
// Each aggregate ("a0", "a1", ...) is owned by one thread with one connection, so an aggregate's
// commit order is the order of its sequence numbers. Each transaction emits 1..max events with
// outbox_emit and inserts, in the same transaction, one row per event into fault_expected
// (event_id, aggregate_type, aggregate_id, seq): the table is the truth of what committed, read
// back by fault-verify. rollback-pct of the transactions do the same and then ROLLBACK (their
// payload says "rb": true, so a delivered one is recognisable).
//
// --rate is events per second for all aggregates together, paced per thread by deadlines (a
// thread that fell behind catches up at most one second's worth). The load survives the server
// going away: any error closes the connection, and the thread reconnects with backoff (100 ms
// doubling to 2 s) through the same conninfo, which may be a host list with
// target_session_attrs=read-write so that it moves to a promoted standby. After a reconnect it
// reads its aggregate's last seq from fault_expected again, because a COMMIT whose answer was
// lost may or may not have happened; the table on the server is the truth.
//
// It stops after --count committed events (all threads together) or --duration-s, or on
// SIGTERM/SIGINT, and prints one summary line. --progress-file gets the committed count every
// 200 ms, so that a scenario can wait for "mid-load" without querying a server it may be killing.
#include <libpq-fe.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  std::string pg;
  int aggregates = 20;
  double rate = 1500;
  long long count = 0;
  double duration_s = 0;
  std::string storage = "table";
  int rollback_pct = 5;
  int max_events_per_tx = 3;
  std::string aggregate_type = "fault";
  std::string progress_file;
};

std::atomic<bool> g_stop{false};
std::atomic<long long> g_committed{0};     // events in committed transactions
std::atomic<long long> g_rolled_back{0};   // events in rolled-back transactions
std::atomic<long long> g_unknown{0};       // transactions whose COMMIT outcome was lost
std::atomic<long long> g_reconnects{0};
std::atomic<long long> g_tx{0};

void on_signal(int) { g_stop = true; }

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "fault-load: %s\nusage: fault-load --pg CONNINFO [--aggregates N] [--rate EVENTS_PER_S] (--count N | "
               "--duration-s S) [--storage table|wal] [--rollback-pct P] [--max-events-per-tx N] "
               "[--aggregate-type T] [--progress-file FILE]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto v = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--pg") o.pg = v();
    else if (a == "--aggregates") o.aggregates = std::atoi(v().c_str());
    else if (a == "--rate") o.rate = std::atof(v().c_str());
    else if (a == "--count") o.count = std::atoll(v().c_str());
    else if (a == "--duration-s") o.duration_s = std::atof(v().c_str());
    else if (a == "--storage") o.storage = v();
    else if (a == "--rollback-pct") o.rollback_pct = std::atoi(v().c_str());
    else if (a == "--max-events-per-tx") o.max_events_per_tx = std::atoi(v().c_str());
    else if (a == "--aggregate-type") o.aggregate_type = v();
    else if (a == "--progress-file") o.progress_file = v();
    else usage(("unknown argument " + a).c_str());
  }
  if (o.count <= 0 && o.duration_s <= 0) usage("give --count or --duration-s");
  if (o.aggregates < 1 || o.rate <= 0 || o.max_events_per_tx < 1) usage("bad --aggregates, --rate or --max-events-per-tx");
  if (o.storage != "table" && o.storage != "wal") usage("--storage is table or wal");
  // The names go into SQL text below: keep them to what needs no quoting.
  for (char c : o.aggregate_type)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) usage("--aggregate-type: letters, digits, _");
  return o;
}

class Producer {
 public:
  Producer(const Options& o, int index) : o_(o), agg_("a" + std::to_string(index)), rng_(index * 7919 + 17) {}
  ~Producer() {
    if (conn_) PQfinish(conn_);
  }

  void run(Clock::time_point end) {
    const double per_thread = o_.rate / o_.aggregates;  // events/s
    auto next = Clock::now();
    auto backoff = 100ms;
    while (!done(end)) {
      if (!conn_ && !connect()) {
        sleep_until(Clock::now() + backoff);
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2000ms);
        continue;
      }
      backoff = 100ms;
      int n = 1 + static_cast<int>(rng_() % static_cast<unsigned>(o_.max_events_per_tx));
      bool rollback = static_cast<int>(rng_() % 100) < o_.rollback_pct;
      auto gap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(n / per_thread));
      next = std::max(next + gap, Clock::now() - 1s);  // at most a second's catching up
      sleep_until(next);
      if (done(end)) break;
      transaction(n, rollback);
    }
  }

 private:
  bool done(Clock::time_point end) const {
    if (g_stop) return true;
    if (o_.count > 0 && g_committed.load() >= o_.count) return true;
    return o_.duration_s > 0 && Clock::now() >= end;
  }

  static void sleep_until(Clock::time_point t) {
    while (!g_stop && Clock::now() < t) std::this_thread::sleep_for(std::min<Clock::duration>(t - Clock::now(), 50ms));
  }

  bool connect() {
    conn_ = PQconnectdb(o_.pg.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      note("cannot connect", PQerrorMessage(conn_));
      drop();
      return false;
    }
    std::string q = "SET outbox.storage = '" + o_.storage + "'; SET synchronous_commit = on;";
    PGresult* r = PQexec(conn_, q.c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
      drop();
      return false;
    }
    // The last seq of this aggregate that committed (also one whose COMMIT answer was lost).
    q = "SELECT coalesce(max(seq), 0) FROM fault_expected WHERE aggregate_type = '" + o_.aggregate_type +
        "' AND aggregate_id = '" + agg_ + "'";
    r = PQexec(conn_, q.c_str());
    ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok) seq_ = std::atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!ok) {
      drop();
      return false;
    }
    if (connected_before_) g_reconnects++;
    connected_before_ = true;
    return true;
  }

  void drop() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  void transaction(int n, bool rollback) {
    std::string sql = "BEGIN;";
    for (int i = 1; i <= n; ++i) {
      std::string s = std::to_string(seq_ + i);
      sql += "INSERT INTO fault_expected (event_id, aggregate_type, aggregate_id, seq) SELECT outbox_emit('fault.ev', "
             "'{\"a\":\"" + agg_ + "\",\"s\":" + s + ",\"rb\":" + (rollback ? "true" : "false") + "}'::jsonb, "
             "aggregate_type => '" + o_.aggregate_type + "', aggregate_id => '" + agg_ + "'), '" + o_.aggregate_type +
             "', '" + agg_ + "', " + s + ";";
    }
    sql += rollback ? "ROLLBACK;" : "COMMIT;";
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) note("transaction failed", PQerrorMessage(conn_));
    // PQexec returns the last statement's result: COMMIT/ROLLBACK's, or the first error's.
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && std::strcmp(PQcmdStatus(r), rollback ? "ROLLBACK" : "COMMIT") == 0;
    PQclear(r);
    if (ok) {
      g_tx++;
      if (rollback) {
        g_rolled_back += n;
      } else {
        seq_ += n;
        g_committed += n;
      }
      return;
    }
    // Lost connection (or any error): whether it committed is for fault_expected to say.
    if (!rollback) g_unknown++;
    drop();
  }

  // The first errors of each producer, then every 100th: enough to tell why, not a flood while a
  // server is down on purpose.
  void note(const char* what, const char* msg) {
    if (++errors_ <= 3 || errors_ % 100 == 0) {
      std::string m = msg ? msg : "";
      while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
      std::fprintf(stderr, "fault-load: %s %s (error %lld): %s\n", agg_.c_str(), what, errors_, m.c_str());
    }
  }

  const Options& o_;
  long long errors_ = 0;
  std::string agg_;
  std::mt19937 rng_;
  PGconn* conn_ = nullptr;
  long long seq_ = 0;
  bool connected_before_ = false;
};

void write_progress(const std::string& path) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << g_committed.load() << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  std::vector<std::unique_ptr<Producer>> producers;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.aggregates; ++i) producers.push_back(std::make_unique<Producer>(o, i));
  for (auto& p : producers) threads.emplace_back([&p, end] { p->run(end); });
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    while (!finished) {
      write_progress(o.progress_file);
      std::this_thread::sleep_for(200ms);
    }
  });
  for (auto& t : threads) t.join();
  finished = true;
  progress.join();
  write_progress(o.progress_file);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("fault-load: committed_events=%lld rolled_back_events=%lld transactions=%lld unknown_outcome_tx=%lld "
              "reconnects=%lld seconds=%.1f rate=%.0f/s\n",
              g_committed.load(), g_rolled_back.load(), g_tx.load(), g_unknown.load(), g_reconnects.load(), secs,
              g_committed.load() / std::max(secs, 0.001));
  return 0;
}
