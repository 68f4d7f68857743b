// The broker side: one rabbitmq-c connection, channel 1 in confirm mode for publishing,
// channel 2 for passive exchange checks and topology declaration. Nothing in the data path waits
// for the broker: the first message to an exchange not seen yet is held while a passive declare
// travels on channel 2 (pipelined), then sent or refused. Frames are read without blocking (the
// event loop polls the socket) and handed back as outcomes: pull what arrived, then act.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>
#include <stdexcept>
#include <string>

#include "sinks/address_rotation.h"
#include "sinks/rabbitmq/message.h"
#include "delivery/confirm_window.h"
#include "sinks/rabbitmq/settings.h"
#include "sinks/rabbitmq/write_buffer.h"
#include "delivery/sink.h"

struct amqp_connection_state_t_;
struct amqp_connection_info;
struct amqp_socket_t_;
struct amqp_table_entry_t_;
struct timeval;

namespace outbox {

// RabbitMQ's errors are the sinks' errors (delivery/sink.h).
using AmqpErrorKind = SinkErrorKind;
using AmqpError = SinkError;

class AmqpPublisher {
 public:
  AmqpPublisher();  // in the .cpp, where amqp_table_entry_t_ is complete
  ~AmqpPublisher();
  AmqpPublisher(const AmqpPublisher&) = delete;
  AmqpPublisher& operator=(const AmqpPublisher&) = delete;

  // Connects, logs in, opens channel 1 in confirm mode. Throws AmqpError (message masked).
  struct Tls {
    std::string cacert, cert, key;  // PEM files; empty = system defaults / no client certificate
  };
  struct Options {
    int heartbeat_s = 10;
    int connect_timeout_ms = 10000;  // per address: TCP connect, TLS + AMQP handshake, each start-up RPC
    // Messages in flight and no confirm or nack for this long (and the broker did not block
    // publishing): the connection counts as lost. 0 = never.
    int confirm_timeout_ms = 30000;
    std::string name = "outbox-relay";  // shown by RabbitMQ as the connection name
    Tls tls;
  };
  // Tries the addresses (nodes of one cluster) in the order of an AddressRotation kept across
  // calls: from the last one that worked, or from the one after the last one that failed, each
  // once. A settings mistake (unreadable TLS file) throws at once; when every address failed it
  // throws the error of the most telling kind (TLS over login over connection), with every
  // node's reason. Logs name the node, passwords masked.
  void connect(const std::vector<std::string>& urls, const Options& o);
  // One address (what connect() tries for each).
  void connect(const std::string& url, int heartbeat_s, const std::string& name = "outbox-relay",
               const Tls& tls = Tls{}, int connect_timeout_ms = 10000);
  // The node of the current connection, password masked ("" when not connected).
  const std::string& node() const { return masked_url_; }

  // The [topology] and the checks at start (sinks/rabbitmq/topology.cpp).
  void declare_topology(const Topology& t);
  // --check: declares nothing. Each exchange and queue is checked with a passive declare; the
  // returned lines say which exist and which the relay would create, and that the bindings would
  // be bound (AMQP 0-9-1 cannot check a binding without making it). `would_create` gets the
  // exchanges that do not exist yet.
  std::vector<std::string> check_topology(const Topology& t, std::set<std::string>& would_create);
  // True if the exchange exists: a synchronous passive declare on channel 2, for start-up
  // checks only (positive answers cached).
  bool exchange_exists(const std::string& name);
  // The same for a queue (passive queue.declare on channel 2).
  bool queue_exists(const std::string& name);

  void close();
  bool connected() const { return conn_ != nullptr; }
  int socket() const;

  // basic.publish with mandatory=true (held first while its exchange is being checked). Throws
  // AmqpError when the connection is broken.
  std::optional<std::string> publish(std::uint64_t ticket, AmqpMessage m);

  // Reads every frame available without blocking and appends what happened to `out`. A closed
  // channel or connection does not throw here: it is reported by broken() after the outcomes
  // read before it, so that none of them is lost.
  void poll(std::vector<BrokerOutcome>& out);
  bool broken() const { return !broken_reason_.empty(); }
  const std::string& broken_reason() const { return broken_reason_; }
  // The broker closed the channel or connection with a code that a message can cause.
  bool broken_by_message() const { return broken_by_message_; }
  // Frames already buffered inside rabbitmq-c (poll() would not see the socket readable).
  bool has_buffered() const;
  // The socket can take more data now (poll POLLOUT, no wait). A hint for backpressure only: the
  // guarantee that no publish blocks is publish()'s own room check (below).
  bool writable() const;
  // Messages publish() accepted but holds until the socket's send buffer has room for each as a
  // whole (rabbitmq-c writes a frame with no deadline: a message that does not fit would block
  // the loop until the broker reads, forever if it went silent). send_pending() sends what fits
  // now; the loop calls it every turn and re-checks within kRoomRecheckMs while any wait.
  bool pending() const { return !held_.empty() && known_exchanges_.count(held_.front().msg.exchange) > 0; }
  void send_pending();
  static constexpr int kRoomRecheckMs = 5;
  // Around a batch of publishes (a turn of the loop): the frames are gathered and written at its
  // end in one system call instead of three per message (AmqpWriteBuffer). A failed write makes
  // the connection broken().
  void batch(bool on);
  // Writes to the socket on this connection (0 when they cannot be gathered and are not counted).
  std::uint64_t writes() const { return wbuf_.writes(); }

