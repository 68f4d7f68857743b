#include "sinks/nats/streams.h"

#include <algorithm>

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "delivery/sink.h"
#include "sinks/nats/connection.h"
#include "sinks/nats/message.h"

namespace outbox {

namespace {

std::vector<std::string> subjects_of(const jsStreamConfig* c) {
  std::vector<std::string> v;
  for (int i = 0; c != nullptr && i < c->SubjectsLen; ++i) v.emplace_back(c->Subjects[i]);
  return v;
}

// What differs between the settings and a stream that exists ("" when nothing).
std::string stream_differences(const JetStreamStream& want, const jsStreamConfig* have) {
  std::vector<std::string> d;
  auto subj = subjects_of(have);
  auto a = want.subjects, b = subj;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a != b) d.push_back("subjects [" + comma_list(subj) + "] (settings: [" + comma_list(want.subjects) + "])");
  std::string storage = have->Storage == js_MemoryStorage ? "memory" : "file";
  if (storage != want.storage) d.push_back("storage " + storage + " (settings: " + want.storage + ")");
  if (have->Replicas != want.replicas)
    d.push_back(fmt::format("replicas {} (settings: {})", have->Replicas, want.replicas));
  if (have->Duplicates != want.duplicate_window_ms * 1000000)
    d.push_back(fmt::format("duplicate window {} ms (settings: {} ms)", have->Duplicates / 1000000,
                            want.duplicate_window_ms));
  return comma_list(d);
}

// What a JetStream ack means for "nothing lost", for a stream with this storage ("" when the ack
// means a copy on more than one machine). nats-server writes a message to its file store before
// it acknowledges it, but calls fsync only every sync_interval: 2 minutes, fixed in nats-server
// 2.9 (Debian 12's), `jetstream { sync_interval: always }` from 2.10.
std::string durability_note(bool memory, int replicas) {
  if (memory)
    return "memory storage: its confirmed events are lost when nats-server restarts -- fix: storage = \"file\"";
  if (replicas > 1) return "";
  return "file storage, 1 replica: a crash of nats-server loses nothing, a crash of its machine can lose the "
         "events confirmed since nats-server last synced to disk (every 2 minutes by default) -- fix: replicas = 3 "
         "in a JetStream cluster, or nats-server 2.10 or later with jetstream { sync_interval: always }";
}

// The same for a stream as it is, and as the settings would create it.
std::string durability_note(const jsStreamConfig* c) {
  return durability_note(c->Storage == js_MemoryStorage, c->Replicas);
}
std::string durability_note(const JetStreamStream& st) { return durability_note(st.storage == "memory", st.replicas); }

void warn_durability(const std::string& stream, const std::string& note) {
  if (!note.empty()) spdlog::warn("NATS stream {}: {}", stream, note);
}

// A stream as the settings describe it, for js_AddStream (it points into `st`).
struct NewStream {
  explicit NewStream(const JetStreamStream& st) {
    jsStreamConfig_Init(&cfg);
    cfg.Name = st.name.c_str();
    for (const auto& x : st.subjects) subjects.push_back(x.c_str());
    cfg.Subjects = subjects.data();
    cfg.SubjectsLen = static_cast<int>(subjects.size());
    cfg.Storage = st.storage == "memory" ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = st.replicas;
    cfg.Duplicates = st.duplicate_window_ms * 1000000;
  }
  jsStreamConfig cfg;
  std::vector<const char*> subjects;
};

// Every stream on the server (none: an empty list); `list` to be destroyed by the caller.
natsStatus list_streams(NatsConnection& c, jsStreamInfoList** list) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Streams(list, c.jetstream(), nullptr, &jerr);
  if (s != NATS_OK && s != NATS_NOT_FOUND) throw SinkError("NATS: cannot list streams: " + c.err(s));
  return s;
}

}  // namespace

std::string comma_list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void check_stream_settings(const std::vector<JetStreamStream>& streams) {
  for (const auto& st : streams) {
    auto bad = [&](const std::string& what) {
      return SinkError("NATS stream \"" + st.name + "\": " + what, SinkErrorKind::Config);
    };
    if (st.name.empty() || st.name.find_first_of(".*> \t\r\n/\\") != std::string::npos)
      throw bad("a name must be non-empty without '.', '*', '>', '/', '\\' or whitespace");
    if (st.subjects.empty()) throw bad("no subjects");
    if (st.storage != "file" && st.storage != "memory") throw bad("storage \"" + st.storage + "\" is not file or memory");
    if (st.replicas < 1 || st.replicas > 5) throw bad("replicas must be 1 to 5");
    if (st.duplicate_window_ms < 0) throw bad("the duplicate window cannot be negative");
  }
}

