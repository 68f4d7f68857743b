#include "sinks/nats/sink.h"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "sinks/event_metadata.h"
#include "support/mask.h"

namespace outbox {

namespace {

// Callbacks carry a connection id, not a pointer: a callback still running on a nats.c thread
// after close() (subscription threads are detached) or one from an earlier connection looks its
// sink up here and finds nothing. Unregistering takes the lock, so it waits for a running one.
std::mutex g_registry_mu;
std::map<std::uint64_t, NatsSink*> g_registry;
std::uint64_t g_next_id = 0;

void* id_closure(std::uint64_t id) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)); }
std::uint64_t closure_id(void* c) { return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(c)); }

void on_pub_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  {
    std::lock_guard<std::mutex> g(g_registry_mu);
    auto it = g_registry.find(closure_id(closure));
    if (it != g_registry.end()) {
      if (pa != nullptr)
        it->second->on_ack(msg, true, pa->Duplicate, NATS_OK, 0, nullptr);
      else if (pae != nullptr)
        it->second->on_ack(msg, false, false, pae->Err, pae->ErrCode, pae->ErrText);
    }
  }
  natsMsg_Destroy(msg);  // ours once the handler is called
}

std::string last_error_of(natsConnection* nc) {
  const char* txt = nullptr;
  if (nc != nullptr && natsConnection_GetLastError(nc, &txt) != NATS_OK && txt != nullptr && *txt) return txt;
  return "";
}

void on_disconnected(natsConnection* nc, void* closure) {
  std::string why = last_error_of(nc);
  std::lock_guard<std::mutex> g(g_registry_mu);
  auto it = g_registry.find(closure_id(closure));
  if (it != g_registry.end()) it->second->on_lost("connection lost" + (why.empty() ? "" : ": " + why));
}

void on_closed(natsConnection* nc, void* closure) {
  std::string why = last_error_of(nc);
  std::lock_guard<std::mutex> g(g_registry_mu);
  auto it = g_registry.find(closure_id(closure));
  if (it != g_registry.end()) it->second->on_lost("connection closed" + (why.empty() ? "" : ": " + why));
}

void on_async_error(natsConnection* nc, natsSubscription*, natsStatus s, void* closure) {
  std::string text = last_error_of(nc);
  if (text.empty()) text = natsStatus_GetText(s);
  if (s == NATS_NOT_PERMITTED) {
    // A publish the server denied gets no ack, ever: refuse it here (or break the connection).
    std::lock_guard<std::mutex> g(g_registry_mu);
    auto it = g_registry.find(closure_id(closure));
    if (it != g_registry.end()) it->second->on_permission_violation(text);
    return;
  }
  spdlog::warn("NATS: asynchronous error: {}", text);
}

std::string lib_error(natsStatus s) {  // unmasked: NatsSink::err() masks
  natsStatus ls = NATS_OK;
  const char* t = nats_GetLastError(&ls);
  std::string text = (t != nullptr && *t) ? t : natsStatus_GetText(s);
  return text;
}

bool contains_ci(const std::string& hay, const char* needle) {
  std::string h = hay, n = needle;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return h.find(n) != std::string::npos;
}

SinkErrorKind classify(natsStatus s, const std::string& text) {
  if (s == NATS_CONNECTION_AUTH_FAILED || contains_ci(text, "authorization violation") ||
      contains_ci(text, "authentication"))
    return SinkErrorKind::Auth;
  // nats.c reports a failed verification as "SSL handshake error: <X509 verify code>:<reason>:depth=...".
  static const std::string handshake = "SSL handshake error: ";
  std::size_t h = text.find(handshake);
  if ((h != std::string::npos && h + handshake.size() < text.size() && std::isdigit(static_cast<unsigned char>(text[h + handshake.size()]))) ||
      contains_ci(text, "certificate verify failed") || contains_ci(text, "hostname mismatch"))
    return SinkErrorKind::Tls;
  if (s == NATS_SECURE_CONNECTION_REQUIRED || s == NATS_SECURE_CONNECTION_WANTED || s == NATS_ADDRESS_MISSING)
    return SinkErrorKind::Config;
  return SinkErrorKind::Retryable;
}

int kind_rank(SinkErrorKind k) {
  switch (k) {
    case SinkErrorKind::Tls: return 3;
    case SinkErrorKind::Auth: return 2;
    case SinkErrorKind::Config: return 1;
    case SinkErrorKind::Retryable: return 0;
  }
  return 0;
}

// nats://[user[:pass]@]host[:port] or tls://...; returns the problem, "" when usable.
std::string url_problem(const std::string& url, bool& tls) {
  std::size_t sep = url.find("://");
  if (sep == std::string::npos) return "no scheme (nats:// or tls://)";
  std::string scheme = url.substr(0, sep);
  if (scheme != "nats" && scheme != "tls") return "scheme \"" + scheme + "\" is not nats:// or tls://";
  tls = scheme == "tls";
  std::string rest = url.substr(sep + 3);
  std::size_t at = rest.rfind('@');
  std::string hostport = at == std::string::npos ? rest : rest.substr(at + 1);
  if (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  if (hostport.empty()) return "no host";
  if (hostport.find_first_of("/?# \t") != std::string::npos) return "unexpected characters after host:port";
  std::size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    std::string port = hostport.substr(colon + 1);
    if (colon == 0) return "no host";
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoi(port) == 0 || std::stoi(port) > 65535)
      return "port \"" + port + "\" is not a number from 1 to 65535";
  }
  return "";
}

