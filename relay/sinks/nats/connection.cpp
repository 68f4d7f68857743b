#include "sinks/nats/connection.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "sinks/address_rotation.h"
#include "sinks/nats/encoded_message.h"
#include "sinks/nats/message.h"
#include "support/mask.h"

namespace outbox {

namespace {

// Callbacks carry a connection id, not a pointer: a callback still running on a nats.c thread
// after close() (subscription threads are detached) or one from an earlier connection looks its
// connection up here and finds nothing. Unregistering takes the lock, so it waits for a running one.
std::mutex g_registry_mu;
std::map<std::uint64_t, NatsConnection*> g_registry;
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

std::string lib_error(natsStatus s) {  // unmasked: NatsConnection::err() masks
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

// Settings mistakes that no server could fix: SinkError(Config). Returns whether the URLs are tls://.
bool check_urls_and_tls(const std::vector<std::string>& urls, const std::vector<std::string>& masked,
                        const NatsTls& tls) {
  bool any_tls = false, any_plain = false;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    bool secure = false;
    std::string p = url_problem(urls[i], secure);
    if (!p.empty()) throw SinkError("NATS URL " + masked[i] + ": " + p, SinkErrorKind::Config);
    (secure ? any_tls : any_plain) = true;
  }
  if (any_tls && any_plain)
    throw SinkError("NATS URLs mix tls:// and nats://: use one scheme for the servers of one cluster",
                    SinkErrorKind::Config);
  for (const auto* f : {&tls.cacert, &tls.cert, &tls.key})
    if (!f->empty() && !readable(*f))
      throw SinkError("NATS TLS file " + *f + " is not readable: " + std::strerror(errno), SinkErrorKind::Config);
  if (tls.cert.empty() != tls.key.empty())
    throw SinkError("NATS TLS: a client certificate needs both cert and key", SinkErrorKind::Config);
  return any_tls;
}

struct OptionsGuard {
  natsOptions* o = nullptr;
  ~OptionsGuard() { natsOptions_Destroy(o); }
};

void set_callbacks_and_limits(natsOptions* opts, const std::string& name, int connect_timeout_ms, std::uint64_t id) {
  natsOptions_SetName(opts, name.c_str());
  natsOptions_SetTimeout(opts, connect_timeout_ms);
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
  natsOptions_SetWriteDeadline(opts, NatsConnection::kWriteDeadlineMs);
}

}  // namespace

NatsConnection::NatsConnection(std::vector<std::string> urls, std::string subject_prefix, int ack_timeout_ms)
    : urls_(std::move(urls)), subject_prefix_(std::move(subject_prefix)), ack_timeout_ms_(ack_timeout_ms) {
  for (const auto& u : urls_)
    for (auto& x : url_secrets(u)) secrets_.push_back(x);
  for (const auto& u : urls_) masked_urls_.push_back(mask(mask_url(u)));
  if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0)
    throw SinkError(std::string("NATS sink: pipe: ") + std::strerror(errno));
}

