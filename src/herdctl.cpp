// herdctl: starts a herd's servers, and talks to them as a client would.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bench.hpp"
#include "certs.hpp"
#include "config.hpp"
#include "reload.hpp"
#include "send.hpp"
#include "status.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* usage = R"(usage: herdctl [--config PATH] COMMAND [ARGS]

Starts a herd's servers and talks to them as a client would.

commands:
  up [NAME...]          start the named servers (default: all) in the foreground,
                        wait until each listens, print where; Ctrl-C stops them all
  send [--json] TARGET [LINE...]
                        send the lines (or standard input's lines) to a server (a
                        name, or HOST:PORT), print its replies; exits 1 when the
                        server cannot be reached or answers "?"; see send --help
  status [--json]       ask each server how it is: links, records, clients,
                        IAMAT/s, uptime (through its metrics port); see status --help
  watch [--json]        the same, refreshed every second; Ctrl-C exits
  reload [NAME...]      have the named servers (default: all) that run on this
                        machine re-read the config (SIGHUP); print each outcome;
                        see reload --help
  certs [--dir DIR]     make a CA and a certificate and key per server for [tls];
                        see certs --help
  bench [OPTIONS] TARGET
                        load a server (a name, or HOST:PORT) with requests and
                        print requests/s and latency; see bench --help

options:
  --config PATH         the herd's TOML file (default: ./herd.toml if there is
                        one, else $HERD_CONFIG); `send` and `bench` to a
                        HOST:PORT need none
  --server-bin PATH     the herd-server program for `up` (default: the one next to herdctl)
  --version             print herdctl's version
  -h, --help            show this help (also after a command)
)";

constexpr const char* reload_usage = R"(usage: herdctl [--config PATH] reload [NAME...]

Has each named server (all of the file's servers by default) re-read its config
file: finds its process id in LOG_DIR/NAME.pid (log.dir of the config; the server
writes it while it runs), sends it SIGHUP, and waits up to 5 s for the outcome in
LOG_DIR/NAME.log. Prints one line per server:
  NAME: reloaded: neighbors: +Dee, -Hands
  NAME: refused: needs a restart: servers.NAME.port 12000 -> 12005
  NAME: not running on this machine (no logs/NAME.pid)
A refused reload leaves the server running with the config it had. A server on
another machine is reloaded there (herdctl reload, or systemctl reload herd@NAME,
or kill -HUP). SIGHUP also reopens the server's log file. herdctl reads the file
first: one that does not load is reported and no server is signalled.

Exits 0 when every server reloaded, 1 otherwise; 2 for a usage or config error.
)";

constexpr const char* up_usage = R"(usage: herdctl [--config PATH] up [NAME...]

Starts the named servers (all of the file's servers by default) as child
processes, waits until each one listens, and prints a table of names,
addresses and neighbors. Runs in the foreground: Ctrl-C (or SIGTERM, or
SIGHUP when its terminal closes) stops every server and waits for them to
exit. A server that dies is reported; the others keep running.
)";

constexpr const char* send_usage =
    R"usage(usage: herdctl [--config PATH] send [--json] [--tls [--ca FILE]] TARGET [LINE...]

Connects to TARGET as a client: a server's name in the config file, or
HOST:PORT (no config file needed; an IPv6 host in brackets, [::1]:12000).
Sends each LINE, or with none each line of standard input as it arrives, and
prints each reply as soon as it is complete, in the order of the lines. Once
the input ends it closes its sending side and waits for the last replies.

options:
  --json   print each reply as one JSON object on a line of its own:
             {"server": NAME or HOST:PORT, "line": the line sent,
              "at": the AT line (IAMAT, WHATSAT),
              "places": the places JSON (WHATSAT)}
           a reply "? ..." gives {"server", "line", "error": "? ..."}; places
           that are not JSON give "error" and "places_text"; any other reply
           gives "reply" with its text. Text that is not UTF-8 becomes U+FFFD.
  --tls    connect over TLS: to the server's tls_port (a name), or to HOST:PORT;
           the server's certificate must chain to [tls] ca of the config (or
           --ca FILE) and name the server (or HOST)
  --ca FILE  the CA certificate for --tls (default: [tls] ca of the config)

exit status: 0 when every line was answered, 1 when the server cannot be
reached, answers no line for 10 s while one is owed, closes with lines
unanswered, or answers "?" to a line; 2 for a usage or config error.

