#include "sinks/nats/sink.h"

#include <algorithm>
#include <set>
#include <variant>

#include <spdlog/spdlog.h>

#include "delivery/timestamp.h"

namespace outbox {

NatsSink::NatsSink(Options o) : o_(std::move(o)), conn_(o_.urls, o_.subject_prefix, o_.ack_timeout_ms) {}

void NatsSink::connect_to(NatsConnection& c, bool report) {
  if (o_.urls.empty()) throw SinkError("NATS: no server URL configured", SinkErrorKind::Config);
  check_stream_settings(o_.streams);
  c.connect(o_.tls, o_.name, o_.connect_timeout_ms, report);
}

void NatsSink::open(bool started) {
  close();
  connect_to(conn_, true);
  try {
    ensure_streams(conn_, o_.streams, started);
    check_capture(started);
  } catch (...) {
    close();
    throw;
  }
  conn_.start();
  spdlog::info("connected to NATS at {} (JetStream, max payload {} bytes)", conn_.node(), conn_.max_payload());
}

void NatsSink::check_capture(bool started) {
  StreamFilters filters = stream_filters(conn_);
  StreamCapture c = capture_of(filters, o_.subject_prefix);
  conn_.streams_seen(filters, c.state != StreamCapture::State::None);
  if (c.state == StreamCapture::State::None) {
    // At start a mistake in the settings (exit 2, as a missing default exchange); once running
    // the stream was deleted: the events wait for it (Refusal::DestinationMissing).
    if (!started) throw SinkError(no_stream_text(o_.subject_prefix), SinkErrorKind::Config);
    spdlog::error("NATS: {}; its events wait until one does", no_stream_text(o_.subject_prefix));
  } else if (c.state == StreamCapture::State::Part && !started) {
    spdlog::warn("NATS subjects {} are captured only in part, by stream {}: an event whose subject no stream captures "
                 "is refused, retried, then a dead letter",
                 c.pattern, comma_list(c.part));
  }
}

std::vector<std::string> NatsSink::check() {
  // Not connected: a connection for this check only, whose callbacks report nothing.
  std::optional<NatsConnection> temp;
  if (!conn_.connected()) {
    temp.emplace(o_.urls, o_.subject_prefix, o_.ack_timeout_ms);
    connect_to(*temp, false);
  }
  NatsConnection& c = temp ? *temp : conn_;
  std::vector<std::string> lines{"NATS: connected to " + c.node() + " (JetStream enabled)"};
  StreamsReport streams = report_streams(c, o_.streams);
  lines.insert(lines.end(), streams.lines.begin(), streams.lines.end());

  StreamCapture cap = capture_of(streams.filters, o_.subject_prefix);
  if (cap.state == StreamCapture::State::None) throw SinkError(no_stream_text(o_.subject_prefix), SinkErrorKind::Config);
  if (cap.state == StreamCapture::State::Unknown) {
    lines.push_back("NATS subject prefix \"" + o_.subject_prefix +
                    "\" does not end with '.': cannot tell which stream captures it");
    return lines;
  }
  std::set<std::string> capturing;
  for (const auto& [name, f] : streams.filters)
    if (filters_overlap(f, cap.pattern)) capturing.insert(name);
  for (const auto& name : capturing)
    if (!streams.durability[name].empty()) lines.push_back("NATS stream " + name + ": " + streams.durability[name]);
  if (cap.state == StreamCapture::State::Whole)
    lines.push_back("NATS subjects " + cap.pattern + " are captured by stream " + comma_list(cap.whole));
  else
    lines.push_back("NATS subjects " + cap.pattern + " are captured only in part, by stream " + comma_list(cap.part) +
                    ": a publish to a subject no stream captures is refused");
  return lines;
}

std::optional<std::string> NatsSink::publish(std::uint64_t ticket, const Event& ev) {
  if (!conn_.connected()) throw SinkError("NATS: not connected");
  if (conn_.broken()) throw SinkError(conn_.broken_reason());
  auto built = build_nats_message(ev, o_.subject_prefix, conn_.max_payload(), o_.cloudevents_source, wall_us());
  if (auto* problem = std::get_if<std::string>(&built)) return *problem;
  return conn_.publish(ticket, std::get<NatsMessage>(built));
}

int NatsSink::tick_ms() const {
  if (o_.ack_timeout_ms <= 0) return 1000;
  return std::max(10, std::min(1000, o_.ack_timeout_ms / 4));
}

}  // namespace outbox
