// tcp-proxy: a loopback TCP proxy for one upstream, for the fault suite (test/faults/).
//
//   tcp-proxy --listen 127.0.0.1:0 --to HOST:PORT [--port-file FILE] [--pid-file FILE] [--rcvbuf BYTES]
//
// It forwards both directions with poll(). Signals model network faults:
//   SIGUSR1  silent: stop reading and writing on every connection but keep every socket open
//            (no FIN, no RST): what a partition or a dead NAT entry looks like to both ends.
//            New connections are accepted but get no bytes (the upstream is not even dialled,
//            as a SYN would not get through either).
//   SIGUSR2  resume: forward again, buffered bytes included.
//   SIGHUP   reset: close every connection with RST (SO_LINGER 0) on both sides.
//   SIGTERM, SIGINT  exit 0.
// Every socket gets a small SO_RCVBUF (--rcvbuf, default 32768) so that, while silent, the
// sender's buffers fill after a few tens of kilobytes and its writes block as they would on a
// real partition, instead of disappearing into megabytes of auto-tuned kernel buffers.
// Each state change is logged on stderr with a wall-clock time in microseconds, so that the
// scenarios can measure from it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <string>
#include <vector>

namespace {

int g_sig_pipe[2] = {-1, -1};

void on_signal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  int saved = errno;
  (void)!write(g_sig_pipe[1], &b, 1);
  errno = saved;
}

long long now_us() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<long long>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

void say(const std::string& what) { std::fprintf(stderr, "tcp-proxy: %lld %s\n", now_us(), what.c_str()); }

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tcp-proxy: error: %s\n", what.c_str());
  std::exit(2);
}

bool split_host_port(const std::string& s, std::string& host, std::string& port) {
  auto c = s.rfind(':');
  if (c == std::string::npos || c == 0 || c + 1 == s.size()) return false;
  host = s.substr(0, c);
  port = s.substr(c + 1);
  return true;
}

sockaddr_in resolve(const std::string& spec) {
  std::string host, port;
  if (!split_host_port(spec, host, port)) die("expected HOST:PORT, got '" + spec + "'");
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) die("cannot resolve '" + spec + "': " + gai_strerror(rc));
  sockaddr_in a{};
  std::memcpy(&a, res->ai_addr, sizeof a);
  freeaddrinfo(res);
  return a;
}

void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int g_rcvbuf = 32768;

