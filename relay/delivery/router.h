// Which sink takes an event: the [[routes]] of the settings, in order, first match wins, else the
// default sink. A rule matches on shell-style globs (fnmatch: `*`, `?`, `[...]`; `*` also matches
// dots) over the event type, the aggregate type and the exchange; a rule's absent condition
// matches anything, and a condition on a field the event leaves null never matches.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "delivery/event.h"

namespace outbox {

struct Route {
  std::optional<std::string> event_type, aggregate_type, exchange;  // globs; nullopt = any
  std::string sink;  // a sink name (rabbitmq, nats, redis)
  int line = 0;      // in the config file, for messages
};

class Router {
 public:
  // `sinks`: the names of the sinks in use, by index. Every route and the default must name one
  // of them (the settings check that first; std::invalid_argument otherwise).
  Router(const std::vector<Route>& routes, const std::string& default_sink, const std::vector<std::string>& sinks);
  // The index of the sink that takes the event.
  std::size_t route(const Event& ev) const;
  static bool matches(const Route& r, const Event& ev);
  static bool glob(const std::string& pattern, const std::string& text);
  // A condition written with RabbitMQ's topic wildcard '#' as a word ("user.#"), which a glob
  // takes as a literal '#': the glob meant ("user.*"), or nullopt for any other pattern.
  static std::optional<std::string> amqp_wildcard_meant(const std::string& pattern);

 private:
  struct Rule {
    Route route;
    std::size_t sink;
  };
  std::vector<Rule> rules_;
  std::size_t default_sink_ = 0;
};

}  // namespace outbox