// The host of a URL url_problem() accepted ("" for an IP literal: nats.c checks DNS names only).
std::string url_host(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  std::size_t at = rest.rfind('@');
  std::string hp = at == std::string::npos ? rest : rest.substr(at + 1);
  if (!hp.empty() && hp.back() == '/') hp.pop_back();
  if (!hp.empty() && hp.front() == '[') return "";
  std::string host = hp.substr(0, hp.rfind(':') == std::string::npos ? hp.size() : hp.rfind(':'));
  bool ip = !host.empty() && host.find_first_not_of("0123456789.") == std::string::npos;
  return ip ? "" : host;
}

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

std::vector<std::string> split_tokens(const std::string& s) {
  std::vector<std::string> t;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    t.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return t;
}

// Every subject `pattern` matches is matched by `filter` (both may hold * and >).
bool covers(const std::string& filter, const std::string& pattern) {
  auto f = split_tokens(filter), p = split_tokens(pattern);
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == ">") return i < p.size();
    if (i >= p.size() || p[i] == ">") return false;
    if (f[i] == "*") continue;
    if (f[i] != p[i] || p[i] == "*") return false;
  }
  return f.size() == p.size();
}

// Some subject matches both.
bool overlaps(const std::string& a, const std::string& b) {
  auto x = split_tokens(a), y = split_tokens(b);
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (x[i] == ">" || y[i] == ">") return true;
    if (x[i] == "*" || y[i] == "*" || x[i] == y[i]) continue;
    return false;
  }
  return x.size() == y.size();
}

// Which streams capture the subjects an event can go to (the prefix followed by anything).
struct Capture {
  enum class State { Whole, Part, None, Unknown } state = State::None;
  std::string pattern;                // prefix + ">"
  std::vector<std::string> whole, part;  // "STREAM (filter)"
};

Capture capture_of(const std::vector<std::pair<std::string, std::string>>& filters, const std::string& prefix) {
  Capture c;
  c.pattern = prefix + ">";
  // A prefix not ending in '.' shares its last token with the routing key: only "no stream at
  // all" can be told then.
  if (!prefix.empty() && prefix.back() != '.') {
    c.state = filters.empty() ? Capture::State::None : Capture::State::Unknown;
    return c;
  }
  for (const auto& [name, f] : filters) {
    if (covers(f, c.pattern)) c.whole.push_back(name + " (" + f + ")");
    else if (overlaps(f, c.pattern)) c.part.push_back(name + " (" + f + ")");
  }
  c.state = !c.whole.empty() ? Capture::State::Whole : !c.part.empty() ? Capture::State::Part : Capture::State::None;
  return c;
}

// The configuration error of a NATS sink whose subjects no stream captures.
std::string no_stream_text(const std::string& prefix) {
  std::string pattern = prefix + ">";
  return "no JetStream stream captures the subjects of --nats-subject-prefix \"" + prefix + "\" (" + pattern +
         "): every event sent to NATS would be refused -- fix: declare a stream in the config file ([[jetstream.streams]] "
         "name = \"OUTBOX\", subjects = [\"" + pattern + "\"]: the relay creates it), or create one capturing " + pattern +
         " on the server, or give the --nats-subject-prefix a stream captures";
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::vector<std::string> subjects_of(const jsStreamConfig* c) {
  std::vector<std::string> v;
  for (int i = 0; c != nullptr && i < c->SubjectsLen; ++i) v.emplace_back(c->Subjects[i]);
  return v;
}

// What differs between the settings and a stream that exists ("" when nothing).
std::string stream_differences(const NatsSink::Stream& want, const jsStreamConfig* have) {
  std::vector<std::string> d;
  auto subj = subjects_of(have);
  auto a = want.subjects, b = subj;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a != b) d.push_back("subjects [" + join(subj) + "] (settings: [" + join(want.subjects) + "])");
  std::string storage = have->Storage == js_MemoryStorage ? "memory" : "file";
  if (storage != want.storage) d.push_back("storage " + storage + " (settings: " + want.storage + ")");
  if (have->Replicas != want.replicas)
    d.push_back(fmt::format("replicas {} (settings: {})", have->Replicas, want.replicas));
  if (have->Duplicates != want.duplicate_window_ms * 1000000)
    d.push_back(fmt::format("duplicate window {} ms (settings: {} ms)", have->Duplicates / 1000000,
                            want.duplicate_window_ms));
  return join(d);
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
std::string durability_note(const NatsSink::Stream& st) { return durability_note(st.storage == "memory", st.replicas); }

void warn_durability(const std::string& stream, const std::string& note) {
  if (!note.empty()) spdlog::warn("NATS stream {}: {}", stream, note);
}

std::string header_value_text(const HeaderValue& v) {
  switch (v.kind) {
    case HeaderValue::Kind::String: return v.s;
    case HeaderValue::Kind::Int: return std::to_string(v.i);
    case HeaderValue::Kind::Double: return fmt::format("{}", v.d);
    case HeaderValue::Kind::Bool: return v.b ? "true" : "false";
    case HeaderValue::Kind::Null: return "";
  }
  return "";
}

bool is_ctl_or_space(unsigned char c) { return c <= 0x20 || c == 0x7f; }

// The secrets of a URL: the password of user:pass@, or the token of token@ (NATS token auth).
std::vector<std::string> url_secrets(const std::string& url) {
  std::size_t sep = url.find("://");
  if (sep == std::string::npos) return {};
  // To the last '@' of the URL, as url_problem() and mask_url read it (a password may hold '/').
  std::string rest = url.substr(sep + 3);
  std::size_t at = rest.rfind('@');
  if (at == std::string::npos) return {};
  std::string userinfo = rest.substr(0, at);
  std::size_t colon = userinfo.find(':');
  std::string secret = colon == std::string::npos ? userinfo : userinfo.substr(colon + 1);
  if (secret.empty()) return {};
  return {secret};
}

}  // namespace

