// fake_places: Google's Nearby Search APIs, legacy and New, imitated on 127.0.0.1 for tests.
// One io_context on one thread: the service, recorder and session set need no locks.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include "front_end.hpp"
#include "http.hpp"
#include "recorder.hpp"
#include "service.hpp"

namespace fake_places {
namespace {

using asio::ip::tcp;
constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::size_t initial_buffer = 16 * 1024;
constexpr std::size_t max_buffer = http::max_head_bytes + http::max_body_bytes + 64 * 1024;
constexpr std::size_t recorded_requests_kept = 100'000;
constexpr std::string_view continue_head = "HTTP/1.1 100 Continue\r\n\r\n";

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A client connection: reads requests, answers them in order, batching replies into one write.
class Session {
 public:
  Session(tcp::socket socket, Service& service, std::uint64_t id)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), service_(service), id_(id) {
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    in_.resize(initial_buffer);
  }

  asio::awaitable<void> run() {
    while (co_await answer_buffered()) {
      if (in_used_ == in_.size()) in_.resize(std::min(in_.size() * 2, max_buffer));
      auto [ec, n] = co_await socket_.async_read_some(
          asio::buffer(in_.data() + in_used_, in_.size() - in_used_), nothrow);
      if (ec) break;
      in_used_ += n;
    }
    close();
  }

  void stop() {
    stopping_ = true;
    close();
    timer_.cancel();
  }

 private:
  enum class Next { read, close, hang };

  struct Pending {
    std::size_t head_at;
    std::size_t head_size;
    std::shared_ptr<const std::string> body;
  };

  // Answers every complete request in the buffer; false when the connection is done.
  asio::awaitable<bool> answer_buffered() {
    std::size_t offset = 0;
    std::int64_t received_ms = now_ms();
    Next next = Next::read;
    while (next == Next::read) {
      std::string_view input(in_.data() + offset, in_used_ - offset);
      auto parsed = http::parse_request(input, request_);
      if (parsed.state == http::Parsed::incomplete) {
        if (parsed.expects_continue && !continue_sent_) queue_head(continue_head);
        continue_sent_ = parsed.expects_continue;
        if (in_used_ == max_buffer) {
          queue(front_end::protocol_error(413), "close");
          next = Next::close;
        }
        break;
      }
      if (parsed.state == http::Parsed::error) {
        queue(front_end::protocol_error(parsed.error_status), "close");
        next = Next::close;
        break;
      }
      continue_sent_ = false;
      offset += parsed.consumed;
      Reply reply = service_.handle(request_, id_, received_ms);
      if (reply.action == Reply::Action::hang) next = Next::hang;
      if (reply.action == Reply::Action::close) next = Next::close;
      if (reply.action != Reply::Action::answer) break;
      if (reply.delay.count() > 0) {
        service_.end_batch();
        if (!co_await write_pending() || !co_await sleep(reply.delay)) co_return false;
      }
      auto connection = http::connection_header(request_);
      queue(reply, connection);
      if (connection == "close") next = Next::close;
    }
    service_.end_batch();
    std::copy(in_.begin() + static_cast<std::ptrdiff_t>(offset),
              in_.begin() + static_cast<std::ptrdiff_t>(in_used_), in_.begin());
    in_used_ -= offset;
    if (!co_await write_pending()) co_return false;
    if (next == Next::hang) co_await hang();
    co_return next == Next::read;
  }

  void queue_head(std::string_view head) {
    pending_.push_back({heads_.size(), head.size(), nullptr});
    heads_ += head;
  }

  void queue(const Reply& reply, std::string_view connection) {
    std::size_t at = heads_.size();
    http::append_head(heads_, reply.status, reply.content_type, reply.server, reply.body->size(),
                      connection);
    pending_.push_back({at, heads_.size() - at, reply.body});
  }

  // Everything queued goes out in one gathered write.
  asio::awaitable<bool> write_pending() {
    if (pending_.empty()) co_return true;
    buffers_.clear();
    for (const Pending& p : pending_) {
      buffers_.push_back(asio::buffer(heads_.data() + p.head_at, p.head_size));
      if (p.body && !p.body->empty()) buffers_.push_back(asio::buffer(*p.body));
    }
    auto [ec, n] = co_await asio::async_write(socket_, buffers_, nothrow);
    pending_.clear();
    heads_.clear();
    co_return !ec;
  }

  asio::awaitable<bool> sleep(std::chrono::milliseconds delay) {
    timer_.expires_after(delay);
    auto [ec] = co_await timer_.async_wait(nothrow);
    co_return !ec && !stopping_;
  }

