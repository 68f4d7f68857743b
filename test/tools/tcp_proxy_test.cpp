// tcp-proxy against real loopback sockets: an echo server in a thread of this test, the proxy
// binary as a child process, signals as the fault suite sends them.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#ifndef TCP_PROXY_BIN
#error "TCP_PROXY_BIN must name the tcp-proxy binary"
#endif

namespace {

using namespace std::chrono_literals;

int listen_any(int& port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0) return -1;
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// Echoes every connection until the test ends; counts accepted connections.
class EchoServer {
 public:
  EchoServer() {
    lfd_ = listen_any(port_);
    th_ = std::thread([this] { loop(); });
  }
  ~EchoServer() {
    stop_ = true;
    th_.join();
    for (int fd : conns_) close(fd);
    close(lfd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void loop() {
    while (!stop_) {
      std::vector<pollfd> p{{lfd_, POLLIN, 0}};
      for (int fd : conns_) p.push_back({fd, POLLIN, 0});
      if (poll(p.data(), p.size(), 50) <= 0) continue;
      if (p[0].revents & POLLIN) {
        int fd = accept(lfd_, nullptr, nullptr);
        if (fd >= 0) {
          conns_.push_back(fd);
          ++accepted_;
        }
      }
      for (std::size_t i = 1; i < p.size(); ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[65536];
        ssize_t k = read(p[i].fd, buf, sizeof buf);
        if (k > 0) {
          ssize_t off = 0;
          while (off < k) {
            ssize_t w = send(p[i].fd, buf + off, k - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += w;
          }
        }
      }
    }
  }
  int lfd_ = -1, port_ = 0;
  std::vector<int> conns_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread th_;
};

class Proxy {
 public:
  explicit Proxy(int upstream_port) {
    dir_ = "/tmp/tcp-proxy-test." + std::to_string(getpid()) + "." + std::to_string(++counter_);
    mkdir_(dir_);
    pid_ = fork();
    if (pid_ == 0) {
      std::string to = "127.0.0.1:" + std::to_string(upstream_port);
      std::string pf = dir_ + "/port", pidf = dir_ + "/pid";
      freopen((dir_ + "/log").c_str(), "w", stderr);
      execl(TCP_PROXY_BIN, TCP_PROXY_BIN, "--listen", "127.0.0.1:0", "--to", to.c_str(), "--port-file", pf.c_str(),
            "--pid-file", pidf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream f(dir_ + "/port");
      f >> port_;
      if (port_ == 0) std::this_thread::sleep_for(10ms);
    }
  }
  ~Proxy() {
    if (pid_ > 0 && exit_code_ < -1) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)!system(cmd.c_str());
  }
  int port() const { return port_; }
  void signal(int sig) {
    kill(pid_, sig);
    std::this_thread::sleep_for(100ms);  // let its loop see the signal
  }
  int stop() {  // SIGTERM; returns the exit code (-1 if it did not exit within 5 s)
    kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) return exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
  std::string pid_file() const {
    std::ifstream f(dir_ + "/pid");
    std::string s;
    f >> s;
    return s;
  }
  pid_t pid() const { return pid_; }

 private:
  static void mkdir_(const std::string& d) { (void)!system(("mkdir -p '" + d + "'").c_str()); }
  static inline int counter_ = 0;
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -2;
};

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until `n` bytes arrived or `timeout` passed; what arrived.
std::string read_n(int fd, std::size_t n, std::chrono::milliseconds timeout) {
  std::string got;
  auto end = std::chrono::steady_clock::now() + timeout;
  while (got.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[65536];
    ssize_t k = recv(fd, buf, std::min(sizeof buf, n - got.size()), 0);
    if (k <= 0) break;
    got.append(buf, k);
  }
  return got;
}

// What poll says about the socket within `ms`: 0 nothing, else the revents.
short events_within(int fd, int ms) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, ms) > 0 ? p.revents : 0;
}

TEST(TcpProxy, ForwardsBothWaysAndWritesItsFiles) {
  EchoServer echo;
  Proxy proxy(echo.port());
  ASSERT_GT(proxy.port(), 0) << "no port file";
  EXPECT_EQ(proxy.pid_file(), std::to_string(proxy.pid()));
  int fd = connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  std::string big(300000, 'x');  // more than every buffer on the way
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] { send(fd, big.data(), big.size(), MSG_NOSIGNAL); });
  std::string got = read_n(fd, big.size(), 10s);
  writer.join();
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big) << "bytes changed on the way";
  close(fd);
  EXPECT_EQ(proxy.stop(), 0);
}