examples:
  herdctl send Goloman "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 $(date +%s.%N)"
  herdctl send --json 127.0.0.1:12004 "WHATSAT kiwi.cs.ucla.edu 10 5" | jq .places.results
  printf 'WHATSAT a 10 5\nWHATSAT b 10 5\n' | herdctl send --json Welsh
)usage";

constexpr const char* status_usage = R"(usage: herdctl [--config PATH] status [--json]
       herdctl [--config PATH] watch [--json] [--count N]

Asks each server of the file how it is, through its metrics port (GET /metrics,
1 s to answer), and prints one row per server: its state, its links up of all
and which are down, the records it stores, the clients connected, IAMATs per
second and its uptime. States: ok (every link up), links down, not answering
(it accepts connections but does not answer within 1 s: stopped or stuck),
down (nothing listens), listening (no metrics_port: only its client port was
checked; metrics off).

IAMAT/s: status divides the server's IAMATs by its uptime (the average since
it started); watch shows the rate between two refreshes (the first refresh
shows the average since start).

watch prints the table again every second, in place on a terminal (ANSI clear
screen); Ctrl-C exits. --count N stops after N refreshes.

options:
  --json   one JSON object per server and line: server, address, state,
           listening, metrics, answering; when it answered also links_up,
           links_total, links_down (names), records, clients, iamat_total,
           iamat_per_second, uptime_seconds; when not, problem

exit status (status): 0 when every server answers with all its links up (or,
without metrics, listens), 1 otherwise; 2 for a usage or config error.
)";

[[noreturn]] void fail(const std::string& message, int status = 1) {
  fmt::print(stderr, "herdctl: {}\n", message);
  std::exit(status);
}

struct Options {
  std::string config;  // as given; empty: found by find_config()
  bool config_from_env = false;
  std::string server_bin;
  std::string command;
  std::vector<std::string> args;
  bool help = false;
  bool version = false;
};

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (arg == "--version") {
      o.version = true;
    } else if (arg == "--config" || arg == "--server-bin") {
      if (i + 1 >= argc) fail(fmt::format("{} needs a value\n\n{}", arg, usage), 2);
      (arg == "--config" ? o.config : o.server_bin) = argv[++i];
    } else if (arg.starts_with("-") && o.command != "send" && o.command != "bench" &&
               o.command != "certs" && o.command != "status" && o.command != "watch") {
      fail(fmt::format("unknown option {}\n\n{}", arg, usage), 2);
    } else if (o.command.empty()) {
      o.command = arg;
    } else {
      o.args.emplace_back(arg);
    }
  }
  return o;
}

// The config file: --config, else ./herd.toml, else $HERD_CONFIG. Fails saying where it looked.
void find_config(Options& options) {
  if (!options.config.empty()) return;
  if (std::filesystem::exists("herd.toml")) {
    options.config = "herd.toml";
    return;
  }
  if (const char* named = std::getenv("HERD_CONFIG"); named && *named) {
    options.config = named;
    options.config_from_env = true;
    return;
  }
  std::error_code ec;
  auto here = std::filesystem::current_path(ec);
  fail(fmt::format("no config file: there is no herd.toml in the current directory ({}) and "
                   "HERD_CONFIG is not set; name the herd's file with --config PATH (or "
                   "HERD_CONFIG=PATH)",
                   ec ? "?" : here.string()),
       2);
}

// Whether find_config() would find a file.
bool find_config_quietly(const Options& options) {
  const char* named = std::getenv("HERD_CONFIG");
  return !options.config.empty() || std::filesystem::exists("herd.toml") || (named && *named);
}

herd::Config load_config(Options& options) {
  find_config(options);
  try {
    return herd::load_config(options.config);
  } catch (const herd::ConfigError& e) {
    fail(fmt::format("{}{}", e.what(), options.config_from_env ? " (named by HERD_CONFIG)" : ""),
         2);
  }
}

// "host:port", or "[host]:port" for an IPv6 address.
std::string address_of(const std::string& host, const std::string& port) {
  return host.find(':') == std::string::npos ? fmt::format("{}:{}", host, port)
                                             : fmt::format("[{}]:{}", host, port);
}

