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

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "certs.hpp"
#include "config.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* usage = R"(usage: herdctl [--config PATH] COMMAND [ARGS]

Starts a herd's servers and talks to them as a client would.

commands:
  up [NAME...]          start the named servers (default: all) in the foreground,
                        wait until each listens, print where; Ctrl-C stops them all
  send NAME [LINE...]   send the lines (or standard input's lines) to a server,
                        print its full replies; exits 1 when the server cannot be
                        reached or answers "?"
  status                show which servers are listening
  certs [--dir DIR]     make a CA and a certificate and key per server for [tls];
                        see certs --help
  bench [OPTIONS] TARGET
                        load a server (a name, or HOST:PORT) with requests and
                        print requests/s and latency; see bench --help

options:
  --config PATH         the herd's TOML file (default: herd.toml)
  --server-bin PATH     the herd-server program for `up` (default: the one next to herdctl)
  --version             print herdctl's version
  -h, --help            show this help (also after a command)
)";

constexpr const char* up_usage = R"(usage: herdctl [--config PATH] up [NAME...]

Starts the named servers (all of the file's servers by default) as child
processes, waits until each one listens, and prints a table of names,
addresses and neighbors. Runs in the foreground: Ctrl-C (or SIGTERM, or
SIGHUP when its terminal closes) stops every server and waits for them to
exit. A server that dies is reported; the others keep running.
)";

constexpr const char* send_usage = R"(usage: herdctl [--config PATH] send NAME [LINE...]

Connects to the server NAME as a client, sends each LINE (or, with none, every
line of standard input), closes its sending side and prints everything the
server answers until it closes the connection.

exit status: 0 when every line was answered, 1 when the server cannot be
reached, does not answer within 10 s, or answers "?" to a line.
)";

constexpr const char* status_usage = R"(usage: herdctl [--config PATH] status

Prints each server of the file with its address and whether it is listening.
Exit status 0 when all listen, 1 otherwise.
)";

[[noreturn]] void fail(const std::string& message, int status = 1) {
  fmt::print(stderr, "herdctl: {}\n", message);
  std::exit(status);
}

struct Options {
  std::string config = "herd.toml";
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
               o.command != "certs") {
      fail(fmt::format("unknown option {}\n\n{}", arg, usage), 2);
    } else if (o.command.empty()) {
      o.command = arg;
    } else {
      o.args.emplace_back(arg);
    }
  }
  return o;
}

// A connected TCP socket to host:port, or an error message.
std::optional<int> connect_to(const herd::ServerConfig& server, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto port = std::to_string(server.port);
  if (int rc = getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = gai_strerror(rc);
    return std::nullopt;
  }
  std::optional<int> result;
  for (auto* a = found; a && !result; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
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
  auto fd = connect_to(server, error);
  if (fd) close(*fd);
  return fd.has_value();
}

std::string neighbors_of(const herd::ServerConfig& server) {
  std::string text;
  for (const auto& n : server.neighbors) text += (text.empty() ? "" : ", ") + n;
  return text.empty() ? "-" : text;
}

int send(const herd::Config& config, const std::vector<std::string>& args) {
  if (args.empty()) fail(fmt::format("send: which server?\n\n{}", send_usage), 2);
  const auto& server = config.server(args[0]);
  std::string request;
  if (args.size() > 1) {
    for (std::size_t i = 1; i < args.size(); ++i) request += args[i] + "\n";
  } else {
    for (std::string line; std::getline(std::cin, line);) request += line + "\n";
  }
  std::string error;
  auto fd = connect_to(server, error);
  if (!fd)
    fail(fmt::format("cannot reach {} at {}:{}: {}", server.name, server.host, server.port, error));
  for (std::size_t sent = 0; sent < request.size();) {
    auto n = write(*fd, request.data() + sent, request.size() - sent);
    if (n <= 0) fail(fmt::format("writing to {}: {}", server.name, std::strerror(errno)));
    sent += static_cast<std::size_t>(n);
  }
  shutdown(*fd, SHUT_WR);

  std::string reply;
  char buffer[64 * 1024];
  for (;;) {
    pollfd p{*fd, POLLIN, 0};
    if (poll(&p, 1, 10'000) == 0)
      fail(fmt::format("{} did not finish answering within 10 s", server.name));
    auto n = read(*fd, buffer, sizeof buffer);
    if (n < 0) fail(fmt::format("reading from {}: {}", server.name, std::strerror(errno)));
    if (n == 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  close(*fd);
  fmt::print("{}", reply);
  bool refused = reply.starts_with("? ") || reply.find("\n? ") != std::string::npos;
  return refused ? 1 : 0;
}

int status(const herd::Config& config) {
  bool all = true;
  fmt::print("{:<12} {:<22} {:<10} {}\n", "NAME", "ADDRESS", "STATE", "TALKS WITH");
  for (const auto& s : config.servers) {
    bool up = listening(s);
    all = all && up;
    fmt::print("{:<12} {:<22} {:<10} {}\n", s.name, fmt::format("{}:{}", s.host, s.port),
               up ? "listening" : "down", neighbors_of(s));
  }
  return all ? 0 : 1;
}

// HOST:PORT as given (an IPv6 host in brackets), or the address of the config's server of that
// name; server names have no ':'.
herd::bench::Endpoint endpoint_of(const std::string& target, const std::string& config_path) {
  if (auto colon = target.rfind(':'); colon != std::string::npos) {
    auto host = target.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    return {host.empty() ? "127.0.0.1" : host, target.substr(colon + 1), ""};
  }
  auto config = herd::load_config(config_path);
  const auto& server = config.server(target);
  return {server.host, std::to_string(server.port), server.name};
}

int bench(const Options& options) {
  herd::bench::Options bench_options;
  try {
    bench_options = herd::bench::parse_options(options.args);
  } catch (const herd::bench::UsageError& e) {
    fail(fmt::format("bench: {}\n\n{}", e.what(), herd::bench::usage), 2);
  }
  return herd::bench::run(bench_options, endpoint_of(bench_options.target, options.config));
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
    else if (options.command == "status")
      fmt::print("{}", status_usage);
    else if (options.command == "bench")
      fmt::print("{}", herd::bench::usage);
    else if (options.command == "certs")
      fmt::print("{}", herd::certs::usage);
    else
      fmt::print("{}", usage);
    return 0;
  }
  try {
    if (options.command == "bench") return bench(options);  // HOST:PORT needs no config
    auto config = herd::load_config(options.config);
    if (options.command == "up") return up(config, options);
    if (options.command == "send") return send(config, options.args);
    if (options.command == "status") return status(config);
    if (options.command == "certs") return certs(config, options.args);
    fail(fmt::format("unknown command \"{}\"\n\n{}", options.command, usage), 2);
  } catch (const herd::ConfigError& e) {
    fail(e.what(), 2);
  }
}