  // Never answers again; reads and drops whatever comes until the client gives up.
  asio::awaitable<void> hang() {
    for (;;) {
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(in_), nothrow);
      if (ec) co_return;
    }
  }

  void close() {
    asio::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  Service& service_;
  std::uint64_t id_;
  std::string in_;  // received bytes are in_[0, in_used_)
  std::size_t in_used_ = 0;
  http::Request request_;  // views into in_
  std::string heads_;      // the status lines and headers of pending_
  std::vector<Pending> pending_;
  std::vector<asio::const_buffer> buffers_;
  bool continue_sent_ = false;
  bool stopping_ = false;
};

class Server {
 public:
  Server(asio::io_context& io, unsigned short port, Service& service)
      : acceptor_(io), service_(service) {
    tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  asio::awaitable<void> accept() {
    asio::steady_timer backoff(acceptor_.get_executor());
    while (acceptor_.is_open()) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec == asio::error::no_descriptors) {  // out of file descriptors: let some close
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(nothrow);
      }
      if (ec) continue;
      auto session = std::make_shared<Session>(std::move(socket), service_, ++last_connection_);
      sessions_.insert(session);
      asio::co_spawn(acceptor_.get_executor(), serve(session), asio::detached);
    }
  }

  // Stops accepting and closes every connection, so that io_context::run returns.
  void stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& session : sessions_) session->stop();
  }

 private:
  asio::awaitable<void> serve(std::shared_ptr<Session> session) {
    co_await session->run();
    sessions_.erase(session);
  }

  tcp::acceptor acceptor_;
  Service& service_;
  std::unordered_set<std::shared_ptr<Session>> sessions_;
  std::uint64_t last_connection_ = 0;
};

constexpr std::string_view usage =
    "usage: fake_places --port P [--key KEY] [--mode MODE] [--delay-ms N] [--record FILE]\n"
    "  --port P       port on 127.0.0.1; 0 picks a free one (default 0)\n"
    "  --key KEY      the one valid API key (default test-key)\n"
    "  --mode MODE    behaviour of every request without a /_mode/<MODE>/ prefix (default ok)\n"
    "                 modes: ok zero denied quota invalid 5xx garbage hang slow close\n"
    "  --delay-ms N   how long slow mode waits before answering (default 1000)\n"
    "  --record FILE  also append each request to FILE as a JSON line\n";

struct CommandLine {
  unsigned short port = 0;
  Options options;
  std::string record_file;
};

template <typename T>
bool parse_integer(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// The error, or nothing when `line` is complete.
std::optional<std::string> parse_command_line(int argc, char** argv, CommandLine& line) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg != "--help" && arg != "-h") {
      if (i + 1 == argc) return fmt::format("{} needs a value", arg);
      value = argv[++i];
    }
    if (arg == "--help" || arg == "-h") return std::string();
    if (arg == "--port") {
      if (!parse_integer(value, line.port)) return fmt::format("bad port: {}", value);
    } else if (arg == "--key") {
      line.options.key = value;
    } else if (arg == "--mode") {
      auto mode = parse_mode(value);
      if (!mode) return fmt::format("unknown mode: {}", value);
      line.options.mode = *mode;
    } else if (arg == "--delay-ms") {
      unsigned delay = 0;
      if (!parse_integer(value, delay)) return fmt::format("bad delay: {}", value);
      line.options.delay = std::chrono::milliseconds(delay);
    } else if (arg == "--record") {
      line.record_file = value;
    } else {
      return fmt::format("unknown option: {}", arg);
    }
  }
  return std::nullopt;
}

int run(const CommandLine& line) {
  Recorder recorder(recorded_requests_kept);
  if (!line.record_file.empty() && !recorder.open_file(line.record_file)) {
    fmt::print(stderr, "fake_places: cannot open {}\n", line.record_file);
    return 1;
  }
  Service service(line.options, recorder);
  asio::io_context io(1);
  Server server(io, line.port, service);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int) {
    if (!ec) server.stop();
  });
  asio::co_spawn(io, server.accept(), asio::detached);
  fmt::print("listening on {}\n", server.port());
  std::fflush(stdout);
  io.run();
  recorder.flush();
  return 0;
}

}  // namespace
}  // namespace fake_places

int main(int argc, char** argv) {
  fake_places::CommandLine line;
  if (auto error = fake_places::parse_command_line(argc, argv, line)) {
    if (!error->empty()) fmt::print(stderr, "fake_places: {}\n", *error);
    fmt::print(error->empty() ? stdout : stderr, "{}", fake_places::usage);
    return error->empty() ? 0 : 2;
  }
  try {
    return fake_places::run(line);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fake_places: {}\n", e.what());
    return 1;
  }
}