// A connected non-blocking TCP socket to host:port (within 10 s), or an error message.
std::optional<int> connect_to(const std::string& host, const std::string& port,
                              std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = gai_strerror(rc);
    return std::nullopt;
  }
  std::optional<int> result;
  for (auto* a = found; a && !result; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int soerror = ETIMEDOUT;
      socklen_t length = sizeof soerror;
      if (poll(&p, 1, 10'000) == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerror, &length);
      errno = soerror;
      rc = soerror == 0 ? 0 : -1;
    }
    if (rc == 0) {
      result = fd;
    } else {
      error = std::strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(found);
  return result;
}

bool listening(const herd::ServerConfig& server) {
  std::string error;
  auto fd = connect_to(server.host, std::to_string(server.port), error);
  if (fd) close(*fd);
  return fd.has_value();
}

std::string neighbors_of(const herd::ServerConfig& server) {
  std::string text;
  for (const auto& n : server.neighbors) text += (text.empty() ? "" : ", ") + n;
  return text.empty() ? "-" : text;
}

struct StatusOptions {
  bool json = false;
  int count = 0;  // watch: refreshes before exiting; 0: until Ctrl-C
};

StatusOptions parse_status_options(const std::vector<std::string>& args, bool watch) {
  StatusOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      options.json = true;
    } else if (watch && args[i] == "--count" && i + 1 < args.size()) {
      char* end = nullptr;
      long n = std::strtol(args[++i].c_str(), &end, 10);
      if (*end != '\0' || n < 1)
        fail(fmt::format("--count takes a positive number\n\n{}", status_usage), 2);
      options.count = static_cast<int>(n);
    } else {
      fail(fmt::format("{}: unknown argument {}\n\n{}", watch ? "watch" : "status", args[i],
                       status_usage),
           2);
    }
  }
  return options;
}

std::vector<herd::status::ServerStatus> query_all(const herd::Config& config) {
  std::vector<herd::status::ServerStatus> servers;
  for (const auto& s : config.servers) servers.push_back(herd::status::query(s, 1s));
  return servers;
}

void print_status(const std::vector<herd::status::ServerStatus>& servers, bool json,
                  std::string_view rate_title) {
  if (json) {
    for (const auto& s : servers) fmt::print("{}\n", herd::status::json_line(s));
  } else {
    fmt::print("{}", herd::status::table(servers, rate_title));
  }
  std::fflush(stdout);
}

int status(const herd::Config& config, const std::vector<std::string>& args) {
  auto options = parse_status_options(args, false);
  auto servers = query_all(config);
  bool all = true;
  for (auto& s : servers) {
    herd::status::rate_since_start(s);
    all = all && (s.state() == "ok" || s.state() == "listening");
  }
  print_status(servers, options.json, "IAMAT/s avg");
  return all ? 0 : 1;
}

int watch(const herd::Config& config, const std::vector<std::string>& args) {
  auto options = parse_status_options(args, true);
  bool terminal = isatty(STDOUT_FILENO) && !options.json;
  std::vector<herd::status::ServerStatus> earlier;
  auto earlier_at = Clock::now();
  for (int round = 1;; ++round) {
    auto started = Clock::now();
    auto servers = query_all(config);
    for (std::size_t i = 0; i < servers.size(); ++i) {
      if (earlier.empty())
        herd::status::rate_since_start(servers[i]);
      else
        herd::status::rate_between(earlier[i], servers[i],
                                   std::chrono::duration<double>(started - earlier_at).count());
    }
    if (terminal) fmt::print("\033[H\033[2J");
    std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
    if (!options.json) fmt::print("{}  (every 1 s; Ctrl-C exits)\n", when);
    print_status(servers, options.json, earlier.empty() ? "IAMAT/s avg" : "IAMAT/s");
    if (options.count && round >= options.count) return 0;
    earlier = std::move(servers);
    earlier_at = started;
    std::this_thread::sleep_until(started + 1s);
  }
}

// HOST:PORT as given (an IPv6 host in brackets), with no config file; or the address of the
// config's server of that name (server names have no ':').
herd::bench::Endpoint endpoint_of(const std::string& target, Options& options) {
  if (auto colon = target.rfind(':'); colon != std::string::npos) {
    auto host = target.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    return {host.empty() ? "127.0.0.1" : host, target.substr(colon + 1), ""};
  }
  auto config = load_config(options);
  const auto& server = config.server(target);
  return {server.host, std::to_string(server.port), server.name};
}

