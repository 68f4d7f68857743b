// /metrics, /healthz, /readyz on a loopback address, served from its own thread (the event loop
// only writes atomics in Metrics).
#pragma once
#include <memory>
#include <string>
#include <thread>

#include "ops/metrics.h"

namespace httplib {
class Server;
}

namespace outbox {

class HttpServer {
 public:
  explicit HttpServer(const Metrics& m);
  ~HttpServer();
  // "host:port". Returns "" when it listens, else why not, naming the port and --http: a port in
  // use is refused, never shared (two relays answering /readyz at random), and the relay must
  // not start. `serve` false binds and releases the port at once (--check).
  std::string start(const std::string& address, bool serve = true);
  void stop();
  int port() const { return port_; }

 private:
  const Metrics& metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace outbox
