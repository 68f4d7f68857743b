#include "sinks/rabbitmq/write_buffer.h"

#include <poll.h>

#include <cerrno>

#include <amqp.h>

namespace outbox {

namespace {

// rabbitmq-c's private statuses of a non-blocking socket (amqp_private.h): try again once the
// descriptor is writable (or readable: TLS may have to read to write).
constexpr ssize_t kNeedRead = -0x1301;
constexpr ssize_t kNeedWrite = -0x1302;

}  // namespace

bool AmqpWriteBuffer::attach(amqp_connection_state_t_* conn) {
  detach();
  amqp_socket_t* sock = amqp_get_socket(conn);
  if (!sock) return false;
  auto* first = reinterpret_cast<const Ops**>(sock);
  const Ops* ops = *first;
  // The layout check: the table's get_sockfd, called as rabbitmq-c would, names this socket.
  if (!ops || !ops->send || !ops->get_sockfd || ops->get_sockfd(sock) != amqp_get_sockfd(conn)) return false;
  original_ = ops;
  hook_.ops = *ops;
  hook_.ops.send = &AmqpWriteBuffer::gathered_send;
  hook_.owner = this;
  socket_ = sock;
  fd_ = amqp_get_sockfd(conn);
  *first = &hook_.ops;
  return true;
}

void AmqpWriteBuffer::detach() {
  socket_ = nullptr;
  original_ = nullptr;
  fd_ = -1;
  gathering_ = false;
  writes_ = 0;
  buf_.clear();
}

ssize_t AmqpWriteBuffer::gathered_send(void* socket, const void* buf, std::size_t len, int flags) {
  // The socket's first field points at hook_.ops, the first member of hook_.
  auto* hook = reinterpret_cast<Hook*>(const_cast<Ops*>(*static_cast<const Ops**>(socket)));
  AmqpWriteBuffer& b = *hook->owner;
  if (!b.gathering_ && b.buf_.empty()) {
    ++b.writes_;
    return b.original_->send(socket, buf, len, flags);
  }
  b.buf_.append(static_cast<const char*>(buf), len);
  if (!b.gathering_ || b.buf_.size() >= kFlushAt) {
    int st = b.flush();
    if (st != AMQP_STATUS_OK) return st;
  }
  return static_cast<ssize_t>(len);
}

int AmqpWriteBuffer::end() {
  gathering_ = false;
  return flush();
}

int AmqpWriteBuffer::flush() {
  std::size_t done = 0;
  int st = AMQP_STATUS_OK;
  while (socket_ && done < buf_.size()) {
    ++writes_;
    ssize_t n = original_->send(socket_, buf_.data() + done, buf_.size() - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n != kNeedWrite && n != kNeedRead) {
      st = n < 0 ? static_cast<int>(n) : AMQP_STATUS_SOCKET_ERROR;
      break;
    }
    // Like rabbitmq-c's own writes, no deadline: the publisher checked that the kernel's send
    // buffer has room for every message gathered, and TCP_USER_TIMEOUT ends a dead connection.
    pollfd p{fd_, static_cast<short>(n == kNeedWrite ? POLLOUT : POLLIN), 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
      st = AMQP_STATUS_SOCKET_ERROR;
      break;
    }
  }
  buf_.clear();
  return st;
}

}  // namespace outbox