NatsConnection::~NatsConnection() {
  close();
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

std::string NatsConnection::mask(std::string text) const { return mask_secrets(std::move(text), secrets_); }

std::string NatsConnection::err(int status) const {
  return mask(mask_text(lib_error(static_cast<natsStatus>(status))));
}

void NatsConnection::connect(const NatsTls& tls, const std::string& name, int connect_timeout_ms, bool report) {
  conn_id_ = connect_servers(tls, name, connect_timeout_ms, report);
  broken_reason_.clear();
  max_payload_ = natsConnection_GetMaxPayload(conn_);
  char buf[1024] = {0};
  if (natsConnection_GetConnectedUrl(conn_, buf, sizeof buf) == NATS_OK) node_ = mask(mask_url(buf));
}

void NatsConnection::use_server(natsOptions* opts, std::size_t i, const NatsTls& tls, bool secure) const {
  natsStatus s = natsOptions_SetURL(opts, urls_[i].c_str());
  if (s != NATS_OK) throw SinkError("NATS URL " + masked_urls_[i] + ": " + err(s), SinkErrorKind::Config);
  if (secure) {
    natsOptions_SetSecure(opts, true);
    // nats.c checks the certificate's name only when told which (unless built to force it).
    std::string host = url_host(urls_[i]);
    if (!host.empty()) natsOptions_SetExpectedHostname(opts, host.c_str());
  }
  if (!tls.cacert.empty()) {
    s = natsOptions_LoadCATrustedCertificates(opts, tls.cacert.c_str());
    if (s != NATS_OK) throw SinkError("NATS TLS CA file " + tls.cacert + ": " + err(s), SinkErrorKind::Config);
  }
  if (!tls.cert.empty()) {
    s = natsOptions_LoadCertificatesChain(opts, tls.cert.c_str(), tls.key.c_str());
    if (s != NATS_OK)
      throw SinkError("NATS TLS client certificate " + tls.cert + " / " + tls.key + ": " + err(s),
                      SinkErrorKind::Config);
  }
}

jsCtx* NatsConnection::jetstream_of(natsConnection* nc, int wait_ms, std::uint64_t id, std::string& why) const {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = wait_ms;
  // Far above any window: js_PublishMsgAsync never stalls waiting for acks.
  jo.PublishAsync.MaxPending = 1 << 24;
  jo.PublishAsync.StallWait = 1;
  jo.PublishAsync.AckHandler = on_pub_ack;
  jo.PublishAsync.AckHandlerClosure = id_closure(id);
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_JetStream(&js, nc, &jo);
  if (s != NATS_OK) {
    why = "NATS: JetStream context: " + err(s);
    return nullptr;
  }
  return js;
}

namespace {

// One id per server tried: a server that connects and is then given up (no header support, no
// JetStream) is destroyed, and nats.c reports its close on a thread of its own, maybe later. Its
// id is unregistered before that, so the report finds nothing, instead of marking the
// connection actually used as lost (seen: a server without JetStream listed first made the next
// one "broken" at its first poll, and so every reconnect).
class Registration {
 public:
  Registration(NatsConnection* c, bool report) {
    std::lock_guard<std::mutex> g(g_registry_mu);
    id_ = ++g_next_id;
    if (report) g_registry[id_] = c;
  }
  ~Registration() { forget(); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  std::uint64_t id() const { return id_; }
  void forget() {  // before the library object of this id is destroyed
    if (settled_) return;
    std::lock_guard<std::mutex> g(g_registry_mu);
    g_registry.erase(id_);
    settled_ = true;
  }
  std::uint64_t keep() {  // the connection is used: it stays registered until close()
    settled_ = true;
    return id_;
  }

 private:
  std::uint64_t id_ = 0;
  bool settled_ = false;  // forgotten or kept
};

}  // namespace

std::uint64_t NatsConnection::connect_servers(const NatsTls& tls, const std::string& name, int connect_timeout_ms,
                                              bool report) {
  bool any_tls = check_urls_and_tls(urls_, masked_urls_, tls);
  std::string reasons;
  SinkErrorKind worst = SinkErrorKind::Retryable;
  for (std::size_t i = 0; i < urls_.size(); ++i) {
    Registration reg(this, report);
    std::uint64_t id = reg.id();
    OptionsGuard opts;
    natsStatus s = natsOptions_Create(&opts.o);
    if (s != NATS_OK) throw SinkError("NATS: cannot create options: " + err(s));
    use_server(opts.o, i, tls, any_tls);
    set_callbacks_and_limits(opts.o, name, connect_timeout_ms, id);
    natsConnection* nc = nullptr;
    s = natsConnection_Connect(&nc, opts.o);
    if (s != NATS_OK) {
      std::string why = err(s);
      worst = most_telling(worst, classify(s, why));
      reasons += (reasons.empty() ? "" : "; ") + masked_urls_[i] + ": " + why;
      if (urls_.size() > 1) spdlog::warn("NATS server {} of {} ({}): {}", i + 1, urls_.size(), masked_urls_[i], why);
      continue;
    }
    if (natsConnection_HasHeaderSupport(nc) != NATS_OK) {
      reg.forget();
      natsConnection_Destroy(nc);
      throw SinkError("NATS server " + masked_urls_[i] + " does not support headers (needs 2.2 or later)",
                      SinkErrorKind::Config);
    }
    std::string no_js;
    jsCtx* js = jetstream_of(nc, connect_timeout_ms, id, no_js);
    if (!js) {
      reg.forget();
      natsConnection_Destroy(nc);
      throw SinkError(no_js);
    }
    jsAccountInfo* ai = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_GetAccountInfo(&ai, js, nullptr, &jerr);
    if (s != NATS_OK) {
      std::string why = s == NATS_NO_RESPONDERS ? "JetStream is not enabled on this server (nats-server -js)"
                                                : "JetStream account info: " + err(s);
      reg.forget();
      jsCtx_Destroy(js);
      natsConnection_Destroy(nc);
      reasons += (reasons.empty() ? "" : "; ") + masked_urls_[i] + ": " + why;
      continue;
    }
    jsAccountInfo_Destroy(ai);
    if (urls_.size() > 1) spdlog::info("connected to NATS server {} of {} at {}", i + 1, urls_.size(), masked_urls_[i]);
    conn_ = nc;
    js_ = js;
    return reg.keep();
  }
  throw SinkError("cannot connect to NATS: " + reasons, worst);
}

void NatsConnection::start() {
  progress_at_ = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = false;
  }
  sender_ = std::thread([this] { send_loop(); });
}

void NatsConnection::streams_seen(const std::vector<std::pair<std::string, std::string>>& filters,
                                  bool prefix_captured) {
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& [name, f] : filters) filters_seen_.insert(f);
  prefix_captured_ = prefix_captured;
}

