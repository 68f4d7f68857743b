// outbox-relay: see relay/README.md and `outbox-relay --help`.
#include <memory>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>

#include "ops/config.h"
#include "ops/http_server.h"
#include "ops/log.h"
#include "ops/metrics.h"
#include "relay.h"
#include "support/allocator.h"
#include "support/build_info.h"

namespace {
outbox::Relay* g_relay = nullptr;
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) {
  g_signal = sig;
  if (g_relay) g_relay->request_stop();
}
}  // namespace

int main(int argc, char** argv) {
  outbox::Config cfg;
  try {
    cfg = outbox::load_config(argc, argv, [](const char* n) { return std::getenv(n); });
  } catch (const outbox::ConfigExit& e) {
    std::cout << e.text;
    return e.code;
  } catch (const outbox::ConfigError& e) {
    std::cerr << "outbox-relay: " << e.what() << "\n";
    return 2;
  }
  if (!outbox::setup_logging(cfg.log_format, cfg.log_level)) {
    std::cerr << "outbox-relay: unknown --log-level \"" << cfg.log_level << "\" (use trace, debug, info, warn, error)\n";
    return 2;
  }
  spdlog::info("outbox-relay {} (commit {}, {}) starting: {}", outbox::kRelayVersion, outbox::kBuildCommit,
               outbox::allocator_name(), outbox::describe(cfg));

  std::signal(SIGPIPE, SIG_IGN);
  outbox::Metrics metrics;
  outbox::HttpServer http(metrics);
  // A port in use stops the start (and fails --check): shared, /readyz would answer for either relay.
  if (!cfg.http.empty()) {
    std::string why = http.start(cfg.http, !cfg.check);
    if (!why.empty()) {
      spdlog::critical("{}", why);
      return 2;
    }
  }

  int rc = 0;
  std::unique_ptr<outbox::Relay> made;
  try {
    made = std::make_unique<outbox::Relay>(cfg, metrics);
  } catch (const outbox::SinkError& e) {
    // A sink's settings that only the sink can judge (a Redis stream template, a URL).
    spdlog::critical("{}", e.what());
    return 2;
  }
  {
    outbox::Relay& relay = *made;
    g_relay = &relay;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    // SIGHUP (a closed terminal, a supervisor's "reload") is a stop like SIGTERM: drain, exit 0.
    // Its default action killed the relay (129) without draining. There is nothing to reload:
    // a supervisor that restarts the relay applies new settings.
    sigaction(SIGHUP, &sa, nullptr);
    rc = cfg.check ? relay.check() : relay.run();
    g_relay = nullptr;
  }
  made.reset();
  if (g_signal == SIGHUP)
    spdlog::info("the stop was asked by SIGHUP, which outbox-relay handles like SIGTERM (it does not reload its "
                 "settings; restart it to apply new ones)");
  http.stop();
  return rc;
}
