// herd-server: runs one server of the herd described by herd.toml.
#include <malloc.h>
#include <sys/resource.h>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "config.hpp"
#include "herd.hpp"
#include "log.hpp"
#include "metrics_port.hpp"
#include "net.hpp"
#include "notify.hpp"
#include "peer_port.hpp"
#include "places/provider.hpp"
#include "reload.hpp"
#include "server.hpp"
#include "tls.hpp"

#ifdef HERD_JEMALLOC
// Memory freed (by clients that held megabytes of replies, say) goes back to the system within
// about a second, also while the server is idle: by default jemalloc gives it back only as it
// allocates more, and ten seconds late.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

namespace {

using namespace std::chrono_literals;

constexpr const char* usage = R"(usage: herd-server [--config PATH] [--threads N] SERVER_NAME
       herd-server --version

Runs one server of the herd described in the config file (default ./herd.toml):
listens on its port, answers IAMAT and WHATSAT, and floods location updates
to the servers it talks with.

options:
  --config PATH   the herd's TOML file (default: herd.toml)
  --threads N     threads running the event loop (default: 1)
  --version       print herd-server's version
  -h, --help      show this help

It listens first, then loads the offline places (GeoNames) on a thread of its
own: a WHATSAT that arrives meanwhile waits for them, at most [places]
timeout_ms. Places data found corrupt then stops the server with exit code 1.

SIGINT or SIGTERM stops accepting, answers what was already received, flushes
the log and exits 0. SIGHUP (or `herdctl reload NAME`) does two things:
  - reopens the log file, for log rotation: move NAME.log away, send SIGHUP,
    and the server starts a new NAME.log;
  - re-reads the config file: neighbors added are linked with and caught up,
    neighbors removed lose their link and are refused from then on, a
    neighbor's new host or peer_port is redialed, and log.level applies. A
    file that does not parse, or that changes anything else this server uses
    (its own ports and addresses, [tls], [places], [clients], log.dir), is
    refused whole with one log line saying why; the server keeps its config.
While it runs, the server keeps its process id in LOG_DIR/NAME.pid.
)";

struct Options {
  std::string config = "herd.toml";
  std::string server;
  int threads = 1;
};

[[noreturn]] void usage_error(const std::string& message) {
  fmt::print(stderr, "herd-server: {}\n\n{}", message, usage);
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view name) -> std::string {
      if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", name));
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      fmt::print("{}", usage);
      std::exit(0);
    } else if (arg == "--version") {
      fmt::print("herd-server {}\n", HERD_VERSION);
      std::exit(0);
    } else if (arg == "--config") {
      options.config = value(arg);
    } else if (arg == "--threads") {
      auto text = value(arg);
      char* end = nullptr;
      long n = std::strtol(text.c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > 64) usage_error("--threads takes a number from 1 to 64");
      options.threads = static_cast<int>(n);
    } else if (arg.starts_with("-")) {
      usage_error(fmt::format("unknown option {}", arg));
    } else if (options.server.empty()) {
      options.server = arg;
    } else {
      usage_error("only one SERVER_NAME may be given");
    }
  }
  if (options.server.empty()) usage_error("SERVER_NAME is missing");
  return options;
}

// Flushes the log a few times a second, so that it is readable while the server runs.
herd::awaitable<void> flush_log_regularly(herd::Log& log, asio::steady_timer& timer) {
  for (;;) {
    timer.expires_after(200ms);
    auto [error] = co_await timer.async_wait(herd::as_result);
    log.flush();
    if (error) co_return;
  }
}

#ifndef HERD_JEMALLOC
// glibc's malloc keeps freed memory in its arenas; give it back once a second. (jemalloc does
// so by itself: see malloc_conf.)
herd::awaitable<void> return_freed_memory(asio::steady_timer& timer) {
  for (;;) {
    timer.expires_after(1s);
    auto [error] = co_await timer.async_wait(herd::as_result);
    if (error) co_return;
    malloc_trim(0);
  }
}
#endif