NatsSink::NatsSink(Options o) : o_(std::move(o)) {
  for (const auto& u : o_.urls)
    for (auto& x : url_secrets(u)) secrets_.push_back(x);
  for (const auto& u : o_.urls) masked_urls_.push_back(mask(mask_url(u)));
  if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0)
    throw SinkError(std::string("NATS sink: pipe: ") + std::strerror(errno));
}

NatsSink::~NatsSink() {
  close();
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

std::string NatsSink::mask(std::string text) const { return mask_secrets(std::move(text), secrets_); }

std::string NatsSink::err(int status) const { return mask(mask_text(lib_error(static_cast<natsStatus>(status)))); }

std::string NatsSink::subject_for(const Event& ev) const {
  return o_.subject_prefix + (ev.routing_key ? *ev.routing_key : default_routing_key(ev));
}

void NatsSink::connect_(natsConnection** out_nc, jsCtx** out_js, std::uint64_t id) {
  if (o_.urls.empty()) throw SinkError("NATS: no server URL configured", SinkErrorKind::Config);
  for (const auto& st : o_.streams) {
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
  bool any_tls = false, any_plain = false;
  for (std::size_t i = 0; i < o_.urls.size(); ++i) {
    bool tls = false;
    std::string p = url_problem(o_.urls[i], tls);
    if (!p.empty()) throw SinkError("NATS URL " + masked_urls_[i] + ": " + p, SinkErrorKind::Config);
    (tls ? any_tls : any_plain) = true;
  }
  if (any_tls && any_plain)
    throw SinkError("NATS URLs mix tls:// and nats://: use one scheme for the servers of one cluster",
                    SinkErrorKind::Config);
  for (const auto* f : {&o_.tls.cacert, &o_.tls.cert, &o_.tls.key})
    if (!f->empty() && !readable(*f))
      throw SinkError("NATS TLS file " + *f + " is not readable: " + std::strerror(errno), SinkErrorKind::Config);
  if (o_.tls.cert.empty() != o_.tls.key.empty())
    throw SinkError("NATS TLS: a client certificate needs both cert and key", SinkErrorKind::Config);

  std::string reasons;
  SinkErrorKind worst = SinkErrorKind::Retryable;
  for (std::size_t i = 0; i < o_.urls.size(); ++i) {
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s != NATS_OK) throw SinkError("NATS: cannot create options: " + err(s));
    struct OptsGuard {
      natsOptions* o;
      ~OptsGuard() { natsOptions_Destroy(o); }
    } guard{opts};
    s = natsOptions_SetURL(opts, o_.urls[i].c_str());
    if (s != NATS_OK)
      throw SinkError("NATS URL " + masked_urls_[i] + ": " + err(s), SinkErrorKind::Config);
    natsOptions_SetName(opts, o_.name.c_str());
    natsOptions_SetTimeout(opts, o_.connect_timeout_ms);
    natsOptions_SetAllowReconnect(opts, false);  // the relay reconnects (and re-reads the slot)
    natsOptions_SetNoRandomize(opts, true);
    natsOptions_SetIgnoreDiscoveredServers(opts, true);
    natsOptions_SetPingInterval(opts, 10000);
    natsOptions_SetMaxPingsOut(opts, 3);
    natsOptions_SetClosedCB(opts, on_closed, id_closure(id));
    natsOptions_SetDisconnectedCB(opts, on_disconnected, id_closure(id));
    natsOptions_SetErrorHandler(opts, on_async_error, id_closure(id));
    // A write the server does not take within this long shuts the socket (a lost connection):
    // bounds how long the writer thread, and close(), can wait for a silent server.
    natsOptions_SetWriteDeadline(opts, kWriteDeadlineMs);
    if (any_tls) {
      natsOptions_SetSecure(opts, true);
      // nats.c checks the certificate's name only when told which (unless built to force it).
      std::string host = url_host(o_.urls[i]);
      if (!host.empty()) natsOptions_SetExpectedHostname(opts, host.c_str());
    }
    if (!o_.tls.cacert.empty()) {
      s = natsOptions_LoadCATrustedCertificates(opts, o_.tls.cacert.c_str());
      if (s != NATS_OK)
        throw SinkError("NATS TLS CA file " + o_.tls.cacert + ": " + err(s), SinkErrorKind::Config);
    }
    if (!o_.tls.cert.empty()) {
      s = natsOptions_LoadCertificatesChain(opts, o_.tls.cert.c_str(), o_.tls.key.c_str());
      if (s != NATS_OK)
        throw SinkError("NATS TLS client certificate " + o_.tls.cert + " / " + o_.tls.key + ": " + err(s),
                        SinkErrorKind::Config);
    }
    natsConnection* nc = nullptr;
    s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK) {
      std::string why = err(s);
      SinkErrorKind k = classify(s, why);
      if (kind_rank(k) > kind_rank(worst)) worst = k;
      reasons += (reasons.empty() ? "" : "; ") + masked_urls_[i] + ": " + why;
      if (o_.urls.size() > 1)
        spdlog::warn("NATS server {} of {} ({}): {}", i + 1, o_.urls.size(), masked_urls_[i], why);
      continue;
    }
    if (natsConnection_HasHeaderSupport(nc) != NATS_OK) {
      natsConnection_Destroy(nc);
      throw SinkError("NATS server " + masked_urls_[i] + " does not support headers (needs 2.2 or later)",
                      SinkErrorKind::Config);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = o_.connect_timeout_ms;
    // Far above any window: js_PublishMsgAsync never stalls waiting for acks.
    jo.PublishAsync.MaxPending = 1 << 24;
    jo.PublishAsync.StallWait = 1;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = id_closure(id);
    jsCtx* js = nullptr;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
      natsConnection_Destroy(nc);
      throw SinkError("NATS: JetStream context: " + err(s));
    }
    jsAccountInfo* ai = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_GetAccountInfo(&ai, js, nullptr, &jerr);
    if (s != NATS_OK) {
      std::string why = s == NATS_NO_RESPONDERS ? "JetStream is not enabled on this server (nats-server -js)"
                                                : "JetStream account info: " + err(s);
      jsCtx_Destroy(js);
      natsConnection_Destroy(nc);
      reasons += (reasons.empty() ? "" : "; ") + masked_urls_[i] + ": " + why;
      continue;
    }
    jsAccountInfo_Destroy(ai);
    if (o_.urls.size() > 1) spdlog::info("connected to NATS server {} of {} at {}", i + 1, o_.urls.size(), masked_urls_[i]);
    *out_nc = nc;
    *out_js = js;
    return;
  }
  throw SinkError("cannot connect to NATS: " + reasons, worst);
}