void small_buffers(int fd) {
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &g_rcvbuf, sizeof g_rcvbuf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &g_rcvbuf, sizeof g_rcvbuf);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void close_rst(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

// One direction of a connection: bytes read from `from`, not yet written to `to`.
struct Pipe {
  std::vector<char> buf;
  bool eof = false;       // `from` sent FIN
  bool shut = false;      // FIN passed on to `to`
};

constexpr std::size_t kBuf = 65536;

struct Conn {
  int id = 0;
  int client = -1;
  int upstream = -1;      // -1 until dialled (a connection accepted while silent waits)
  bool connecting = false;
  Pipe up;                // client -> upstream
  Pipe down;              // upstream -> client
  bool dead = false;
};

class Proxy {
 public:
  Proxy(int listen_fd, sockaddr_in to) : lfd_(listen_fd), to_(to) {}

  int run() {
    for (;;) {
      std::vector<pollfd> pfds;
      pfds.push_back({g_sig_pipe[0], POLLIN, 0});
      pfds.push_back({lfd_, POLLIN, 0});
      std::vector<std::pair<Conn*, int>> owners;  // (conn, 0 client / 1 upstream)
      if (!silent_) {
        for (auto& c : conns_) {
          short ce = 0, ue = 0;
          if (!c.up.eof && c.up.buf.size() < kBuf) ce |= POLLIN;
          if (!c.down.buf.empty()) ce |= POLLOUT;
          if (c.connecting) {
            ue |= POLLOUT;
          } else if (c.upstream >= 0) {
            if (!c.down.eof && c.down.buf.size() < kBuf) ue |= POLLIN;
            if (!c.up.buf.empty()) ue |= POLLOUT;
          }
          if (c.upstream < 0) ce &= ~POLLIN;  // not dialled yet: read nothing
          pfds.push_back({c.client, ce, 0});
          owners.push_back({&c, 0});
          if (c.upstream >= 0) {
            pfds.push_back({c.upstream, ue, 0});
            owners.push_back({&c, 1});
          }
        }
      }
      int n = poll(pfds.data(), pfds.size(), 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        die(std::string("poll: ") + std::strerror(errno));
      }
      if (pfds[0].revents & POLLIN) {
        unsigned char sigs[64];
        ssize_t k = read(g_sig_pipe[0], sigs, sizeof sigs);
        for (ssize_t i = 0; i < k; ++i) {
          if (handle_signal(sigs[i])) return 0;
        }
      }
      if (pfds[1].revents & POLLIN) accept_one();
      for (std::size_t i = 0; i < owners.size(); ++i) {
        short re = pfds[i + 2].revents;
        if (!re || silent_) continue;
        Conn& c = *owners[i].first;
        if (c.dead) continue;
        if (owners[i].second == 0)
          service(c, c.client, c.upstream, c.up, c.down, re);
        else if (c.connecting)
          finish_connect(c);
        else
          service(c, c.upstream, c.client, c.down, c.up, re);
      }
      reap();
    }
  }

 private:
  // Returns true when the proxy should exit.
  bool handle_signal(int sig) {
    switch (sig) {
      case SIGUSR1:
        if (!silent_) say("silent: " + std::to_string(conns_.size()) + " connections held open, nothing forwarded");
        silent_ = true;
        return false;
      case SIGUSR2:
        if (silent_) say("resumed: " + std::to_string(conns_.size()) + " connections");
        silent_ = false;
        for (auto& c : conns_)
          if (c.upstream < 0 && !c.dead) dial(c);
        return false;
      case SIGHUP:
        say("reset: " + std::to_string(conns_.size()) + " connections closed with RST");
        for (auto& c : conns_) {
          close_rst(c.client);
          close_rst(c.upstream);
          c.client = c.upstream = -1;
          c.dead = true;
        }
        reap();
        return false;
      default:
        say("exiting");
        for (auto& c : conns_) {
          close(c.client);
          if (c.upstream >= 0) close(c.upstream);
        }
        conns_.clear();
        return true;
    }
  }

  void accept_one() {
    int fd = accept(lfd_, nullptr, nullptr);
    if (fd < 0) return;
    set_nonblock(fd);
    small_buffers(fd);
    conns_.emplace_back();
    Conn& c = conns_.back();
    c.id = ++next_id_;
    c.client = fd;
    if (silent_) {
      say("conn " + std::to_string(c.id) + " accepted while silent: not dialled");
      return;
    }
    dial(c);
  }

  void dial(Conn& c) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      kill_conn(c, "socket failed");
      return;
    }
    set_nonblock(fd);
    small_buffers(fd);
    c.upstream = fd;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to_), sizeof to_) == 0) {
      c.connecting = false;
    } else if (errno == EINPROGRESS) {
      c.connecting = true;
    } else {
      kill_conn(c, std::string("connect: ") + std::strerror(errno));
    }
  }

  void finish_connect(Conn& c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      kill_conn(c, std::string("upstream connect: ") + std::strerror(err));
      return;
    }
    c.connecting = false;
  }

  // Moves bytes from `from` into `in` (its outgoing pipe) and from `out` (its incoming pipe)
  // into `from`.
  void service(Conn& c, int from, int to, Pipe& in, Pipe& out, short re) {
    if (re & (POLLERR | POLLNVAL)) {
      kill_conn(c, "socket error");
      return;
    }
    if ((re & (POLLIN | POLLHUP)) && !in.eof && in.buf.size() < kBuf) {
      char tmp[kBuf];
      ssize_t k = read(from, tmp, kBuf - in.buf.size());
      if (k > 0) {
        in.buf.insert(in.buf.end(), tmp, tmp + k);
      } else if (k == 0) {
        in.eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        kill_conn(c, std::string("read: ") + std::strerror(errno));
        return;
      }
    }
    if ((re & POLLOUT) && !out.buf.empty()) {
      ssize_t k = send(from, out.buf.data(), out.buf.size(), MSG_NOSIGNAL);
      if (k > 0) {
        out.buf.erase(out.buf.begin(), out.buf.begin() + k);
      } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        kill_conn(c, std::string("write: ") + std::strerror(errno));
        return;
      }
    }
    // Write what was just read without waiting for another turn (and pass FIN on once flushed).
    if (to >= 0 && !c.connecting && !in.buf.empty()) {
      ssize_t k = send(to, in.buf.data(), in.buf.size(), MSG_NOSIGNAL);
      if (k > 0) in.buf.erase(in.buf.begin(), in.buf.begin() + k);
      else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        kill_conn(c, std::string("write: ") + std::strerror(errno));
        return;
      }
    }
    if (to >= 0 && in.eof && in.buf.empty() && !in.shut) {
      shutdown(to, SHUT_WR);
      in.shut = true;
    }
    if (c.up.shut && c.down.shut) kill_conn(c, "");
  }

  // A reset on one side is passed on as a reset; a clean close closes both.
  void kill_conn(Conn& c, const std::string& why) {
    if (c.dead) return;
    if (!why.empty()) {
      say("conn " + std::to_string(c.id) + " closed: " + why);
      close_rst(c.client);
      close_rst(c.upstream);
    } else {
      close(c.client);
      if (c.upstream >= 0) close(c.upstream);
    }
    c.client = c.upstream = -1;
    c.dead = true;
  }

  void reap() {
    conns_.remove_if([](const Conn& c) { return c.dead; });
  }

  int lfd_;
  sockaddr_in to_;
  bool silent_ = false;
  int next_id_ = 0;
  std::list<Conn> conns_;  // stable addresses while poll() results are processed
};