// Re-reads the config file and applies what may change while the server runs, all or nothing.
// `running` is the config in force, which this replaces when the reload goes ahead.
herd::awaitable<void> reload_config(herd::Log& log, herd::Herd& herd, herd::Config& running,
                                    const std::string& self) {
  auto refuse = [&](std::string_view why) {
    log.notice("server", fmt::format("config reload refused: {}; keeping the running config", why));
    herd.reload_refused();
  };
  herd::Config file;
  try {
    file = herd::load_config(running.file);
  } catch (const herd::ConfigError& e) {
    co_return refuse(e.what());
  }
  auto plan = herd::plan_reload(running, file, self);
  if (plan.refused()) co_return refuse("needs a restart: " + plan.needs_restart);
  auto summary = plan.summary();
  if (plan.log_level) log.set_level(*plan.log_level);
  co_await herd.relink(std::move(plan));
  running = std::move(file);
  log.notice("server", "config reloaded: " + summary);
}

// SIGHUP: log rotation (once the file has been moved away, a new one starts at the path), then
// a config reload.
herd::awaitable<void> on_hangup(herd::Log& log, asio::signal_set& hangup, herd::Herd& herd,
                                herd::Config running, const herd::ServerConfig& self) {
  for (;;) {
    auto [error, number] = co_await hangup.async_wait(herd::as_result);
    if (error) co_return;
    log.event("server", "SIGHUP received; reopening the log file and reloading the config");
    if (auto failed = log.reopen())
      log.warning("server", fmt::format("{}; still writing to the old file", *failed));
    else
      log.event("server", fmt::format("log file reopened ({} listening on {})", self.name,
                                      herd::address_text(self.listen, self.port)));
    co_await reload_config(log, herd, running, self.name);
  }
}

// LOG_DIR/NAME.pid holds the server's process id while it runs: `herdctl reload` finds it there.
class PidFile {
 public:
  PidFile(std::filesystem::path path, herd::Log& log) : path_(std::move(path)) {
    auto temporary = path_;
    temporary += ".new";
    std::ofstream(temporary) << ::getpid() << '\n';
    std::error_code error;
    std::filesystem::rename(temporary, path_, error);
    if (error) {
      log.warning("server", fmt::format("cannot write {}: {}; herdctl reload will not find the "
                                        "server (send it SIGHUP)",
                                        path_.string(), error.message()));
      path_.clear();
    }
  }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  ~PidFile() {
    if (path_.empty()) return;
    long pid = 0;
    std::ifstream(path_) >> pid;
    std::error_code ignored;
    if (pid == ::getpid()) std::filesystem::remove(path_, ignored);  // not a newer server's
  }

 private:
  std::filesystem::path path_;
};

// After a stop, waits until every session has answered and closed (at most 3 s). Runs on
// the herd's strand, which keeps the count of sessions.
herd::awaitable<void> finish(asio::io_context& io, herd::Herd& herd) {
  asio::steady_timer timer(herd.strand());
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (herd.clients() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(10ms);
    co_await timer.async_wait(herd::as_result);
  }
  io.stop();
}

// Every connection is a descriptor, and the soft limit is often 1,024: take the hard limit, as
// far as the kernel allows (epoll has no FD_SETSIZE ceiling). Returns the limit now in force.
rlim_t raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return limit.rlim_cur;
}

bool is_loopback(const std::string& address) {
  asio::error_code error;
  auto parsed = asio::ip::make_address(address, error);
  return error ? address == "localhost" : parsed.is_loopback();
}

