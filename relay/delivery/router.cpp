#include "delivery/router.h"

#include <fnmatch.h>

#include <algorithm>
#include <stdexcept>

namespace outbox {

namespace {

std::size_t index_of(const std::string& name, const std::vector<std::string>& sinks) {
  for (std::size_t i = 0; i < sinks.size(); ++i)
    if (sinks[i] == name) return i;
  throw std::invalid_argument("route to sink \"" + name + "\", which is not in use");
}

bool field_matches(const std::optional<std::string>& pattern, const std::optional<std::string>& value) {
  if (!pattern) return true;
  return value && Router::glob(*pattern, *value);
}

}  // namespace

Router::Router(const std::vector<Route>& routes, const std::string& default_sink,
               const std::vector<std::string>& sinks)
    : default_sink_(index_of(default_sink, sinks)) {
  for (const Route& r : routes) rules_.push_back(Rule{r, index_of(r.sink, sinks)});
}

bool Router::glob(const std::string& pattern, const std::string& text) {
  // Event types hold any text (a NUL cannot: PostgreSQL text has none), so fnmatch's C strings see all of it.
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

std::optional<std::string> Router::amqp_wildcard_meant(const std::string& pattern) {
  std::vector<std::string> words(1);
  for (char c : pattern) {
    if (c == '.') words.emplace_back();
    else words.back() += c;
  }
  if (std::find(words.begin(), words.end(), "#") == words.end()) return std::nullopt;
  std::string meant;
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i] == "#" ? "*" : words[i];
    // "#.#" and "*.#" mean what one '*' does here.
    if (i > 0 && w == "*" && (words[i - 1] == "#" || words[i - 1] == "*")) continue;
    meant += (i == 0 ? "" : ".") + w;
  }
  return meant;
}

bool Router::matches(const Route& r, const Event& ev) {
  return field_matches(r.event_type, ev.event_type) && field_matches(r.aggregate_type, ev.aggregate_type) &&
         field_matches(r.exchange, ev.exchange);
}

std::size_t Router::route(const Event& ev) const {
  for (const Rule& rule : rules_)
    if (matches(rule.route, ev)) return rule.sink;
  return default_sink_;
}

}  // namespace outbox