void ensure_streams(NatsConnection& c, const std::vector<JetStreamStream>& streams, bool started) {
  for (const auto& st : streams) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, c.jetstream(), st.name.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
      std::string d = stream_differences(st, si->Config);
      if (!d.empty())
        spdlog::info("NATS stream {} exists and is left as it is; it differs from the settings: {}", st.name, d);
      if (!started) warn_durability(st.name, durability_note(si->Config));
      jsStreamInfo_Destroy(si);
      continue;
    }
    if (jerr != JSStreamNotFoundErr) throw SinkError("NATS: cannot read stream " + st.name + ": " + c.err(s));
    NewStream created(st);
    s = js_AddStream(&si, c.jetstream(), &created.cfg, nullptr, &jerr);
    if (s != NATS_OK) {
      std::string why = fmt::format("NATS: cannot create stream {} (subjects [{}]): {} (JetStream error {})", st.name,
                                    comma_list(st.subjects), c.err(s), static_cast<int>(jerr));
      if (!started) throw SinkError(why, jerr != 0 ? SinkErrorKind::Config : SinkErrorKind::Retryable);
      spdlog::error("{}", why);
      continue;
    }
    jsStreamInfo_Destroy(si);
    spdlog::info("created NATS stream {} (subjects [{}], {} storage, {} replicas, duplicate window {} ms)", st.name,
                 comma_list(st.subjects), st.storage, st.replicas, st.duplicate_window_ms);
    if (!started) warn_durability(st.name, durability_note(st));
  }
}

StreamFilters stream_filters(NatsConnection& c) {
  jsStreamInfoList* list = nullptr;
  natsStatus s = list_streams(c, &list);
  StreamFilters filters;
  for (int i = 0; s == NATS_OK && i < list->Count; ++i)
    for (const auto& f : subjects_of(list->List[i]->Config)) filters.emplace_back(list->List[i]->Config->Name, f);
  if (list != nullptr) jsStreamInfoList_Destroy(list);
  return filters;
}

StreamsReport report_streams(NatsConnection& c, const std::vector<JetStreamStream>& streams) {
  StreamsReport r;
  // Every stream's subjects (existing ones as they are, configured missing ones as they would be).
  jsStreamInfoList* list = nullptr;
  natsStatus s = list_streams(c, &list);
  std::map<std::string, const jsStreamConfig*> existing;
  for (int i = 0; s == NATS_OK && i < list->Count; ++i) {
    const jsStreamConfig* sc = list->List[i]->Config;
    existing[sc->Name] = sc;
    r.durability[sc->Name] = durability_note(sc);
    for (const auto& f : subjects_of(sc)) r.filters.emplace_back(sc->Name, f);
  }
  for (const auto& st : streams) {
    auto it = existing.find(st.name);
    if (it != existing.end()) {
      std::string d = stream_differences(st, it->second);
      r.lines.push_back("NATS stream " + st.name + " exists (subjects [" + comma_list(subjects_of(it->second)) + "])" +
                        (d.empty() ? "" : "; left as it is, it differs from the settings: " + d));
    } else {
      r.lines.push_back(fmt::format("NATS stream {} does not exist: would be created (subjects [{}], {} storage, "
                                    "{} replicas, duplicate window {} ms)",
                                    st.name, comma_list(st.subjects), st.storage, st.replicas, st.duplicate_window_ms));
      r.durability[st.name] = durability_note(st);
      for (const auto& f : st.subjects) r.filters.emplace_back(st.name, f);
    }
  }
  if (list != nullptr) jsStreamInfoList_Destroy(list);
  return r;
}

StreamCapture capture_of(const StreamFilters& filters, const std::string& prefix) {
  StreamCapture c;
  c.pattern = prefix + ">";
  // A prefix not ending in '.' shares its last token with the routing key: only whether some
  // stream could take a subject that starts with it can be told then.
  if (!prefix.empty() && prefix.back() != '.') {
    bool some = std::any_of(filters.begin(), filters.end(),
                            [&](const auto& nf) { return filter_may_take_prefix(nf.second, prefix); });
    c.state = some ? StreamCapture::State::Unknown : StreamCapture::State::None;
    return c;
  }
  for (const auto& [name, f] : filters) {
    if (filter_covers(f, c.pattern)) c.whole.push_back(name + " (" + f + ")");
    else if (filters_overlap(f, c.pattern)) c.part.push_back(name + " (" + f + ")");
  }
  c.state = !c.whole.empty()  ? StreamCapture::State::Whole
            : !c.part.empty() ? StreamCapture::State::Part
                              : StreamCapture::State::None;
  return c;
}

std::string no_stream_text(const std::string& prefix) {
  // "evts>" is no subject filter: a prefix that ends inside a token is best given its '.'.
  if (!prefix.empty() && prefix.back() != '.')
    return "no JetStream stream's subjects could start with --nats-subject-prefix \"" + prefix + "\" (subjects " +
           prefix + "<routing key>): every event sent to NATS would be refused -- fix: end the prefix with a '.' "
           "(--nats-subject-prefix \"" + prefix + ".\") and declare a stream capturing " + prefix +
           ".> in the config file ([[jetstream.streams]] name = \"OUTBOX\", subjects = [\"" + prefix +
           ".>\"]: the relay creates it), or create one on the server";
  std::string pattern = prefix + ">";
  return "no JetStream stream captures the subjects of --nats-subject-prefix \"" + prefix + "\" (" + pattern +
         "): every event sent to NATS would be refused -- fix: declare a stream in the config file ([[jetstream.streams]] "
         "name = \"OUTBOX\", subjects = [\"" + pattern + "\"]: the relay creates it), or create one capturing " + pattern +
         " on the server, or give the --nats-subject-prefix a stream captures";
}

}  // namespace outbox
