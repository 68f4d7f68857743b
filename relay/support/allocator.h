// The relay's allocator: jemalloc (Debian's libjemalloc2), linked into every binary that links the
// relay, so that it replaces malloc for the whole process (libpq, rabbitmq-c, nats.c, hiredis
// too). An event is a few dozen short-lived allocations across two or three threads, freed in
// batches of up to --max-in-flight when the broker confirms; glibc's per-thread cache holds 7
// chunks per size, so most of those frees went through its bins and consolidation (malloc and
// free were 17-20 % of a drain's samples). With jemalloc the relay's CPU per event fell by 20 %
// on a RabbitMQ drain and 5-8 % on a NATS one, for 2-3 MB more peak RSS (docs/design.md 9).
#pragma once
#include <string>

namespace outbox {

// "jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c": what the log's first line names.
std::string allocator_name();

// Bytes the calling thread has allocated so far, as the allocator counts them (0 when it does
// not): for the test that malloc is the one named.
unsigned long long thread_allocated_bytes();

}  // namespace outbox