 private:
  struct Sent {
    std::uint64_t ticket = 0;
    std::string message_id, lsn;
    std::string exchange, routing_key;  // named by the refusal of a return or a nack
    std::string reply;  // of a basic.return
  };
  std::vector<ConfirmWindow<Sent>::Settled> settled_buf_;  // settle()'s, kept for its capacity
  std::vector<amqp_table_entry_t_> entries_;                // send_now()'s header table
  struct Held {
    std::uint64_t ticket = 0;
    AmqpMessage msg;
  };
  static constexpr std::uint16_t kPubChannel = 1;  // confirm mode, publishes only
  static constexpr std::uint16_t kAuxChannel = 2;  // passive checks and the topology
  // The steps of a connect to one address.
  void connect_one(const std::string& url, int heartbeat_s, const std::string& name, const Tls& tls,
                   int connect_timeout_ms);
  amqp_socket_t_* new_tls_socket(const Tls& tls);  // verifies the broker; null: cannot make one
  void open_socket(amqp_socket_t_* sock, const char* host, int port, const struct timeval& timeout, const Tls& tls);
  void log_in(const amqp_connection_info& info, int heartbeat_s, const std::string& name, const Tls& tls);
  // A connect step failed: the half-made connection is dropped (and `e` thrown).
  void discard_connection();
  [[noreturn]] void abandon(const AmqpError& e);
  void open_aux_channel();
  // Publishes m and moves what a return or a nack must name out of it into the window.
  void send_now(std::uint64_t ticket, AmqpMessage& m);
  void request_check(const std::string& exchange);
  void send_checks();
  void send_held();
  // Whether the socket's send buffer can take `m` whole now (SO_MEMINFO: the kernel's own count
  // of queued bytes against the buffer size, with a reserve for heartbeats and method frames).
  bool room_for(const AmqpMessage& m);
  void connect_lost();
  std::string client_cert_refusal(const std::string& detail, bool gave_cert) const;
  std::string unverified_certificate(const std::string& detail) const;
  void check_confirm_timeout();  // the established connection broke: its node is not tried first next time
  void on_aux_close(int code, const std::string& reply, std::vector<BrokerOutcome>& out);
  void settle(std::uint64_t tag, bool multiple, bool nack, std::vector<BrokerOutcome>& out);
  void on_return(const std::string& id, const std::string& lsn, const std::string& reply);
  [[noreturn]] void fail(const std::string& what, int status);
  amqp_connection_state_t_* conn_ = nullptr;
  enum class Aux { Closed, Opening, Open };
  Aux aux_ = Aux::Closed;
  bool corked_ = false;  // TCP_CORK, when wbuf_ cannot attach
  AmqpWriteBuffer wbuf_;
  std::size_t room_ = 0;  // bytes the send buffer can take for sure (room_for)
  // Nacks since the last ack; beyond kNackStreak the connection is reopened (settle()).
  std::size_t nack_streak_ = 0;
  static constexpr std::size_t kNackStreak = 50;
  std::set<std::string> known_exchanges_;
  // Messages not sent yet, in publish order: once one waits for its exchange's check, every
  // later one waits behind it, so the wire order stays the publish order (--ordering commit).
  std::deque<Held> held_;
  std::set<std::string> checking_;  // exchanges with a check requested and not answered
  std::deque<std::string> checks_sent_;             // passive declares in flight on channel 2
  std::deque<std::string> checks_todo_;             // to send once channel 2 is open
  ConfirmWindow<Sent> sent_;                        // delivery tags -> what they carried
  std::string broken_reason_;
  bool broken_by_message_ = false;
  std::string masked_url_;
  std::vector<std::string> urls_;  // of the last connect(urls, ...), for the rotation
  AddressRotation rotation_;
  std::size_t current_ = 0;        // index into urls_ of the connected node
  bool lost_reported_ = false;
  int heartbeat_s_ = 0;
  int confirm_timeout_ms_ = 0;
  bool blocked_ = false;  // connection.blocked received, not yet unblocked
  // When the confirm window last moved: a confirm or nack arrived, or a publish went out while
  // nothing was in flight (poll() compares it with confirm_timeout_ms_).
  std::chrono::steady_clock::time_point progress_at_{};
};

}  // namespace outbox
