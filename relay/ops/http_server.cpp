#include "ops/http_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <httplib.h>
#include <spdlog/spdlog.h>

namespace outbox {

HttpServer::HttpServer(const Metrics& m) : metrics_(m) {}
HttpServer::~HttpServer() { stop(); }

std::string HttpServer::start(const std::string& address, bool serve) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return "--http " + address + ": expected address:port (for example 127.0.0.1:9187), or --http off";
  std::string host = address.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (...) {
    return "--http " + address + ": the port is not a number";
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
  // cpp-httplib's default socket options add SO_REUSEPORT, with which a second relay given the
  // same --http binds it too and the kernel spreads the requests between them. SO_REUSEADDR alone
  // still lets a restarted relay bind while old connections linger in TIME_WAIT, and refuses a
  // port another socket listens on.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  errno = 0;
  if (port == 0) port_ = server_->bind_to_any_port(host);
  else port_ = server_->bind_to_port(host, port) ? port : -1;
  int bind_errno = errno;
  if (port_ <= 0) {
    server_.reset();
    port_ = 0;
    std::string why = bind_errno == EADDRINUSE ? "the port " + std::to_string(port) + " is in use (another outbox-relay "
                                                 "on this host?)"
                      : bind_errno != 0 ? "cannot listen on port " + std::to_string(port) + " of " + host + " (" +
                                              std::strerror(bind_errno) + ")"
                                        : "cannot listen on port " + std::to_string(port) + " of " + host;
    return "--http " + address + ": " + why + " -- fix: give each relay on a host its own --http address:port "
           "(or --http off), or stop what listens there";
  }
  if (!serve) {
    server_.reset();  // closes the socket: --check only learns that the port is free
    return "";
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  spdlog::info("HTTP endpoint on http://{}:{}/metrics /healthz /readyz", host, port_);
  return "";
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace outbox