void write_file(const std::string& path, const std::string& content) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << content << "\n";
    if (!f) die("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) die("cannot rename " + tmp);
}

void usage() {
  std::fprintf(stderr,
               "usage: tcp-proxy --listen ADDR:PORT --to HOST:PORT [--port-file FILE] [--pid-file FILE] "
               "[--rcvbuf BYTES]\n"
               "  SIGUSR1 silent (hold every socket, forward nothing), SIGUSR2 resume, SIGHUP reset all (RST), "
               "SIGTERM exit\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_spec, to_spec, port_file, pid_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        die(a + " needs a value");
      }
      return argv[++i];
    };
    if (a == "--listen") listen_spec = value();
    else if (a == "--to") to_spec = value();
    else if (a == "--port-file") port_file = value();
    else if (a == "--pid-file") pid_file = value();
    else if (a == "--rcvbuf") g_rcvbuf = std::atoi(value().c_str());
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      usage();
      die("unknown argument '" + a + "'");
    }
  }
  if (listen_spec.empty() || to_spec.empty()) {
    usage();
    die("--listen and --to are required");
  }
  if (g_rcvbuf < 1024) die("--rcvbuf must be at least 1024");
  sockaddr_in la = resolve(listen_spec);
  sockaddr_in to = resolve(to_spec);

  if (pipe2(g_sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) die("pipe2 failed");
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGUSR1, SIGUSR2, SIGHUP, SIGTERM, SIGINT}) sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  small_buffers(lfd);  // inherited by accepted sockets before their handshake sets the window
  if (bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0)
    die("cannot bind " + listen_spec + ": " + std::strerror(errno));
  if (listen(lfd, 128) != 0) die(std::string("listen: ") + std::strerror(errno));
  set_nonblock(lfd);
  socklen_t len = sizeof la;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&la), &len);
  int port = ntohs(la.sin_port);

  write_file(pid_file, std::to_string(getpid()));
  write_file(port_file, std::to_string(port));  // last: its presence means "ready"
  say("listening on port " + std::to_string(port) + ", forwarding to " + to_spec);
  return Proxy(lfd, to).run();
}
