// Gathered writes for a rabbitmq-c connection. rabbitmq-c 0.11 hands every frame to its socket
// with a send() of its own: three system calls per basic.publish (method, header, body), the
// largest part of the relay's cost per event once parsing is cheap. While a batch is open (one
// turn of the loop), the frames are appended here and leave in one write when it closes, or
// whenever kFlushAt bytes are gathered.
//
// rabbitmq-c has no public hook for this. Its socket objects (amqp_socket_t, tcp and TLS alike)
// start with a pointer to their table of operations (send, recv, open, close, get_sockfd,
// delete), the same since 0.4; attach() copies the table, replaces send, and points the socket
// at the copy. It checks the layout first (the copy's get_sockfd must answer the connection's
// descriptor) and leaves the connection alone when that fails: writes are then not gathered.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

struct amqp_connection_state_t_;

namespace outbox {

class AmqpWriteBuffer {
 public:
  static constexpr std::size_t kFlushAt = 64 * 1024;

  AmqpWriteBuffer() = default;
  AmqpWriteBuffer(const AmqpWriteBuffer&) = delete;
  AmqpWriteBuffer& operator=(const AmqpWriteBuffer&) = delete;

  // Puts itself between the connection's socket and rabbitmq-c; false when the socket does not
  // look as expected (nothing changed then). Must stay alive until the connection is destroyed.
  bool attach(amqp_connection_state_t_* conn);
  // The connection was destroyed: forget it and what was gathered.
  void detach();
  bool attached() const { return socket_ != nullptr; }
  // From now on frames are gathered.
  void begin() { gathering_ = attached(); }
  // Stops gathering and writes what was gathered. Returns a rabbitmq-c status (AMQP_STATUS_OK,
  // or the error that broke the connection).
  int end();
  // Bytes gathered and not written yet (the kernel's send buffer does not count them).
  std::size_t size() const { return buf_.size(); }
  // Writes handed to the socket since attach() (each a system call, or a TLS record or more).
  std::uint64_t writes() const { return writes_; }

 private:
  // rabbitmq-c's struct amqp_socket_class_t, in its order.
  struct Ops {
    ssize_t (*send)(void*, const void*, std::size_t, int);
    ssize_t (*recv)(void*, void*, std::size_t, int);
    int (*open)(void*, const char*, int, const struct timeval*);
    int (*close)(void*, int);
    int (*get_sockfd)(void*);
    void (*del)(void*);
  };
  // What the socket's first field points to while attached: the table first, so that the
  // socket's own pointer leads back here.
  struct Hook {
    Ops ops;
    AmqpWriteBuffer* owner;
  };
  static ssize_t gathered_send(void* socket, const void* buf, std::size_t len, int flags);
  int flush();

  Hook hook_{};
  const Ops* original_ = nullptr;
  void* socket_ = nullptr;
  int fd_ = -1;
  bool gathering_ = false;
  std::uint64_t writes_ = 0;
  std::string buf_;
};

}  // namespace outbox