void NatsSink::open(bool started) {
  close();
  std::uint64_t id;
  {
    std::lock_guard<std::mutex> g(g_registry_mu);
    id = ++g_next_id;
    g_registry[id] = this;
  }
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  try {
    connect_(&nc, &js, id);
  } catch (...) {
    std::lock_guard<std::mutex> g(g_registry_mu);
    g_registry.erase(id);
    throw;
  }
  conn_ = nc;
  js_ = js;
  conn_id_ = id;
  broken_reason_.clear();
  max_payload_ = natsConnection_GetMaxPayload(nc);
  char buf[1024] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof buf) == NATS_OK) node_ = mask(mask_url(buf));
  try {
    ensure_streams(started);
    check_capture(started);
  } catch (...) {
    close();
    throw;
  }
  progress_at_ = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = false;
  }
  sender_ = std::thread([this] { send_loop(); });
  spdlog::info("connected to NATS at {} (JetStream, max payload {} bytes)", node_, max_payload_);
}

void NatsSink::ensure_streams(bool started) {
  for (const auto& st : o_.streams) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js_, st.name.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
      std::string d = stream_differences(st, si->Config);
      if (!d.empty())
        spdlog::info("NATS stream {} exists and is left as it is; it differs from the settings: {}", st.name, d);
      if (!started) warn_durability(st.name, durability_note(si->Config));
      jsStreamInfo_Destroy(si);
      continue;
    }
    if (jerr != JSStreamNotFoundErr)
      throw SinkError("NATS: cannot read stream " + st.name + ": " + err(s));
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = st.name.c_str();
    std::vector<const char*> subj;
    for (const auto& x : st.subjects) subj.push_back(x.c_str());
    cfg.Subjects = subj.data();
    cfg.SubjectsLen = static_cast<int>(subj.size());
    cfg.Storage = st.storage == "memory" ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = st.replicas;
    cfg.Duplicates = st.duplicate_window_ms * 1000000;
    s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    if (s != NATS_OK) {
      std::string why = fmt::format("NATS: cannot create stream {} (subjects [{}]): {} (JetStream error {})", st.name,
                                    join(st.subjects), err(s), static_cast<int>(jerr));
      if (!started) throw SinkError(why, jerr != 0 ? SinkErrorKind::Config : SinkErrorKind::Retryable);
      spdlog::error("{}", why);
      continue;
    }
    jsStreamInfo_Destroy(si);
    spdlog::info("created NATS stream {} (subjects [{}], {} storage, {} replicas, duplicate window {} ms)", st.name,
                 join(st.subjects), st.storage, st.replicas, st.duplicate_window_ms);
    if (!started) warn_durability(st.name, durability_note(st));
  }
}

