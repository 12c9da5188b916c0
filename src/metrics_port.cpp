#include "metrics_port.hpp"

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

#include "server.hpp"  // listen_on

namespace herd {
namespace {
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto request_time_limit = 5s;  // from accepting to the response written
constexpr int max_open = 16;             // connections served at once; more are closed at once
}  // namespace

std::string health_of(const HerdSnapshot& herd) {
  if (herd.loading) return "loading the store from disk";
  std::string down;
  int count = 0;
  for (const auto& link : herd.links) {
    if (link.up) continue;
    down += (down.empty() ? "" : ", ") + link.neighbor;
    ++count;
  }
  if (count == 0) return "ok";
  return fmt::format("{} to {} down", count == 1 ? "link" : "links", down);
}

MetricsPort::MetricsPort(asio::io_context& io, Herd& herd, const ServerConfig& self)
    : herd_(herd), self_(self), acceptor_(asio::make_strand(io)) {}

void MetricsPort::listen() {
  listen_on(acceptor_, self_.listen, self_.metrics_port);
}

void MetricsPort::start() {
  asio::co_spawn(acceptor_.get_executor(), accept(), asio::detached);
}

void MetricsPort::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
  });
}

awaitable<void> MetricsPort::accept() {
  while (acceptor_.is_open()) {
    // Every connection on the acceptor's strand: a scrape is rare, and open_ needs no lock.
    auto [error, socket] = co_await acceptor_.async_accept(as_result);
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (error) {
      herd_.log().warning("metrics port", "accept failed: " + error.message());
      asio::steady_timer pause(acceptor_.get_executor(), 50ms);
      co_await pause.async_wait(as_result);
      continue;
    }
    if (open_ >= max_open) continue;  // closed as it goes out of scope
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> MetricsPort::serve(tcp::socket socket) {
  ++open_;
  asio::steady_timer deadline(socket.get_executor(), request_time_limit);
  auto read = co_await (read_request(socket) || deadline.async_wait(as_result));
  std::string response;
  if (read.index() == 1) {
    response = http::format_response(408, "text/plain", "request not received within 5 s\n");
    deadline.expires_after(1s);  // to say so, if the client reads
  } else {
    response = co_await respond(std::get<0>(read));
  }
  co_await (asio::async_write(socket, asio::buffer(response), as_result) ||
            deadline.async_wait(as_result));
  asio::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  --open_;
}

awaitable<http::Request> MetricsPort::read_request(tcp::socket& socket) {
  std::string received;
  char chunk[2048];
  for (;;) {
    auto [error, n] = co_await socket.async_read_some(asio::buffer(chunk), as_result);
    received.append(chunk, n);
    auto request = http::parse_request(received);
    if (request.state != http::Request::State::incomplete) co_return request;
    if (error) co_return http::Request{http::Request::State::bad, {}, {}};
  }
}

awaitable<std::string> MetricsPort::respond(const http::Request& request) {
  using State = http::Request::State;
  if (request.state == State::too_large)
    co_return http::format_response(431, "text/plain", "request head over 8 KiB\n");
  if (request.state != State::complete)
    co_return http::format_response(400, "text/plain", "bad request\n");
  bool head = request.method == "HEAD";
  switch (http::route(request)) {
    case http::Route::metrics: {
      auto text = render_metrics(co_await snapshot());
      co_return http::format_response(200, http::metrics_content_type, text, head);
    }
    case http::Route::healthz: {
      auto health = health_of(co_await herd_.snapshot());
      co_return http::format_response(health == "ok" ? 200 : 503, "text/plain", health + "\n",
                                      head);
    }
    case http::Route::method_not_allowed:
      co_return http::format_response(405, "text/plain", "only GET and HEAD\n");
    case http::Route::not_found:
      break;
  }
  co_return http::format_response(404, "text/plain", "only /metrics and /healthz\n", head);
}

awaitable<MetricsSnapshot> MetricsPort::snapshot() {
  MetricsSnapshot s;
  s.herd = co_await herd_.snapshot();
  const auto& clients = herd_.client_counters();
  s.iamat = clients.iamat.load(std::memory_order_relaxed);
  s.whatsat = clients.whatsat.load(std::memory_order_relaxed);
  s.invalid = clients.invalid.load(std::memory_order_relaxed);
  s.replies = clients.replies.load(std::memory_order_relaxed);
  herd_.places_counters().copy_to(s.places_by_status, s.places_latency);
  s.log_bytes = herd_.log().bytes_written();
  s.start_time = std::chrono::duration<double>(started_.time_since_epoch()).count();
  s.uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_steady_).count();
  co_return s;
}

}  // namespace herd
