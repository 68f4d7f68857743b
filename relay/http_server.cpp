#include "http_server.h"

#include <chrono>

#include <httplib.h>
#include <spdlog/spdlog.h>

namespace outbox {

HttpServer::HttpServer(const Metrics& m) : metrics_(m) {}
HttpServer::~HttpServer() { stop(); }

bool HttpServer::start(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    spdlog::error("--http {}: expected address:port (for example 127.0.0.1:9187); HTTP endpoint disabled", address);
    return false;
  }
  std::string host = address.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (...) {
    spdlog::error("--http {}: the port is not a number; HTTP endpoint disabled", address);
    return false;
  }
  server_ = std::make_unique<httplib::Server>();
  const Metrics& m = metrics_;
  server_->Get("/metrics", [&m](const httplib::Request&, httplib::Response& res) {
    res.set_content(m.render_prometheus(), "text/plain; version=0.0.4");
  });
  server_->Get("/healthz", [&m](const httplib::Request&, httplib::Response& res) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch()).count();
    bool alive = now - m.loop_heartbeat_ms.load() < 30000;
    res.status = alive ? 200 : 503;
    res.set_content(alive ? "ok\n" : "event loop stalled\n", "text/plain");
  });
  server_->Get("/readyz", [&m](const httplib::Request&, httplib::Response& res) {
    std::string paused = m.paused();
    bool ready = m.streaming.load() && !m.default_exchange_missing.load() && paused.empty();
    res.status = ready ? 200 : 503;
    std::string why = m.not_ready();
    res.set_content(ready                              ? "ready\n"
                    : m.default_exchange_missing.load() ? "paused: the default exchange does not exist (see the log)\n"
                    : !paused.empty() && m.streaming.load() ? "paused: " + paused + "\n"
                    : !why.empty()                      ? "not streaming: " + why + "\n"
                                                        : "not streaming (connecting, standby or reconnecting)\n",
                    "text/plain");
  });
  if (port == 0) port_ = server_->bind_to_any_port(host);
  else port_ = server_->bind_to_port(host, port) ? port : -1;
  if (port_ <= 0) {
    spdlog::warn("--http {}: cannot listen there (address in use?); HTTP endpoint disabled, relay continues", address);
    server_.reset();
    return false;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("HTTP endpoint on http://{}:{}/metrics /healthz /readyz", host, port_);
  return true;
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace outbox