void NatsSink::check_capture(bool started) {
  jsStreamInfoList* list = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Streams(&list, js_, nullptr, &jerr);
  if (s != NATS_OK && s != NATS_NOT_FOUND) throw SinkError("NATS: cannot list streams: " + err(s));
  std::vector<std::pair<std::string, std::string>> filters;
  for (int i = 0; s == NATS_OK && i < list->Count; ++i)
    for (const auto& f : subjects_of(list->List[i]->Config)) filters.emplace_back(list->List[i]->Config->Name, f);
  if (list != nullptr) jsStreamInfoList_Destroy(list);
  Capture c = capture_of(filters, o_.subject_prefix);
  {
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& [name, f] : filters) filters_seen_.insert(f);
    prefix_captured_ = c.state != Capture::State::None;
  }
  if (c.state == Capture::State::None) {
    // At start a mistake in the settings (exit 2, as a missing default exchange); once running
    // the stream was deleted: the events wait for it (Refusal::DestinationMissing).
    if (!started) throw SinkError(no_stream_text(o_.subject_prefix), SinkErrorKind::Config);
    spdlog::error("NATS: {}; its events wait until one does", no_stream_text(o_.subject_prefix));
  } else if (c.state == Capture::State::Part && !started) {
    spdlog::warn("NATS subjects {} are captured only in part, by stream {}: an event whose subject no stream captures "
                 "is refused, retried, then a dead letter",
                 c.pattern, join(c.part));
  }
}

std::vector<std::string> NatsSink::check() {
  std::vector<std::string> lines;
  natsConnection* nc = conn_;
  jsCtx* js = js_;
  bool temp = conn_ == nullptr;
  if (temp) {
    // No callbacks are registered for this id: the temporary connection reports nothing.
    std::uint64_t id;
    {
      std::lock_guard<std::mutex> g(g_registry_mu);
      id = ++g_next_id;
    }
    connect_(&nc, &js, id);
  }
  struct Cleanup {
    bool temp;
    natsConnection* nc;
    jsCtx* js;
    ~Cleanup() {
      if (!temp) return;
      jsCtx_Destroy(js);
      natsConnection_Destroy(nc);
    }
  } cleanup{temp, nc, js};
  char buf[1024] = {0};
  natsConnection_GetConnectedUrl(nc, buf, sizeof buf);
  lines.push_back("NATS: connected to " + mask(mask_url(buf)) + " (JetStream enabled)");

  // Every stream's subjects (existing ones as they are, configured missing ones as they would be).
  std::vector<std::pair<std::string, std::string>> filters;  // stream, subject filter
  jsStreamInfoList* list = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Streams(&list, js, nullptr, &jerr);
  std::map<std::string, const jsStreamConfig*> existing;
  std::map<std::string, std::string> durability;  // stream -> note, as it is or would be created
  if (s == NATS_OK) {
    for (int i = 0; i < list->Count; ++i) {
      const jsStreamConfig* c = list->List[i]->Config;
      existing[c->Name] = c;
      durability[c->Name] = durability_note(c);
      for (const auto& f : subjects_of(c)) filters.emplace_back(c->Name, f);
    }
  } else if (s != NATS_NOT_FOUND) {
    throw SinkError("NATS: cannot list streams: " + err(s));
  }
  for (const auto& st : o_.streams) {
    auto it = existing.find(st.name);
    if (it != existing.end()) {
      std::string d = stream_differences(st, it->second);
      lines.push_back("NATS stream " + st.name + " exists (subjects [" + join(subjects_of(it->second)) + "])" +
                      (d.empty() ? "" : "; left as it is, it differs from the settings: " + d));
    } else {
      lines.push_back(fmt::format("NATS stream {} does not exist: would be created (subjects [{}], {} storage, "
                                  "{} replicas, duplicate window {} ms)",
                                  st.name, join(st.subjects), st.storage, st.replicas, st.duplicate_window_ms));
      durability[st.name] = durability_note(st);
      for (const auto& f : st.subjects) filters.emplace_back(st.name, f);
    }
  }
  if (list != nullptr) jsStreamInfoList_Destroy(list);

  Capture c = capture_of(filters, o_.subject_prefix);
  if (c.state == Capture::State::None) throw SinkError(no_stream_text(o_.subject_prefix), SinkErrorKind::Config);
  if (c.state == Capture::State::Unknown) {
    lines.push_back("NATS subject prefix \"" + o_.subject_prefix +
                    "\" does not end with '.': cannot tell which stream captures it");
    return lines;
  }
  std::set<std::string> capturing;
  for (const auto& [name, f] : filters)
    if (overlaps(f, c.pattern)) capturing.insert(name);
  for (const auto& name : capturing)
    if (!durability[name].empty()) lines.push_back("NATS stream " + name + ": " + durability[name]);
  if (c.state == Capture::State::Whole)
    lines.push_back("NATS subjects " + c.pattern + " are captured by stream " + join(c.whole));
  else
    lines.push_back("NATS subjects " + c.pattern + " are captured only in part, by stream " + join(c.part) +
                    ": a publish to a subject no stream captures is refused");
  return lines;
}