int run(const Options& options) {
  auto config = herd::load_config(options.config);
  const auto& self = config.server(options.server);
  auto descriptors = raise_descriptor_limit();
  herd::Log log(config.log_dir / (self.name + ".log"), config.log_level);
  asio::io_context io(options.threads);
  // Taken before the ports listen: a signal from someone who saw them listen is handled.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set hangup(io, SIGHUP);
  std::shared_ptr<asio::ssl::context> peer_tls, client_tls;
  if (config.tls.enabled()) peer_tls = herd::peer_tls_context(config.tls, self.name);
  if (self.tls_port) client_tls = herd::client_port_tls_context(config.tls, self.name);
  auto places = herd::places::make_provider(config.places, io, log);
  herd::Herd herd(io, config, self, log, peer_tls.get());
  herd::Server server(io, self, config.clients, herd, *places, client_tls.get());
  herd::PeerPort peer_port(herd, self, peer_tls.get());
  std::optional<herd::MetricsPort> metrics_port;
  if (self.metrics_port) metrics_port.emplace(io, herd, self);
  server.listen();
  peer_port.listen();
  if (metrics_port) metrics_port->listen();
  if (!peer_tls && !is_loopback(self.listen))
    log.event("server", fmt::format("warning: links to neighbors are plaintext while listening on "
                                    "{}: anybody who can reach the peer port {} can speak for "
                                    "the herd; add [tls] (see README, \"Several machines\")",
                                    self.listen, self.peer_port));

  std::string neighbors;
  for (const auto& n : self.neighbors) neighbors += (neighbors.empty() ? "" : ", ") + n;
  log.event("server",
            fmt::format("{} listening on {} (clients){} and {} (neighbors, {}); neighbors: {}; "
                        "places: {}; up to {} open descriptors",
                        self.name, herd::address_text(self.listen, self.port),
                        self.tls_port ? fmt::format(", {} (clients, TLS)",
                                                    herd::address_text(self.listen, self.tls_port))
                                      : "",
                        herd::address_text(self.listen, self.peer_port),
                        peer_tls ? "TLS" : "plaintext", neighbors.empty() ? "none" : neighbors,
                        config.places.provider, descriptors));
  if (metrics_port)
    log.event("server", fmt::format("metrics on {} (/metrics, /healthz)",
                                    herd::address_text(self.listen, self.metrics_port)));
  fmt::print("{} listening on {} (neighbors: {})\n", self.name,
             herd::address_text(self.listen, self.port), neighbors.empty() ? "none" : neighbors);
  std::fflush(stdout);
  if (!herd::notify_ready())
    log.warning("server", "could not tell systemd that the server is ready (NOTIFY_SOCKET)");

  herd.start();
  peer_port.start();
  server.start();
  if (metrics_port) metrics_port->start();
  asio::steady_timer flush_timer(io);
  asio::co_spawn(io, flush_log_regularly(log, flush_timer), asio::detached);
  asio::steady_timer trim_timer(io);
#ifndef HERD_JEMALLOC
  asio::co_spawn(io, return_freed_memory(trim_timer), asio::detached);
#endif

  asio::co_spawn(io, on_hangup(log, hangup, herd, config, self), asio::detached);
  PidFile pid_file(config.log_dir / (self.name + ".pid"), log);  // once SIGHUP is handled

  std::atomic<bool> stopping{false};
  std::atomic<int> exit_code{0};
  auto stop = [&] {
    if (stopping.exchange(true)) return;
    hangup.cancel();
    server.stop();
    peer_port.stop();
    if (metrics_port) metrics_port->stop();
    herd.stop();
    places->shutdown();
    flush_timer.cancel();
    trim_timer.cancel();
    asio::co_spawn(herd.strand(), finish(io, herd), asio::detached);
  };
  signals.async_wait([&](const asio::error_code& error, int signal) {
    if (error) return;
    log.event("server", fmt::format("{} received; stopping", strsignal(signal)));
    stop();
  });
  // Data that cannot be read shows only once the server listens: it stops as it would at start.
  places->start([&](std::string why) {
    log.warning("places", fmt::format("{}; stopping", why));
    fmt::print(stderr, "herd-server: {}\n", why);
    exit_code = 1;
    stop();
  });

  std::vector<std::jthread> extra;
  for (int i = 1; i < options.threads; ++i) extra.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
  log.event("server", "stopped");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGXFSZ, SIG_IGN);  // a log past the file size limit fails its writes, not the server
  auto options = parse_options(argc, argv);
  try {
    return run(options);
  } catch (const herd::ConfigError& e) {
    fmt::print(stderr, "herd-server: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "herd-server: {}\n", e.what());
    return 1;
  }
}
