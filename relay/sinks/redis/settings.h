// What the Redis sink is configured with: its settings (redis, redis-stream, ...; the rows are in
// settings.cpp).
#pragma once

namespace outbox {

struct SinkKind;

// Redis's settings and how its sink is made (listed in sink_factory.cpp).
SinkKind redis_sink_kind();

}  // namespace outbox