int bench(Options& options) {
  herd::bench::Options bench_options;
  try {
    bench_options = herd::bench::parse_options(options.args);
  } catch (const herd::bench::UsageError& e) {
    fail(fmt::format("bench: {}\n\n{}", e.what(), herd::bench::usage), 2);
  }
  return herd::bench::run(bench_options, endpoint_of(bench_options.target, options));
}

// What `send` talks over: a TCP socket. A TLS stream would offer the same operations, on
// the same non-blocking descriptor.
class TcpStream {
 public:
  explicit TcpStream(int fd) : fd_(fd) {}
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream() { close(fd_); }

  int fd() const { return fd_; }
  // As read() and write(): bytes moved, 0 at EOF, -1 with errno (EAGAIN: try when poll says).
  ssize_t read_some(char* data, std::size_t size) { return read(fd_, data, size); }
  ssize_t write_some(const char* data, std::size_t size) {
    return ::send(fd_, data, size, MSG_NOSIGNAL);
  }
  // Tells the server no more lines come: it answers the rest, then closes.
  void finish_sending() { shutdown(fd_, SHUT_WR); }
  // Whether bytes wait to be read that poll() cannot see.
  bool has_buffered() const { return false; }

 private:
  int fd_;
};

// The same over TLS (OpenSSL on the non-blocking socket), after a handshake that checks the
// server's certificate against the CA and the name it must carry.
class TlsStream {
 public:
  TlsStream(int fd, const std::string& ca, const std::string& name) : fd_(fd) {
    context_ = SSL_CTX_new(TLS_client_method());
    if (!context_) fail("TLS: cannot make a context");
    SSL_CTX_set_min_proto_version(context_, TLS1_3_VERSION);
    if (SSL_CTX_load_verify_locations(context_, ca.c_str(), nullptr) != 1)
      fail(fmt::format("TLS: cannot use {} as the CA certificate: {}", ca, openssl_error()));
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(context_);
    SSL_set_fd(ssl_, fd);
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    auto* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
      SSL_set1_host(ssl_, name.c_str());
      SSL_set_tlsext_host_name(ssl_, name.c_str());
    }
  }
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;
  ~TlsStream() {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    close(fd_);
  }

  // Returns an error message, or empty once the handshake is done.
  std::string handshake(Clock::time_point deadline) {
    for (;;) {
      ERR_clear_error();
      int rc = SSL_connect(ssl_);
      if (rc == 1) return {};
      int error = SSL_get_error(ssl_, rc);
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
        auto result = SSL_get_verify_result(ssl_);
        if (result != X509_V_OK)
          return fmt::format("its certificate was refused: {}",
                             X509_verify_cert_error_string(result));
        return "TLS handshake failed: " + openssl_error();
      }
      pollfd p{fd_, static_cast<short>(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) == 0)
        return "no TLS handshake within 10 s";
    }
  }

  int fd() const { return fd_; }
  ssize_t read_some(char* data, std::size_t size) {
    std::size_t total = 0;
    while (total < size) {
      ERR_clear_error();
      int n = SSL_read(ssl_, data + total, static_cast<int>(std::min<std::size_t>(size - total, 1 << 30)));
      if (n > 0) {
        total += static_cast<std::size_t>(n);
        continue;
      }
      int error = SSL_get_error(ssl_, n);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
      // close_notify, or the connection ended without one: the end either way.
      if (total > 0) return static_cast<ssize_t>(total);
      return 0;
    }
    if (total > 0) return static_cast<ssize_t>(total);
    errno = EAGAIN;
    return -1;
  }
  ssize_t write_some(const char* data, std::size_t size) {
    ERR_clear_error();
    int n = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
    if (n > 0) return n;
    int error = SSL_get_error(ssl_, n);
    errno = error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
    return -1;
  }
  // close_notify, then the TCP half-close: TLS 1.3 lets the server go on answering.
  void finish_sending() {
    SSL_shutdown(ssl_);
    shutdown(fd_, SHUT_WR);
  }
  bool has_buffered() const { return SSL_pending(ssl_) > 0; }

 private:
  static std::string openssl_error() {
    char text[256] = "unknown error";
    if (auto code = ERR_get_error()) ERR_error_string_n(code, text, sizeof text);
    return text;
  }

  int fd_;
  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
};

