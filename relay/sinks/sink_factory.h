// The sinks the settings ask for (Config::sinks, in that order), built from the settings.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ops/config.h"
#include "delivery/sink.h"

namespace outbox {

// `connection_name`: what the brokers show for the relay's connections.
std::vector<std::unique_ptr<Sink>> make_sinks(const Config& c, const std::string& connection_name);

}  // namespace outbox
