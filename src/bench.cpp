#include "bench.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <string_view>

#include <fmt/format.h>

#include "bench_parts.hpp"

namespace herd::bench {

const char* const usage = R"(usage: herdctl [--config PATH] bench [OPTIONS] TARGET

Sends lines to TARGET (HOST:PORT, or a server's name in the config) over many
connections, keeping a fixed number of requests in flight on each (a closed
loop), and prints requests per second and the latency of the replies.

options:
  -c, --connections N   connections at once (default 50)
  -P, --in-flight N     requests in flight on each connection (default 1); all
                        of a connection's new requests go out in one write
  -n, --requests N      stop after N requests
  -d, --duration SECS   stop sending after SECS seconds (default 10 when -n is
                        not given); with both, whichever comes first
  -l, --line TEMPLATE   the request line; %c the connection's index, %n a counter
                        over all requests, %t the time as seconds.nanoseconds,
                        %% a percent sign (default: an IAMAT for a new client
                        each time, "IAMAT c%n.cs.ucla.edu +34.068930-118.445127 %t")
  -1, --one-shot        each request on a new connection: connect, write the
                        line, close the sending side, read to EOF (the reply);
                        -c such exchanges at once
  -b, --blank-line      a reply ends at an empty line (WHATSAT), not at the end
                        of its first line
  --timeout SECS        give up when no reply comes for SECS seconds (default 10)
  --json                print the result as one JSON object
  -h, --help            show this help

A reply is one line (with -b, lines up to an empty one; a reply beginning with
"? " is always one line). Latencies are from the write of a request to the read
of its reply, counted in buckets within 1.6%. On a terminal a progress line is
shown on stderr. Ctrl-C stops sending, waits for the replies in flight and
prints the result.

output: requests answered, errors (requests with no reply: connection closed,
reset or timed out), refused (replies beginning with "? "), requests/s, and the
p50, p99 and max latency in microseconds. --json prints
  {"target", "connections", "in_flight", "one_shot", "count", "errors",
   "refused", "elapsed_s", "rps", "p50_us", "p99_us", "max_us"}

exit status: 0 when every request was answered and none refused, 1 otherwise
(or when TARGET cannot be reached), 2 on a usage error.
)";

namespace {


template <class Number>
Number number_of(std::string_view option, std::string_view text, Number low, Number high) {
  Number value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < low || value > high)
    throw UsageError(
        fmt::format("{} takes a number from {} to {}, not \"{}\"", option, low, high, text));
  return value;
}

// The option's value: what follows '=' in --name=value, or the next argument.
std::string_view value_of(std::string_view option, const std::vector<std::string>& args,
                          std::size_t& i, std::string_view inline_value) {
  if (!inline_value.empty()) return inline_value;
  if (i + 1 >= args.size()) throw UsageError(fmt::format("{} needs a value", option));
  return args[++i];
}

}  // namespace

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  bool duration_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i], inline_value;
    if (arg.starts_with("--") && arg.find('=') != std::string_view::npos) {
      inline_value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
    }
    auto value = [&] { return value_of(arg, args, i, inline_value); };
    if (arg == "-c" || arg == "--connections") {
      o.connections = number_of(arg, value(), 1, 1'000'000);
    } else if (arg == "-P" || arg == "--in-flight") {
      o.in_flight = number_of(arg, value(), 1, 65'536);
    } else if (arg == "-n" || arg == "--requests") {
      o.requests = number_of<std::uint64_t>(arg, value(), 1, UINT64_MAX / 2);
    } else if (arg == "-d" || arg == "--duration") {
      o.duration_s = number_of(arg, value(), 0.001, 1e6);
      duration_given = true;
    } else if (arg == "-l" || arg == "--line") {
      o.line = value();
    } else if (arg == "--timeout") {
      o.timeout_s = number_of(arg, value(), 0.001, 1e6);
    } else if (arg == "-1" || arg == "--one-shot") {
      o.one_shot = true;
    } else if (arg == "-b" || arg == "--blank-line") {
      o.blank_line = true;
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg.starts_with("-") && arg.size() > 1) {
      throw UsageError(fmt::format("unknown option {}", arg));
    } else if (o.target.empty()) {
      o.target = arg;
    } else {
      throw UsageError(fmt::format("one target only (\"{}\", then \"{}\")", o.target, arg));
    }
  }
  if (o.target.empty()) throw UsageError("which target? (HOST:PORT or a server's name)");
  if (o.one_shot && o.in_flight > 1)
    throw UsageError("--one-shot sends one request per connection; -P does not apply");
  if (o.requests == 0 && !duration_given) o.duration_s = 10;
  try {
    LineTemplate check(o.line);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  return o;
}