struct SendOptions {
  bool json = false;
  bool tls = false;
  std::string ca;  // --ca; empty: the config's [tls] ca
  std::string target;
  std::vector<std::string> lines;  // empty: standard input's
};

SendOptions parse_send_options(const std::vector<std::string>& args) {
  SendOptions o;
  std::size_t i = 0;
  for (; i < args.size() && args[i].starts_with("-"); ++i) {
    if (args[i] == "--json") {
      o.json = true;
    } else if (args[i] == "--tls") {
      o.tls = true;
    } else if (args[i] == "--ca" && i + 1 < args.size()) {
      o.ca = args[++i];
    } else {
      fail(fmt::format("send: unknown option {}\n\n{}", args[i], send_usage), 2);
    }
  }
  if (!o.ca.empty() && !o.tls) fail(fmt::format("send: --ca goes with --tls\n\n{}", send_usage), 2);
  if (i == args.size()) fail(fmt::format("send: which server?\n\n{}", send_usage), 2);
  o.target = args[i];
  // A LINE with newlines in it is several lines.
  for (++i; i < args.size(); ++i) {
    std::string_view text = args[i];
    for (auto end = text.find('\n'); end != std::string_view::npos; end = text.find('\n')) {
      o.lines.emplace_back(text.substr(0, end));
      text.remove_prefix(end + 1);
    }
    if (!text.empty() || args[i].empty()) o.lines.emplace_back(text);
  }
  return o;
}

// The lines of standard input, as they arrive (from a pipe, a terminal or a file).
class StdinLines {
 public:
  bool done() const { return done_; }
  // Reads what is there (poll says it is); a last line without its newline counts at EOF.
  std::vector<std::string> read_some() {
    char buffer[64 * 1024];
    auto n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return {};
    if (n < 0) fail(fmt::format("reading standard input: {}", std::strerror(errno)));
    partial_.append(buffer, static_cast<std::size_t>(n));
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (auto end = partial_.find('\n'); end != std::string::npos;
         start = end + 1, end = partial_.find('\n', start))
      lines.push_back(partial_.substr(start, end - start));
    partial_.erase(0, start);
    if (n == 0) {
      done_ = true;
      if (!partial_.empty()) lines.push_back(std::exchange(partial_, {}));
    }
    return lines;
  }

 private:
  std::string partial_;
  bool done_ = false;
};

// Prints each reply as the server sent it, or as one line of JSON.
class ReplyPrinter {
 public:
  ReplyPrinter(std::string server, bool json) : server_(std::move(server)), json_(json) {}
  void print(const std::vector<herd::send::Reply>& replies) {
    for (const auto& reply : replies) {
      refused_ = refused_ || reply.text.starts_with("? ");
      if (json_)
        fmt::print("{}\n", herd::send::json_reply(server_, reply));
      else
        fmt::print("{}", reply.text);
    }
    if (!replies.empty()) std::fflush(stdout);
  }
  bool refused() const { return refused_; }

 private:
  std::string server_;
  bool json_;
  bool refused_ = false;
};

int milliseconds_until(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<decltype(left)>(0, left));
}

