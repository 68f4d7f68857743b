// The kinds of broker built into the relay, and the sinks the settings ask for.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "delivery/sink.h"
#include "support/settings.h"

namespace outbox {

struct SinkKind;  // sinks/sink_kind.h

// Every kind of broker built in, in the order the sinks in use are listed (Config::sinks).
const std::vector<SinkKind>& sink_kinds();
// Null for a name that is not built in.
const SinkKind* find_sink_kind(const std::string& name);
// {"rabbitmq", "nats", "redis"}: what --default-sink and [[routes]] accept.
std::vector<std::string> sink_kind_names();

// One sink per name of `kinds` (Config::sinks), in that order, made from the settings.
// `connection_name`: what the brokers show for the relay's connections.
std::vector<std::unique_ptr<Sink>> make_sinks(const SettingValues& values, const std::vector<std::string>& kinds,
                                              const std::string& connection_name);

}  // namespace outbox
