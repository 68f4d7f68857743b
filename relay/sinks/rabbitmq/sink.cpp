#include "sinks/rabbitmq/sink.h"

#include <chrono>
#include <set>

#include <spdlog/spdlog.h>

#include "delivery/timestamp.h"

namespace outbox {

void RabbitSink::open(bool started) {
  blocked_ = false;
  pub_.connect(o_.urls, o_.publisher);
  pub_.declare_topology(o_.topology);
  const std::string& ex = o_.defaults.exchange;
  if (!pub_.exchange_exists(ex)) {
    std::string what = "the default exchange \"" + ex + "\" does not exist on the broker";
    // At start it is a mistake in the settings; once running it was deleted, and events that
    // need it wait (Delivery) instead of becoming dead letters.
    if (!started)
      throw SinkError(what + " -- fix: declare it, add it to [topology] in the config file, or choose another "
                             "with --exchange",
                      SinkErrorKind::Config);
    spdlog::error("{}; events without an exchange wait until it exists -- fix: declare it again", what);
  }
}

std::vector<std::string> RabbitSink::check() {
  pub_.connect(o_.urls, o_.publisher);
  // Creates nothing: passive declares only, and a report of what the relay would declare.
  std::set<std::string> would_create;
  std::vector<std::string> lines = pub_.check_topology(o_.topology, would_create);
  const std::string& ex = o_.defaults.exchange;
  bool default_new = would_create.count(ex) > 0;
  if (!default_new && !pub_.exchange_exists(ex))
    throw SinkError("the default exchange \"" + ex + "\" does not exist -- fix: declare it, add it to "
                    "[topology], or choose another with --exchange",
                    SinkErrorKind::Config);
  lines.push_back("RabbitMQ ok (confirm mode, exchange \"" + ex + "\" " +
                  (default_new ? "would be created from [topology])" : "exists)"));
  return lines;
}

std::optional<std::string> RabbitSink::publish(std::uint64_t ticket, const Event& ev) {
  auto built = build_message(ev, o_.defaults, batch_now_us_ ? batch_now_us_ : wall_us());
  if (auto* err = std::get_if<std::string>(&built)) return *err;
  return pub_.publish(ticket, std::move(std::get<AmqpMessage>(built)));
}

void RabbitSink::batch(bool on) {
  batch_now_us_ = on ? wall_us() : 0;
  pub_.batch(on);
}

void RabbitSink::poll(std::vector<BrokerOutcome>& out) {
  std::size_t from = out.size();
  pub_.poll(out);
  for (std::size_t i = from; i < out.size(); ++i) {
    if (out[i].kind == BrokerOutcome::Kind::Blocked) blocked_ = true;
    if (out[i].kind == BrokerOutcome::Kind::Unblocked) blocked_ = false;
  }
}

}  // namespace outbox