// Sends the lines as they come and prints the replies as they complete, until the input has
// ended and the server has answered and closed. Returns the exit status.
template <typename Stream>
int exchange(Stream& stream, const std::string& server, SendOptions options) {
  constexpr auto reply_timeout = 10s;
  constexpr std::size_t max_unsent = 1 << 20;  // read no more input until the server takes this
  herd::send::ReplySplitter splitter;
  ReplyPrinter printer(server, options.json);
  StdinLines input;
  bool from_stdin = options.lines.empty();
  std::string unsent;
  auto last_heard = Clock::now();  // from the server, since a reply was owed
  auto queue = [&](std::vector<std::string> lines) {
    if (!lines.empty() && splitter.unanswered() == 0) last_heard = Clock::now();
    for (auto& line : lines) {
      unsent += line + "\n";
      splitter.sent(std::move(line));
    }
  };
  queue(std::move(options.lines));
  bool sending = true;  // until the input has ended and all is sent, or the server refuses more
  for (;;) {
    bool input_over = !from_stdin || input.done();
    if (sending && input_over && unsent.empty()) {
      stream.finish_sending();
      sending = false;
    }
    pollfd fds[2] = {{stream.fd(), POLLIN, 0}, {-1, POLLIN, 0}};
    if (sending && !unsent.empty()) fds[0].events |= POLLOUT;
    if (sending && !input_over && unsent.size() < max_unsent) fds[1].fd = STDIN_FILENO;
    // Waiting for input with no reply owed takes as long as it takes; waiting for the server
    // does not.
    bool owed = splitter.unanswered() > 0 || !sending;
    bool buffered = stream.has_buffered();
    int ready = poll(fds, 2,
                     buffered ? 0 : owed ? milliseconds_until(last_heard + reply_timeout) : -1);
    if (buffered) fds[0].revents |= POLLIN, ready = std::max(ready, 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0 && splitter.unanswered() > 0)
      fail(fmt::format("{} answered nothing for {} s with {} line(s) unanswered", server,
                       reply_timeout.count(), splitter.unanswered()));
    if (ready == 0)
      fail(fmt::format("{} did not close the connection within {} s of its last reply", server,
                       reply_timeout.count()));
    if (fds[1].revents) queue(input.read_some());
    if (fds[0].revents & POLLOUT) {
      auto n = stream.write_some(unsent.data(), unsent.size());
      if (n > 0)
        unsent.erase(0, static_cast<std::size_t>(n));
      else if (errno != EAGAIN && errno != EINTR)
        sending = false;  // the server closed: what it did answer is still read below
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[64 * 1024];
      auto n = stream.read_some(buffer, sizeof buffer);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) break;
      last_heard = Clock::now();
      printer.print(splitter.received({buffer, static_cast<std::size_t>(n)}));
    }
  }
  if (!options.json) fmt::print("{}", splitter.rest());  // a reply cut short, as it came
  std::fflush(stdout);
  if (splitter.unanswered() > 0) {
    fmt::print(stderr, "herdctl: {} closed the connection with {} line(s) unanswered\n", server,
               splitter.unanswered());
    return 1;
  }
  if (from_stdin && !input.done()) {
    fmt::print(stderr, "herdctl: {} closed the connection before the input ended\n", server);
    return 1;
  }
  return printer.refused() ? 1 : 0;
}

int send(Options& options) {
  auto send_options = parse_send_options(options.args);
  auto endpoint = endpoint_of(send_options.target, options);
  std::string ca = send_options.ca;
  if (send_options.tls && (ca.empty() || !endpoint.name.empty())) {
    // The CA and the TLS port come from the config.
    bool named = !endpoint.name.empty();
    if (!named && !find_config_quietly(options))
      fail("send --tls: which CA? Give --ca FILE, or a config file with [tls]", 2);
    auto config = load_config(options);
    if (ca.empty()) {
      if (!config.tls.enabled())
        fail(fmt::format("send --tls: {} has no [tls] table; give --ca FILE", config.file.string()),
             2);
      ca = config.tls.ca.string();
    }
    if (named) {
      const auto& server = config.server(endpoint.name);
      if (!server.tls_port)
        fail(fmt::format("send --tls: servers.{} has no tls_port in {}", server.name,
                         config.file.string()),
             2);
      endpoint.port = std::to_string(server.tls_port);
    }
  }
  auto address = address_of(endpoint.host, endpoint.port);
  auto server = endpoint.name.empty() ? send_options.target : endpoint.name;
  std::string error;
  auto fd = connect_to(endpoint.host, endpoint.port, error);
  if (!fd) {
    if (endpoint.name.empty()) fail(fmt::format("cannot reach {}: {}", address, error));
    fail(fmt::format("cannot reach {} at {}: {}", endpoint.name, address, error));
  }
  if (!send_options.tls) {
    TcpStream stream(*fd);
    return exchange(stream, server, std::move(send_options));
  }
  TlsStream stream(*fd, ca, endpoint.name.empty() ? endpoint.host : endpoint.name);
  if (auto failed = stream.handshake(Clock::now() + 10s); !failed.empty())
    fail(fmt::format("cannot reach {} at {} over TLS: {}", server, address, failed));
  return exchange(stream, server, std::move(send_options));
}

std::string find_server_bin(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto candidate :
         {self.parent_path() / "herd-server", self.parent_path() / ".." / "herd-server"})
      if (access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal();
  }
  return "herd-server";  // from PATH
}