namespace {


std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// The wall-clock time as %t renders it: seconds.nanoseconds.
std::string_view wall_time(char (&text)[32]) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  auto r = fmt::format_to_n(text, sizeof text, "{}.{:09}", ts.tv_sec, ts.tv_nsec);
  return {text, r.size};
}

std::string errno_text(int error = errno) {
  return std::strerror(error);
}

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<Address> resolve(const Endpoint& endpoint, const std::string& where) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(endpoint.host.c_str(), endpoint.port.c_str(), &hints, &found); rc)
    throw Unreachable(fmt::format("cannot resolve {}: {}", where, gai_strerror(rc)));
  std::vector<Address> addresses;
  for (auto* a = found; a; a = a->ai_next) {
    Address address;
    std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
    address.length = a->ai_addrlen;
    address.family = a->ai_family;
    addresses.push_back(address);
  }
  freeaddrinfo(found);
  return addresses;
}

int open_socket(const Address& address) {
  int fd = socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("socket: {}", errno_text()));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// A connected non-blocking socket, or -1 with `error` set.
int connect_within(const Address& address, int timeout_ms, std::string& error) {
  int fd = open_socket(address);
  if (connect(fd, address.get(), address.length) == 0) return fd;
  if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t length = sizeof err;
    if (poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) == 0 &&
        err == 0)
      return fd;
    error = err ? errno_text(err) : "timed out";
  } else {
    error = errno_text();
  }
  close(fd);
  return -1;
}

// Each connection takes a descriptor: room for as many as the hard limit allows.
void raise_descriptor_limit(int connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  auto wanted = static_cast<rlim_t>(connections) + 64;
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
}

volatile std::sig_atomic_t interrupted = 0;

// The first Ctrl-C ends the run early with its result; a second one kills as usual.
void stop_on_interrupt() {
  struct sigaction action {};
  action.sa_handler = [](int) { interrupted = 1; };
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, nullptr);
}

std::string grouped(std::uint64_t n) {
  auto digits = std::to_string(n);
  for (auto i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3)
    digits.insert(static_cast<std::size_t>(i), ",");
  return digits;
}


struct Tally {
  Histogram latency;
  std::uint64_t issued = 0, count = 0, errors = 0, refused = 0;
  std::string first_error;

  std::uint64_t outstanding() const { return issued - count - errors; }
  void fail(std::uint64_t requests, std::string why) {
    errors += requests;
    if (first_error.empty()) first_error = std::move(why);
  }
};

// A line on stderr, rewritten each second, when stderr is a terminal.
class Progress {
 public:
  explicit Progress(std::int64_t start) : enabled_(isatty(STDERR_FILENO)), last_(start) {}