void NatsSink::close() {
  if (conn_ == nullptr) return;
  // Stop the writer (it may be blocked in a write to a silent server until the write deadline:
  // closing the connection waits for it), stop reading; then no callback of this connection can
  // reach us (unregistering waits for one that is running); then free the library's objects,
  // then drop what was queued.
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  natsConnection_Close(conn_);
  if (sender_.joinable()) sender_.join();
  {
    std::lock_guard<std::mutex> g(g_registry_mu);
    g_registry.erase(conn_id_);
  }
  jsCtx_Destroy(js_);
  natsConnection_Destroy(conn_);
  js_ = nullptr;
  conn_ = nullptr;
  node_.clear();
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto* u : unsent_) natsMsg_Destroy(u);
    unsent_.clear();
    unsent_bytes_ = 0;
    inflight_.clear();  // the library destroyed the messages it still held
    queue_.clear();
    lost_.clear();
    progressed_ = false;
  }
  char drain[256];
  while (::read(pipe_[0], drain, sizeof drain) > 0) {
  }
}

void NatsSink::wake() {
  char b = 1;
  ssize_t r = ::write(pipe_[1], &b, 1);
  (void)r;  // EAGAIN: the pipe is full, hence readable anyway
}

void NatsSink::on_ack(natsMsg* msg, bool ok, bool duplicate, int status, int err_code, const char* err_text) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = inflight_.find(msg);
    if (it == inflight_.end()) return;
    std::uint64_t ticket = it->second;
    inflight_.erase(it);
    progressed_ = true;
    const char* subj = natsMsg_GetSubject(msg);
    if (ok) {
      BrokerOutcome o;
      o.kind = BrokerOutcome::Kind::Confirmed;
      o.ticket = ticket;
      o.duplicate = duplicate;
      queue_.push_back(std::move(o));
    } else if (status == NATS_NO_RESPONDERS) {
      BrokerOutcome o;
      o.kind = BrokerOutcome::Kind::Refused;
      o.ticket = ticket;
      std::string subject = subj ? subj : "?";
      bool was_captured = false;
      for (const auto& f : filters_seen_)
        if (subj && covers(f, subject)) was_captured = true;
      // A subject a stream captured once, or a sink none of whose subjects a stream captures:
      // the stream is gone (deleted, or its JetStream has no leader), not the event's fault.
      // Else the event's routing key leads where no stream was meant to capture: refused.
      if (was_captured || !prefix_captured_) {
        o.why = Refusal::DestinationMissing;
        o.reply = "no JetStream stream captures subject " + subject +
                  (was_captured ? " any more (a stream captured it before: deleted?)"
                                : ", nor any subject of " + o_.subject_prefix + ">") +
                  " -- fix: create the stream again ([[jetstream.streams]] in the config file, which the relay "
                  "creates at its next connect, or a stream capturing " + o_.subject_prefix + "> on the server)";
      } else {
        o.why = Refusal::Returned;
        o.reply = "no JetStream stream captures subject " + subject;
      }
      queue_.push_back(std::move(o));
    } else if (status == NATS_ERR && err_code != 0) {
      BrokerOutcome o;
      o.kind = BrokerOutcome::Kind::Refused;
      o.ticket = ticket;
      o.why = Refusal::Nacked;
      o.reply = fmt::format("JetStream error {}: {}", err_code, err_text ? err_text : "");
      queue_.push_back(std::move(o));
    } else {
      // A timeout or a lost connection: the message's fate is unknown.
      if (lost_.empty())
        lost_ = fmt::format("no JetStream ack for a message to {}: {}", subj ? subj : "?",
                            err_text ? err_text : natsStatus_GetText(static_cast<natsStatus>(status)));
    }
  }
  wake();
}

