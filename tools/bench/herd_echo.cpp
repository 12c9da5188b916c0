// herd-echo: the baseline for the benchmarks, the physical limit of a line protocol on this
// machine. One thread, epoll, and every byte read is written back at once, so each line is
// answered with itself: no parsing, no state, no log.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* usage = R"(usage: herd-echo [--host HOST] PORT

Listens on HOST (default 127.0.0.1) and PORT (0: any free port) and answers every
line with itself. Prints "herd-echo listening on HOST:PORT" once it listens.
Stops on SIGINT or SIGTERM.
)";

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "herd-echo: %s\n", what.c_str());
  std::exit(1);
}

int listen_on(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc)
    fail(host + ": " + gai_strerror(rc));
  int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 4096) != 0)
    fail("cannot listen on " + host + ":" + port + ": " + std::strerror(errno));
  freeaddrinfo(found);
  return fd;
}

int port_of(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

class Echo {
 public:
  explicit Echo(int listener) : listener_(listener), epoll_(epoll_create1(EPOLL_CLOEXEC)) {
    watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
  }

  [[noreturn]] void run() {
    epoll_event events[256];
    for (;;) {
      int n = epoll_wait(epoll_, events, 256, -1);
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == listener_)
          accept_all();
        else if (events[i].events & EPOLLOUT)
          drain(fd);
        else
          echo(fd);
      }
    }
  }

 private:
  // What a client did not take yet; while some is left, its reading waits.
  struct Client {
    std::string unsent;
  };

  void watch(int fd, std::uint32_t events, int op) {
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    epoll_ctl(epoll_, op, fd, &e);
  }

  void accept_all() {
    for (;;) {
      int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: the rest wait in the backlog
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (clients_.size() <= static_cast<std::size_t>(fd)) clients_.resize(fd + 1024);
      clients_[fd] = Client{};
      watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void echo(int fd) {
    auto n = read(fd, buffer_.data(), buffer_.size());
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return close(fd);
    write_out(fd, std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
  }

  void write_out(int fd, std::string_view bytes) {
    auto n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return close(fd);
    auto taken = n < 0 ? 0 : static_cast<std::size_t>(n);
    if (taken == bytes.size()) return;
    clients_[fd].unsent.assign(bytes.substr(taken));
    watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
  }

  void drain(int fd) {
    auto& client = clients_[fd];
    auto n = send(fd, client.unsent.data(), client.unsent.size(), MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return close(fd);
    if (n > 0) client.unsent.erase(0, static_cast<std::size_t>(n));
    if (client.unsent.empty()) watch(fd, EPOLLIN, EPOLL_CTL_MOD);
  }

  void close(int fd) {
    clients_[fd] = Client{};
    ::close(fd);
  }

  int listener_;
  int epoll_;
  std::vector<Client> clients_;
  std::vector<char> buffer_ = std::vector<char>(64 * 1024);
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", port;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (arg == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (port.empty() && !arg.starts_with("-")) {
      port = arg;
    } else {
      std::fputs(usage, stderr);
      return 2;
    }
  }
  if (port.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  int listener = listen_on(host, port);
  std::printf("herd-echo listening on %s:%d\n", host.c_str(), port_of(listener));
  std::fflush(stdout);
  Echo(listener).run();
}