void NatsConnection::close() {
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
  for (auto& h : held_) natsMsg_Destroy(h.first);
  held_.clear();
  held_bytes_ = 0;
  batching_ = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto* u : unsent_) natsMsg_Destroy(u);
    unsent_.clear();
    unsent_bytes_ = 0;
    inflight_.clear();  // the library destroyed the messages it still held
    woken_ = false;
    queue_.clear();
    lost_.clear();
    progressed_ = false;
  }
  char drain[256];
  while (::read(pipe_[0], drain, sizeof drain) > 0) {
  }
}

// One byte per poll() at most: a byte per ack was a write here and a wake-up of the loop per
// event. poll() drains the pipe before it clears woken_ and takes the queue, so an answer queued
// after that finds woken_ false and writes again: none is left without a byte.
void NatsConnection::wake() {
  if (std::exchange(woken_, true)) return;
  char b = 1;
  ssize_t r = ::write(pipe_[1], &b, 1);
  (void)r;  // EAGAIN: the pipe is full, hence readable anyway
}

// No responders for a subject: either the stream that captured it is gone, or none was meant to.
std::string NatsConnection::refusal_for_no_responders(const char* subj, bool& stream_gone) const {
  std::string subject = subj ? subj : "?";
  bool was_captured = false;
  for (const auto& f : filters_seen_)
    if (subj && filter_covers(f, subject)) was_captured = true;
  // A subject a stream captured once, or a sink none of whose subjects a stream captures:
  // the stream is gone (deleted, or its JetStream has no leader), not the event's fault.
  // Else the event's routing key leads where no stream was meant to capture: refused.
  stream_gone = was_captured || !prefix_captured_;
  if (!stream_gone) return "no JetStream stream captures subject " + subject;
  return "no JetStream stream captures subject " + subject +
         (was_captured ? " any more (a stream captured it before: deleted?)"
                       : ", nor any subject of " + subject_prefix_ + ">") +
         " -- fix: create the stream again ([[jetstream.streams]] in the config file, which the relay "
         "creates at its next connect, or a stream capturing " + subject_prefix_ + "> on the server)";
}

void NatsConnection::on_ack(natsMsg* msg, bool ok, bool duplicate, int status, int err_code, const char* err_text) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = inflight_.find(msg);
    if (it == inflight_.end()) return;
    BrokerOutcome o;
    o.ticket = it->second;
    inflight_.erase(it);
    progressed_ = true;
    const char* subj = natsMsg_GetSubject(msg);
    if (ok) {
      o.kind = BrokerOutcome::Kind::Confirmed;
      o.duplicate = duplicate;
      queue_.push_back(std::move(o));
    } else if (status == NATS_NO_RESPONDERS) {
      bool stream_gone = false;
      o.kind = BrokerOutcome::Kind::Refused;
      o.reply = refusal_for_no_responders(subj, stream_gone);
      o.why = stream_gone ? Refusal::DestinationMissing : Refusal::Returned;
      o.refusal = nats_refusal(o.why, subj ? subj : "");
      queue_.push_back(std::move(o));
    } else if (status == NATS_ERR && err_code != 0) {
      o.kind = BrokerOutcome::Kind::Refused;
      o.why = Refusal::Nacked;
      o.reply = fmt::format("JetStream error {}: {}", err_code, err_text ? err_text : "");
      o.refusal = nats_refusal(o.why, subj ? subj : "", err_code);
      queue_.push_back(std::move(o));
    } else {
      // A timeout or a lost connection: the message's fate is unknown.
      if (lost_.empty())
        lost_ = fmt::format("no JetStream ack for a message to {}: {}", subj ? subj : "?",
                            err_text ? err_text : natsStatus_GetText(static_cast<natsStatus>(status)));
    }
    wake();
  }
}