void NatsSink::on_permission_violation(const std::string& text) {
  // "Permissions Violation for Publish to "<subject>"": every message to that subject is denied
  // (one -ERR each); the oldest one in flight to it is the one this error is about.
  static const std::string pub = "Publish to \"";
  std::size_t p = text.find(pub);
  std::string subject;
  if (p != std::string::npos) {
    std::size_t end = text.find('"', p + pub.size());
    if (end != std::string::npos) subject = text.substr(p + pub.size(), end - p - pub.size());
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    auto best = inflight_.end();
    if (!subject.empty())
      for (auto it = inflight_.begin(); it != inflight_.end(); ++it) {
        const char* s = natsMsg_GetSubject(it->first);  // alive while in inflight_ (under mu_)
        if (s != nullptr && subject == s && (best == inflight_.end() || it->second < best->second)) best = it;
      }
    if (best != inflight_.end()) {
      // nats.c keeps the message in its pending map (no ack will remove it): not ours to free.
      BrokerOutcome o;
      o.kind = BrokerOutcome::Kind::Refused;
      o.ticket = best->second;
      o.why = Refusal::Nacked;
      o.reply = mask("NATS: " + text);
      inflight_.erase(best);
      progressed_ = true;
      queue_.push_back(std::move(o));
    } else if (lost_.empty()) {
      // Not a publish of ours (the reply inbox, the JetStream API): no ack can come.
      lost_ = mask("NATS " + text);
    }
  }
  wake();
}

void NatsSink::on_lost(const std::string& why) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (lost_.empty()) lost_ = mask("NATS " + why);
  }
  wake();
}

std::optional<std::string> NatsSink::validate_subject(const std::string& subject, const Event& ev) const {
  std::string from = ev.routing_key ? "routing_key" : "aggregate_type/event_type (the default routing key)";
  auto bad = [&](const std::string& what) {
    std::string shown = subject.size() > 200 ? subject.substr(0, 200) + "..." : subject;
    return std::optional<std::string>("NATS subject \"" + shown + "\" from " + from + ": " + what);
  };
  if (subject.empty()) return bad("empty");
  if (subject.size() > kMaxSubject)
    return bad(fmt::format("{} bytes, more than the {} a subject may have", subject.size(), kMaxSubject));
  for (unsigned char c : subject)
    if (is_ctl_or_space(c)) return bad(fmt::format("holds whitespace or a control character (0x{:02x})", c));
  for (const auto& t : split_tokens(subject)) {
    if (t.empty()) return bad("an empty token (\"..\", or a leading or trailing '.')");
    if (t == "*" || t == ">") return bad("the wildcard token \"" + t + "\" (wildcards cannot be published to)");
  }
  // $JS.API.STREAM.PURGE.X, $KV..., $SYS..., _INBOX...: a request to the server, or a reply to
  // someone, with the relay's rights. An event must never reach them, whatever the prefix.
  if (subject[0] == '$' || subject.rfind("_INBOX.", 0) == 0)
    return bad("starts with '$' or \"_INBOX.\" (the server's API and reply subjects)");
  return std::nullopt;
}

std::optional<std::string> NatsSink::publish(std::uint64_t ticket, const Event& ev) {
  if (conn_ == nullptr) throw SinkError("NATS: not connected");
  if (!broken_reason_.empty()) throw SinkError(broken_reason_);
  if (!ev.invalid.empty()) return ev.invalid;

  std::string subject = subject_for(ev);
  if (auto p = validate_subject(subject, ev)) return p;

  std::vector<std::pair<std::string, std::string>> hdrs;
  hdrs.reserve(ev.headers.size() + 10);
  if (auto p = reserved_header_problem(ev)) return "headers: " + *p;
  for (const auto& h : ev.headers) {
    for (unsigned char c : h.name)
      if (c == ':' || is_ctl_or_space(c))
        return "headers: header name \"" + h.name + "\" holds ':', whitespace or a control character";
    if (h.name.size() >= 5 && strncasecmp(h.name.c_str(), "nats-", 5) == 0)
      return "headers: header \"" + h.name + "\" uses the prefix Nats- (reserved for the NATS server's own headers)";
    hdrs.emplace_back(h.name, header_value_text(h.value));
  }
  if (!ev.id.empty()) hdrs.emplace_back("Nats-Msg-Id", ev.id);
  if (!ev.id.empty()) hdrs.emplace_back("x-outbox-event-id", ev.id);
  hdrs.emplace_back("x-outbox-event-type", ev.event_type);
  if (ev.correlation_id) hdrs.emplace_back("x-outbox-correlation-id", *ev.correlation_id);
  for (const auto& m : outbox_metadata(ev)) hdrs.emplace_back(m.name, header_value_text(m.value));

  std::size_t hdr_bytes = 12;  // "NATS/1.0\r\n" ... "\r\n"
  for (const auto& [k, v] : hdrs) {
    if (v.find_first_of("\r\n") != std::string::npos) {
      std::string field = k.rfind("x-outbox-", 0) == 0 || k == "Nats-Msg-Id" ? "the value of " + k
                                                                             : "header \"" + k + "\"";
      return "headers: " + field + " holds a CR or LF";
    }
    hdr_bytes += k.size() + v.size() + 4;
  }
  if (static_cast<std::int64_t>(ev.payload.size() + hdr_bytes) > max_payload_)
    return fmt::format("payload: {} bytes with {} bytes of headers, more than the server's max_payload of {}",
                       ev.payload.size(), hdr_bytes, max_payload_);

  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, ev.payload.data(), static_cast<int>(ev.payload.size()));
  if (s != NATS_OK) return "NATS message: " + err(s);
  for (const auto& [k, v] : hdrs) {
    s = natsMsgHeader_Add(m, k.c_str(), v.c_str());
    if (s != NATS_OK) {
      natsMsg_Destroy(m);
      return "headers: header \"" + k + "\": " + err(s);
    }
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    if (inflight_.empty()) progress_at_ = std::chrono::steady_clock::now();
    inflight_[m] = ticket;  // before the write: the ack may come first
    unsent_.push_back(m);
    unsent_bytes_ += ev.payload.size();
  }
  cv_.notify_one();
  return std::nullopt;
}