struct Child {
  const herd::ServerConfig* server;
  pid_t pid = -1;
  bool running = true;
};

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by {}", strsignal(WTERMSIG(status)));
  return "stopped";
}

// Collects children that have exited; returns how many are still running.
int reap(std::vector<Child>& children, bool report) {
  int running = 0;
  for (auto& c : children) {
    if (!c.running) continue;
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.running = false;
      if (report) fmt::print(stderr, "herdctl: {} {}\n", c.server->name, describe_exit(status));
    } else {
      ++running;
    }
  }
  return running;
}

void stop_all(std::vector<Child>& children) {
  for (auto& c : children)
    if (c.running) kill(c.pid, SIGTERM);
  auto deadline = Clock::now() + 5s;
  while (reap(children, false) > 0 && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
  for (auto& c : children) {
    if (!c.running) continue;
    fmt::print(stderr, "herdctl: {} did not stop within 5 s; killing it\n", c.server->name);
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    c.running = false;
  }
}

pid_t spawn(const std::string& bin, const std::string& config, const std::string& name) {
  pid_t pid = fork();
  if (pid < 0) fail(fmt::format("fork: {}", std::strerror(errno)));
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive herdctl
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int null = open("/dev/null", O_WRONLY);
  dup2(null, STDOUT_FILENO);
  execl(bin.c_str(), bin.c_str(), "--config", config.c_str(), name.c_str(), nullptr);
  execlp(bin.c_str(), bin.c_str(), "--config", config.c_str(), name.c_str(), nullptr);
  fmt::print(stderr, "herdctl: cannot run {}: {}\n", bin, std::strerror(errno));
  _exit(127);
}

int up(const herd::Config& config, const Options& options) {
  std::vector<const herd::ServerConfig*> chosen;
  for (const auto& name : options.args) chosen.push_back(&config.server(name));
  if (chosen.empty())
    for (const auto& s : config.servers) chosen.push_back(&s);
  for (const auto* s : chosen)
    if (listening(*s))
      fail(fmt::format("{}:{} ({}) is already in use; is the herd already up?", s->host, s->port,
                       s->name));

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // (a server itself takes SIGHUP to reopen its log)
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  auto bin = find_server_bin(options.server_bin);
  std::vector<Child> children;
  for (const auto* s : chosen) children.push_back({s, spawn(bin, options.config, s->name)});

  auto deadline = Clock::now() + 15s;
  for (const auto& c : children) {
    while (!listening(*c.server)) {
      timespec no_wait{};
      if (sigtimedwait(&stop_signals, nullptr, &no_wait) > 0 ||
          reap(children, true) < static_cast<int>(children.size())) {
        stop_all(children);
        fail("the herd did not start");
      }
      if (Clock::now() > deadline) {
        stop_all(children);
        fail(fmt::format("{} did not start listening within 15 s", c.server->name));
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  fmt::print("{:<12} {:<22} {}\n", "NAME", "ADDRESS", "TALKS WITH");
  for (const auto& c : children)
    fmt::print("{:<12} {:<22} {}\n", c.server->name,
               fmt::format("{}:{}", c.server->host, c.server->port), neighbors_of(*c.server));
  const auto& first = *children.front().server;
  fmt::print(
      "\nlogs: {}\ntry:  {} --config {} send {} \"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 "
      "$(date +%s.%N)\"\n",
      config.log_dir.string(), std::filesystem::read_symlink("/proc/self/exe").string(),
      options.config, first.name);
  fmt::print("Ctrl-C stops every server.\n");
  std::fflush(stdout);

  for (;;) {
    timespec tick{0, 200'000'000};
    if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) break;
    if (reap(children, true) == 0) {
      fmt::print(stderr, "herdctl: every server has exited\n");
      return 1;
    }
  }
  fmt::print("\nstopping...\n");
  stop_all(children);
  fmt::print("stopped\n");
  return 0;
}

// The process id in LOG_DIR/NAME.pid, if that process is herd-server running NAME.
std::optional<pid_t> server_pid(const herd::Config& config, const herd::ServerConfig& server,
                                std::string& why) {
  auto path = config.log_dir / (server.name + ".pid");
  long pid = 0;
  if (!(std::ifstream(path) >> pid) || pid <= 0) {
    why = fmt::format("not running on this machine (no {})", path.string());
    return std::nullopt;
  }
  std::ifstream cmdline(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(cmdline, arg, '\0');) args.push_back(arg);
  bool is_server = !args.empty() &&
                   std::filesystem::path(args.front()).filename() == "herd-server" &&
                   std::find(args.begin() + 1, args.end(), server.name) != args.end();
  if (!is_server) {
    why = fmt::format("not running (process {} of {} is not herd-server {})", pid, path.string(),
                      server.name);
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

std::uintmax_t size_of(const std::filesystem::path& path) {
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  return error ? 0 : size;
}

// The log's lines from `offset`, or all of it when it is shorter (a rotated log starts anew).
std::string log_since(const std::filesystem::path& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  if (size_of(path) >= offset) in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Signals one server and waits for the outcome in its log; prints one line. True if reloaded.
bool reload_one(const herd::Config& config, const herd::ServerConfig& server) {
  std::string why;
  auto pid = server_pid(config, server, why);
  if (!pid) {
    fmt::print("{}: {}\n", server.name, why);
    return false;
  }
  auto log = config.log_dir / (server.name + ".log");
  auto offset = size_of(log);
  if (kill(*pid, SIGHUP) != 0) {
    auto why = std::strerror(errno);
    auto hint = errno == EPERM ? fmt::format(" (run herdctl as the server's user, or systemctl "
                                             "reload herd@{})",
                                             server.name)
                               : std::string();
    fmt::print("{}: cannot signal process {}: {}{}\n", server.name, *pid, why, hint);
    return false;
  }
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    if (auto outcome = herd::find_reload_outcome(log_since(log, offset))) {
      fmt::print("{}: {}: {}\n", server.name, outcome->reloaded ? "reloaded" : "refused",
                 outcome->text);
      return outcome->reloaded;
    }
    std::this_thread::sleep_for(50ms);
  }
  fmt::print("{}: sent SIGHUP to process {}, but {} says nothing of a reload within 5 s\n",
             server.name, *pid, log.string());
  return false;
}

int reload(const herd::Config& config, const std::vector<std::string>& names) {
  std::vector<const herd::ServerConfig*> chosen;
  for (const auto& name : names) chosen.push_back(&config.server(name));
  if (chosen.empty())
    for (const auto& s : config.servers) chosen.push_back(&s);
  bool all = true;
  for (const auto* s : chosen) {
    all = reload_one(config, *s) && all;
    std::fflush(stdout);
  }
  return all ? 0 : 1;
}

int certs(const herd::Config& config, const std::vector<std::string>& args) {
  herd::certs::Options options;
  try {
    options = herd::certs::parse(args);
  } catch (const std::invalid_argument& e) {
    fail(fmt::format("certs: {}\n\n{}", e.what(), herd::certs::usage), 2);
  }
  try {
    herd::certs::make(config, options);
  } catch (const std::runtime_error& e) {
    fail(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (options.version) {
    fmt::print("herdctl {}\n", HERD_VERSION);
    return 0;
  }
  if (options.command.empty()) {
    fmt::print(options.help ? stdout : stderr, "{}", usage);
    return options.help ? 0 : 2;
  }
  if (options.help) {
    if (options.command == "up")
      fmt::print("{}", up_usage);
    else if (options.command == "send")
      fmt::print("{}", send_usage);
    else if (options.command == "status" || options.command == "watch")
      fmt::print("{}", status_usage);
    else if (options.command == "bench")
      fmt::print("{}", herd::bench::usage);
    else if (options.command == "certs")
      fmt::print("{}", herd::certs::usage);
    else if (options.command == "reload")
      fmt::print("{}", reload_usage);
    else
      fmt::print("{}", usage);
    return 0;
  }
  try {
    // A HOST:PORT target needs no config file.
    if (options.command == "bench") return bench(options);
    if (options.command == "send") return send(options);
    if (options.command != "up" && options.command != "status" && options.command != "watch" &&
        options.command != "certs" && options.command != "reload")
      fail(fmt::format("unknown command \"{}\"\n\n{}", options.command, usage), 2);
    auto config = load_config(options);
    if (options.command == "up") return up(config, options);
    if (options.command == "status") return status(config, options.args);
    if (options.command == "watch") return watch(config, options.args);
    if (options.command == "reload") return reload(config, options.args);
    return certs(config, options.args);
  } catch (const herd::ConfigError& e) {
    fail(e.what(), 2);
  }
}