  void update(std::int64_t now, const Tally& tally, std::int64_t start) {
    if (!enabled_ || now - last_ < 1'000'000'000) return;
    double rate =
        static_cast<double>(tally.count - last_count_) * 1e9 / static_cast<double>(now - last_);
    fmt::print(stderr, "\r{:6.1f} s  {:>13} replies  {:>11}/s  p50 {:.0f} µs  errors {}\033[K",
               static_cast<double>(now - start) / 1e9, grouped(tally.count),
               grouped(static_cast<std::uint64_t>(rate)),
               static_cast<double>(tally.latency.quantile(0.5)) / 1e3, tally.errors);
    last_ = now;
    last_count_ = tally.count;
    shown_ = true;
  }
  void clear() {
    if (shown_) fmt::print(stderr, "\r\033[K");
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::int64_t last_;
  std::uint64_t last_count_ = 0;
};

// What both kinds of run share: the clock, the budget, the tally, the epoll set.
class Driver {
 public:
  Driver(const Options& options, std::vector<Address> addresses, std::string where)
      : options_(options),
        line_(options.line),
        addresses_(std::move(addresses)),
        where_(std::move(where)),
        epoll_(epoll_create1(EPOLL_CLOEXEC)),
        start_(now_ns()),
        progress_(start_) {
    if (epoll_ < 0) throw std::runtime_error(fmt::format("epoll_create1: {}", errno_text()));
  }
  ~Driver() { close(epoll_); }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  const Tally& tally() const { return tally_; }
  double elapsed_s() const { return static_cast<double>(end_ - start_) / 1e9; }

 protected:
  bool may_issue() const {
    return !stopping_ && (options_.requests == 0 || tally_.issued < options_.requests);
  }

  void watch(int fd, std::uint32_t index, std::uint32_t events, int op = EPOLL_CTL_ADD) {
    epoll_event e{};
    e.events = events;
    e.data.u32 = index;
    epoll_ctl(epoll_, op, fd, &e);
  }

  // Waits for events and hands each to `on_event(index, events)` until no request is left
  // outstanding and no more may be sent.
  template <class OnEvent>
  void loop(OnEvent&& on_event) {
    std::int64_t duration = static_cast<std::int64_t>(options_.duration_s * 1e9);
    std::int64_t timeout = static_cast<std::int64_t>(options_.timeout_s * 1e9);
    last_reply_ = start_;
    epoll_event events[256];
    while (tally_.outstanding() > 0) {
      int n = epoll_wait(epoll_, events, 256, 100);
      if (n < 0 && errno != EINTR)
        throw std::runtime_error(fmt::format("epoll_wait: {}", errno_text()));
      for (int i = 0; i < n; ++i) on_event(events[i].data.u32, events[i].events);
      auto now = now_ns();
      if (interrupted || (duration > 0 && now - start_ >= duration)) stopping_ = true;
      if (now - last_reply_ > timeout) {
        stalled(now);
        break;
      }
      progress_.update(now, tally_, start_);
    }
    end_ = now_ns();
    progress_.clear();
  }

  void replied(std::int64_t now) { last_reply_ = now; }

  void stalled(std::int64_t now) {
    tally_.fail(tally_.outstanding(), fmt::format("no reply from {} for {:.1f} s", where_,
                                                  static_cast<double>(now - last_reply_) / 1e9));
  }

  // A connect that failed before any request was answered: the target is not there.
  void connect_failed(const std::string& error) {
    tally_.fail(1, fmt::format("cannot connect to {}: {}", where_, error));
    if (tally_.count == 0) stopping_ = true;
  }

  const Options& options_;
  LineTemplate line_;
  std::vector<Address> addresses_;
  std::string where_;
  int epoll_;
  Tally tally_;
  std::int64_t start_, end_ = 0, last_reply_ = 0;
  bool stopping_ = false;
  Progress progress_;
};

// Persistent connections, each with up to -P requests in flight.
class Pipelined : public Driver {
 public:
  using Driver::Driver;

  void run() {
    connect_all();
    auto now = now_ns();
    start_ = now;
    for (auto& c : connections_) refill(c, now);
    loop([this](std::uint32_t index, std::uint32_t events) {
      auto& c = connections_[index];
      if (c.fd >= 0 && (events & EPOLLOUT)) flush(c);
      if (c.fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) receive(c);
    });
    for (auto& c : connections_)
      if (c.fd >= 0) close(c.fd);
  }

 private:
  struct Connection {
    Connection(int index, bool blank_line) : index(index), replies(blank_line) {}
    int index;
    int fd = -1;
    std::uint64_t sent = 0, answered = 0;
    std::vector<std::int64_t> sent_at;  // a ring of the in-flight requests' send times
    ReplyScanner replies;
    std::string out;  // requests written, from `out_taken` on not yet taken by the socket
    std::size_t out_taken = 0;
    bool waiting_to_write = false;
  };

  void connect_all() {
    std::string error;
    int timeout_ms = static_cast<int>(options_.timeout_s * 1000);
    auto connect_one = [&](int fd_index) {
      for (const auto& a : addresses_)
        if (int fd = connect_within(a, timeout_ms, error); fd >= 0) {
          if (fd_index == 0) addresses_ = {a};  // the one that answered, for the rest
          return fd;
        }
      throw Unreachable(fmt::format("cannot connect to {}: {}", where_, error));
    };
    connections_.reserve(static_cast<std::size_t>(options_.connections));
    for (int i = 0; i < options_.connections; ++i) {
      auto& c = connections_.emplace_back(i, options_.blank_line);
      c.fd = connect_one(i);
      c.sent_at.resize(static_cast<std::size_t>(options_.in_flight));
      watch(c.fd, static_cast<std::uint32_t>(i), EPOLLIN);
    }
  }

  void refill(Connection& c, std::int64_t now) {
    char time_text[32];
    std::string_view time = line_.uses_time() ? wall_time(time_text) : std::string_view();
    auto depth = static_cast<std::uint64_t>(options_.in_flight);
    while (c.sent - c.answered < depth && may_issue()) {
      line_.render(c.out, c.index, tally_.issued++, time);
      c.sent_at[c.sent++ % depth] = now;
    }
    flush(c);
  }

  void flush(Connection& c) {
    if (c.out_taken == c.out.size()) return;
    auto n = send(c.fd, c.out.data() + c.out_taken, c.out.size() - c.out_taken, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return lose(c, errno_text());
    if (n > 0) c.out_taken += static_cast<std::size_t>(n);
    bool pending = c.out_taken < c.out.size();
    if (!pending) {
      c.out.clear();
      c.out_taken = 0;
    }
    if (pending != c.waiting_to_write) {
      c.waiting_to_write = pending;
      watch(c.fd, static_cast<std::uint32_t>(c.index), EPOLLIN | (pending ? EPOLLOUT : 0u),
            EPOLL_CTL_MOD);
    }
  }

  void receive(Connection& c) {
    auto n = read(c.fd, buffer_.data(), buffer_.size());
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return lose(c, n == 0 ? "closed by the server" : errno_text());
    auto now = now_ns();
    auto depth = static_cast<std::uint64_t>(options_.in_flight);
    bool unasked = false;
    c.replies.feed(buffer_.data(), buffer_.data() + n, [&](bool refused) {
      if (c.answered == c.sent) {
        unasked = true;
        return;
      }
      tally_.latency.record(static_cast<std::uint64_t>(now - c.sent_at[c.answered++ % depth]));
      ++tally_.count;
      tally_.refused += refused;
    });
    replied(now);
    if (unasked) return lose(c, "answered more lines than it was sent");
    refill(c, now);
  }

  void lose(Connection& c, const std::string& why) {
    tally_.fail(c.sent - c.answered,
                fmt::format("connection {} to {}: {}, with {} requests unanswered", c.index, where_,
                            why, c.sent - c.answered));
    close(c.fd);
    c.fd = -1;
    c.answered = c.sent;
  }

  std::vector<Connection> connections_;
  std::array<char, 64 * 1024> buffer_;
};

// One request per connection: connect, write, half-close, read to EOF.
class OneShot : public Driver {
 public:
  using Driver::Driver;

  void run() {
    exchanges_.resize(static_cast<std::size_t>(options_.connections));
    auto now = now_ns();
    start_ = now;
    for (std::size_t i = 0; i < exchanges_.size() && may_issue(); ++i) begin(i, now);
    loop([this](std::uint32_t index, std::uint32_t events) {
      auto& x = exchanges_[index];
      if (x.fd < 0) return;
      if (!x.connected) return connected(x, index);
      if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(x, index);
    });
    for (auto& x : exchanges_)
      if (x.fd >= 0) close(x.fd);
  }

 private:
  struct Exchange {
    int fd = -1;
    bool connected = false;
    std::int64_t started = 0;
    std::string request;
    std::uint64_t reply_bytes = 0;
    bool refused = false;
  };

  void begin(std::size_t index, std::int64_t now) {
    auto& x = exchanges_[index];
    x = Exchange{};
    x.started = now;
    char time_text[32];
    line_.render(x.request, static_cast<int>(index), tally_.issued++,
                 line_.uses_time() ? wall_time(time_text) : std::string_view());
    x.fd = open_socket(addresses_.front());
    if (connect(x.fd, addresses_.front().get(), addresses_.front().length) != 0 &&
        errno != EINPROGRESS) {
      connect_failed(errno_text());  // (this slot stays idle: retrying at once would recurse)
      close(x.fd);
      x.fd = -1;
      return;
    }
    watch(x.fd, static_cast<std::uint32_t>(index), EPOLLOUT);
  }

  void connected(Exchange& x, std::size_t index) {
    int err = 0;
    socklen_t length = sizeof err;
    getsockopt(x.fd, SOL_SOCKET, SO_ERROR, &err, &length);
    if (err) return finish_failed(x, index, errno_text(err), true);
    auto n = send(x.fd, x.request.data(), x.request.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(x.request.size()))
      return finish_failed(x, index, n < 0 ? errno_text() : "short write", false);
    shutdown(x.fd, SHUT_WR);
    x.connected = true;
    watch(x.fd, static_cast<std::uint32_t>(index), EPOLLIN, EPOLL_CTL_MOD);
  }

  void receive(Exchange& x, std::size_t index) {
    auto n = read(x.fd, buffer_.data(), buffer_.size());
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) return finish_failed(x, index, errno_text(), false);
    if (n > 0) {
      if (x.reply_bytes == 0) x.refused = n >= 2 && buffer_[0] == '?' && buffer_[1] == ' ';
      x.reply_bytes += static_cast<std::uint64_t>(n);
      return;
    }
    if (x.reply_bytes == 0) return finish_failed(x, index, "closed without a reply", false);
    auto now = now_ns();
    tally_.latency.record(static_cast<std::uint64_t>(now - x.started));
    ++tally_.count;
    tally_.refused += x.refused;
    replied(now);
    next(x, index, now);
  }

  void finish_failed(Exchange& x, std::size_t index, const std::string& why, bool connecting) {
    if (connecting)
      connect_failed(why);
    else
      tally_.fail(1, fmt::format("a request to {}: {}", where_, why));
    next(x, index, now_ns());
  }

  void next(Exchange& x, std::size_t index, std::int64_t now) {
    close(x.fd);
    x.fd = -1;
    if (may_issue()) begin(index, now);
  }

  std::vector<Exchange> exchanges_;
  std::array<char, 64 * 1024> buffer_;
};


std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out + "\"";
}

void print_result(const Options& o, const std::string& where, const Tally& t, double elapsed) {
  double rps = elapsed > 0 ? static_cast<double>(t.count) / elapsed : 0;
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  double p50 = us(t.latency.quantile(0.5)), p99 = us(t.latency.quantile(0.99)),
         max = us(t.latency.max());
  if (o.json) {
    fmt::print(
        "{{\"target\": {}, \"connections\": {}, \"in_flight\": {}, \"one_shot\": {}, "
        "\"count\": {}, \"errors\": {}, \"refused\": {}, \"elapsed_s\": {:.3f}, \"rps\": {:.0f}, "
        "\"p50_us\": {:.1f}, \"p99_us\": {:.1f}, \"max_us\": {:.1f}}}\n",
        json_string(where), o.connections, o.one_shot ? 1 : o.in_flight, o.one_shot, t.count,
        t.errors, t.refused, elapsed, rps, p50, p99, max);
    return;
  }
  fmt::print("{}: {} connection{}, {}\n", where, o.connections, o.connections == 1 ? "" : "s",
             o.one_shot ? "one request each" : fmt::format("{} in flight on each", o.in_flight));
  fmt::print("{} replies in {:.2f} s: {} requests/s\n", grouped(t.count), elapsed,
             grouped(static_cast<std::uint64_t>(std::llround(rps))));
  fmt::print("latency: p50 {:.1f} µs, p99 {:.1f} µs, max {:.1f} µs\n", p50, p99, max);
  fmt::print("{} errors, {} refused\n", grouped(t.errors), grouped(t.refused));
}

template <class Run>
int measure(const Options& options, std::vector<Address> addresses, const std::string& where) {
  Run run(options, std::move(addresses), where);
  run.run();
  const auto& t = run.tally();
  if (t.count > 0 || options.json) print_result(options, where, t, run.elapsed_s());
  if (!t.first_error.empty())
    fmt::print(stderr, "herdctl: bench: {} requests failed; the first: {}\n", grouped(t.errors),
               t.first_error);
  else if (t.refused)
    fmt::print(stderr, "herdctl: bench: {} replies were \"? \" (refused)\n", grouped(t.refused));
  return t.errors || t.refused || t.count == 0 ? 1 : 0;
}

}  // namespace

int run(const Options& options, const Endpoint& endpoint) {
  auto where = fmt::format("{}:{}", endpoint.host, endpoint.port);
  if (!endpoint.name.empty()) where += fmt::format(" ({})", endpoint.name);
  try {
    raise_descriptor_limit(options.connections);
    stop_on_interrupt();
    auto addresses = resolve(endpoint, where);
    return options.one_shot ? measure<OneShot>(options, std::move(addresses), where)
                            : measure<Pipelined>(options, std::move(addresses), where);
  } catch (const std::runtime_error& e) {
    fmt::print(stderr, "herdctl: bench: {}\n", e.what());
    return 1;
  }
}

}  // namespace herd::bench