// The only caller of js_PublishMsgAsync: nats.c writes to the socket under the connection's lock
// with no deadline of its own once its 32 KiB buffer is full, so a server that stopped reading
// would block the caller as soon as the kernel's buffers are full. Here it blocks this thread
// (at most the write deadline, after which nats.c shuts the socket: a lost connection), never
// the relay's loop.
void NatsSink::send_loop() {
  std::vector<natsMsg*> batch;
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stop_ || !unsent_.empty(); });
    if (stop_) return;
    batch.assign(unsent_.begin(), unsent_.end());
    unsent_.clear();
    l.unlock();
    std::size_t i = 0;
    natsStatus s = NATS_OK;
    for (; i < batch.size(); ++i) {
      natsMsg* m = batch[i];
      std::size_t bytes = static_cast<std::size_t>(natsMsg_GetDataLength(m));
      s = js_PublishMsgAsync(js_, &m, nullptr);
      bool room_again = false;
      {
        std::lock_guard<std::mutex> g(mu_);
        room_again = unsent_bytes_ >= kUnsentHighWater && unsent_bytes_ - std::min(unsent_bytes_, bytes) < kUnsentHighWater;
        unsent_bytes_ -= std::min(unsent_bytes_, bytes);
      }
      if (room_again) wake();  // the loop, held back by writable(), may read the slot again
      if (s != NATS_OK) {
        std::string why = "NATS publish failed: " + err(s);
        // Still ours when the call failed. Its fate, and that of the later ones (not written),
        // is that of the messages in flight: broken() with the next poll().
        l.lock();
        // js_PublishMsgAsync clears its argument when it took the message over: then the
        // library frees it, and only the map entry is ours to drop.
        inflight_.erase(batch[i]);
        if (m) natsMsg_Destroy(m);
        for (std::size_t j = i + 1; j < batch.size(); ++j) {
          inflight_.erase(batch[j]);
          natsMsg_Destroy(batch[j]);
        }
        for (auto* u : unsent_) {
          inflight_.erase(u);
          natsMsg_Destroy(u);
        }
        unsent_.clear();
        unsent_bytes_ = 0;
        if (lost_.empty()) lost_ = why;
        l.unlock();
        wake();
        break;
      }
    }
    batch.clear();
    l.lock();
  }
}

void NatsSink::poll(std::vector<BrokerOutcome>& out) {
  char drain[256];
  while (::read(pipe_[0], drain, sizeof drain) > 0) {
  }
  if (!broken_reason_.empty()) return;
  std::deque<BrokerOutcome> got;
  std::string lost;
  bool progressed;
  std::size_t inflight;
  {
    std::lock_guard<std::mutex> g(mu_);
    got.swap(queue_);
    lost = lost_;
    progressed = std::exchange(progressed_, false);
    inflight = inflight_.size();
  }
  for (auto& o : got) out.push_back(std::move(o));
  auto now = std::chrono::steady_clock::now();
  if (progressed) progress_at_ = now;
  if (!lost.empty()) {
    broken_reason_ = lost;
  } else if (o_.ack_timeout_ms > 0 && inflight > 0 &&
             now - progress_at_ > std::chrono::milliseconds(o_.ack_timeout_ms)) {
    broken_reason_ = fmt::format("NATS: no JetStream ack for {} ms with {} messages in flight", o_.ack_timeout_ms,
                                 inflight);
  }
  if (!broken_reason_.empty()) spdlog::warn("NATS connection to {} broken: {}", node_, broken_reason_);
}

bool NatsSink::has_buffered() const {
  std::lock_guard<std::mutex> g(mu_);
  return !queue_.empty() || (!lost_.empty() && broken_reason_.empty());
}

int NatsSink::tick_ms() const {
  if (o_.ack_timeout_ms <= 0) return 1000;
  return std::max(10, std::min(1000, o_.ack_timeout_ms / 4));
}

bool NatsSink::writable() const {
  std::lock_guard<std::mutex> g(mu_);
  return unsent_bytes_ < kUnsentHighWater;
}

std::size_t NatsSink::in_flight() const {
  std::lock_guard<std::mutex> g(mu_);
  return inflight_.size();
}

}  // namespace outbox