TEST(TcpProxy, SilentHoldsConnectionsOpenAndResumeDeliversWhatWaited) {
  EchoServer echo;
  Proxy proxy(echo.port());
  int fd = connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  send(fd, "ping", 4, MSG_NOSIGNAL);
  ASSERT_EQ(read_n(fd, 4, 5s), "ping");

  proxy.signal(SIGUSR1);
  send(fd, "held", 4, MSG_NOSIGNAL);
  // No echo, no FIN, no RST: the socket just stays quiet.
  EXPECT_EQ(events_within(fd, 700), 0) << "a silent proxy must send nothing, not even FIN or RST";
  // A new connection is accepted (the kernel completes the handshake) but gets no bytes, and
  // the upstream never sees it.
  int accepted_before = echo.accepted();
  int fd2 = connect_to(proxy.port());
  ASSERT_GE(fd2, 0);
  send(fd2, "new!", 4, MSG_NOSIGNAL);
  EXPECT_EQ(events_within(fd2, 500), 0);
  EXPECT_EQ(echo.accepted(), accepted_before) << "the upstream was dialled while silent";

  proxy.signal(SIGUSR2);
  EXPECT_EQ(read_n(fd, 4, 5s), "held") << "bytes sent while silent are delivered after resume";
  EXPECT_EQ(read_n(fd2, 4, 5s), "new!") << "a connection accepted while silent is dialled on resume";
  close(fd);
  close(fd2);
  EXPECT_EQ(proxy.stop(), 0);
}

TEST(TcpProxy, SilentMakesTheSendersWritesBlock) {
  EchoServer echo;
  Proxy proxy(echo.port());
  int fd = connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  proxy.signal(SIGUSR1);
  // With small buffers a sender stops being able to write after a bounded amount; on a real
  // partition that is what makes a writer notice (TCP_USER_TIMEOUT) or block.
  std::string chunk(65536, 'z');
  std::size_t sent = 0;
  for (int i = 0; i < 200; ++i) {
    ssize_t k = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k <= 0) break;
    sent += static_cast<std::size_t>(k);
  }
  EXPECT_LT(sent, 8u * 1024 * 1024) << "the writer never blocked: " << sent << " bytes accepted";
  close(fd);
  EXPECT_EQ(proxy.stop(), 0);
}

TEST(TcpProxy, HupResetsEveryConnection) {
  EchoServer echo;
  Proxy proxy(echo.port());
  int fd = connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  send(fd, "ping", 4, MSG_NOSIGNAL);
  ASSERT_EQ(read_n(fd, 4, 5s), "ping");
  proxy.signal(SIGHUP);
  char b;
  errno = 0;
  ssize_t k = -1;
  if (events_within(fd, 2000)) k = recv(fd, &b, 1, 0);
  EXPECT_EQ(k, -1);
  EXPECT_EQ(errno, ECONNRESET) << "expected a reset, got " << std::strerror(errno);
  close(fd);
  // Still accepting and forwarding afterwards.
  int fd2 = connect_to(proxy.port());
  ASSERT_GE(fd2, 0);
  send(fd2, "pong", 4, MSG_NOSIGNAL);
  EXPECT_EQ(read_n(fd2, 4, 5s), "pong");
  close(fd2);
  EXPECT_EQ(proxy.stop(), 0);
}

TEST(TcpProxy, ClientCloseReachesTheUpstreamAsFin) {
  EchoServer echo;
  Proxy proxy(echo.port());
  int fd = connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  send(fd, "bye", 3, MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  // The echo arrives, then the end of the stream (the proxy passed the FIN on both ways once the
  // echo server's side is closed as well; here it only needs to deliver the data before FIN).
  EXPECT_EQ(read_n(fd, 3, 5s), "bye");
  close(fd);
  EXPECT_EQ(proxy.stop(), 0);
}

}  // namespace
