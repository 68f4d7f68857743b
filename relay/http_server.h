// /metrics, /healthz, /readyz on a loopback address, served from its own thread (the event loop
// only writes atomics in Metrics).
#pragma once
#include <memory>
#include <string>
#include <thread>

#include "metrics.h"

namespace httplib {
class Server;
}

namespace outbox {

class HttpServer {
 public:
  explicit HttpServer(const Metrics& m);
  ~HttpServer();
  // "host:port". Returns false (and logs) when the address cannot be bound; the relay runs on.
  bool start(const std::string& address);
  void stop();
  int port() const { return port_; }

 private:
  const Metrics& metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace outbox