void NatsConnection::on_permission_violation(const std::string& text) {
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
      o.refusal = nats_refusal(o.why, subject);
      inflight_.erase(best);
      progressed_ = true;
      queue_.push_back(std::move(o));
    } else if (lost_.empty()) {
      // Not a publish of ours (the reply inbox, the JetStream API): no ack can come.
      lost_ = mask("NATS " + text);
    }
    wake();
  }
}

void NatsConnection::on_lost(const std::string& why) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (lost_.empty()) lost_ = mask("NATS " + why);
    wake();
  }
}

std::optional<std::string> NatsConnection::publish(std::uint64_t ticket, const NatsMessage& msg) {
  int s = NATS_OK;
  natsMsg* m = make_nats_message(msg.subject, msg.headers, *msg.data, scratch_, s);
  if (m == nullptr) return "NATS message: " + err(s);
  held_.emplace_back(m, ticket);
  held_bytes_ += msg.data->size();
  if (!batching_) hand_off_held();
  return std::nullopt;
}

void NatsConnection::batch(bool on) {
  batching_ = on;
  if (!on) hand_off_held();
}

void NatsConnection::hand_off_held() {
  if (held_.empty()) return;
  // Taken out first: should an insert below throw (no memory), a message is then in one place
  // only, never freed twice by close().
  std::vector<std::pair<natsMsg*, std::uint64_t>> held;
  held.swap(held_);
  std::size_t bytes = std::exchange(held_bytes_, 0);
  bool was_idle;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (inflight_.empty()) progress_at_ = std::chrono::steady_clock::now();
    was_idle = unsent_.empty();
    for (auto& [m, ticket] : held) {
      inflight_[m] = ticket;  // before the write: the ack may come first
      unsent_.push_back(m);
    }
    unsent_bytes_ += bytes;
  }
  // The writer takes all of unsent_ each time it wakes and looks again before it waits: it
  // needs a wake-up only when it found unsent_ empty.
  if (was_idle) cv_.notify_one();
  held.clear();
  held_.swap(held);  // its capacity, for the next batch
}

// The only caller of js_PublishMsgAsync: nats.c writes to the socket under the connection's lock
// with no deadline of its own once its 32 KiB buffer is full, so a server that stopped reading
// would block the caller as soon as the kernel's buffers are full. Here it blocks this thread
// (at most the write deadline, after which nats.c shuts the socket: a lost connection), never
// the relay's loop.
void NatsConnection::send_loop() {
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
      {
        std::lock_guard<std::mutex> g(mu_);
        bool room_again = unsent_bytes_ >= kUnsentHighWater && unsent_bytes_ - std::min(unsent_bytes_, bytes) < kUnsentHighWater;
        unsent_bytes_ -= std::min(unsent_bytes_, bytes);
        if (room_again) wake();  // the loop, held back by writable(), may read the slot again
      }
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
        wake();
        l.unlock();
        break;
      }
    }
    batch.clear();
    l.lock();
  }
}

void NatsConnection::poll(std::vector<BrokerOutcome>& out) {
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
    woken_ = false;
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
  } else if (ack_timeout_ms_ > 0 && inflight > 0 && now - progress_at_ > std::chrono::milliseconds(ack_timeout_ms_)) {
    broken_reason_ = fmt::format("NATS: no JetStream ack for {} ms with {} messages in flight", ack_timeout_ms_,
                                 inflight);
  }
  if (!broken_reason_.empty()) spdlog::warn("NATS connection to {} broken: {}", node_, broken_reason_);
}

bool NatsConnection::has_buffered() const {
  std::lock_guard<std::mutex> g(mu_);
  return !queue_.empty() || (!lost_.empty() && broken_reason_.empty());
}

bool NatsConnection::writable() const {
  std::lock_guard<std::mutex> g(mu_);
  return unsent_bytes_ + held_bytes_ < kUnsentHighWater;
}

std::size_t NatsConnection::in_flight() const {
  std::lock_guard<std::mutex> g(mu_);
  return inflight_.size() + held_.size();
}

}  // namespace outbox
