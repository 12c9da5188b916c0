#include "server.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

#include "session.hpp"

namespace herd {
namespace {

using namespace std::chrono_literals;

constexpr auto first_accept_pause = 10ms;
constexpr auto last_accept_pause = 500ms;

// Clients may take the descriptors the process may open, less a reserve, so that a neighbor
// can still be dialed (and the log reopened, places asked) when clients take all they may.
std::size_t client_limit(std::size_t neighbors) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return std::numeric_limits<std::size_t>::max();
  auto descriptors = static_cast<std::size_t>(limit.rlim_cur);
  auto reserve = std::min(descriptors / 2, 64 + 2 * neighbors);
  return descriptors - reserve;
}

}  // namespace

Server::Server(asio::io_context& io, const ServerConfig& self, const ClientsConfig& clients,
               Herd& herd, places::Provider& places, asio::ssl::context* tls)
    : io_(io),
      self_(self),
      clients_(clients),
      herd_(herd),
      places_(places),
      tls_(tls),
      acceptor_(asio::make_strand(io)),
      tls_acceptor_(acceptor_.get_executor()),
      clients_open_(static_cast<std::size_t>(clients.max_total_output_bytes)),
      max_clients_(client_limit(self.neighbors.size())) {}

void listen_on(tcp::acceptor& acceptor, const std::string& address, std::uint16_t port) {
  try {
    tcp::resolver resolver(acceptor.get_executor());
    auto endpoint = resolver.resolve(address, std::to_string(port)).begin()->endpoint();
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::system_error& e) {
    throw std::runtime_error(
        fmt::format("cannot listen on {}: {}", address_text(address, port), e.code().message()));
  }
}

void Server::listen() {
  listen_on(acceptor_, self_.listen, self_.port);
  if (tls_) listen_on(tls_acceptor_, self_.listen, self_.tls_port);
}

void Server::start() {
  asio::co_spawn(acceptor_.get_executor(), accept(acceptor_, false), asio::detached);
  if (tls_) asio::co_spawn(acceptor_.get_executor(), accept(tls_acceptor_, true), asio::detached);
}

void Server::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
    tls_acceptor_.close(ignored);
  });
}

// Out of descriptors (or at the clients' share of them), the server goes on serving the
// connections it has and tries again later; the clients waiting meanwhile stay in the backlog.
// The client port and the TLS port share the limits; a TLS connection's handshake runs on its
// own strand, then it is a session like any other.
awaitable<void> Server::accept(tcp::acceptor& acceptor, bool tls) {
  while (acceptor.is_open()) {
    if (clients_open_.connections() >= max_clients_) {
      co_await pause_accepting(fmt::format(
          "{} client connections, all that the descriptor limit leaves room for", max_clients_));
      continue;
    }
    auto [error, socket] = co_await acceptor.async_accept(asio::make_strand(io_), as_result);
    if (error == asio::error::operation_aborted || !acceptor.is_open()) break;
    if (error) {
      co_await pause_accepting(error.message());
      continue;
    }
    if (pauses_ > 0) {
      auto paused = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - paused_since_);
      herd_.log().event("server", fmt::format("accept resumed after {} pauses / {} ms", pauses_,
                                              paused.count()));
      pauses_ = 0;
    }
    clients_open_.opened();
    auto executor = socket.get_executor();
    tcp::socket client(std::move(socket));
    if (tls)
      asio::co_spawn(executor, start_tls_session(std::move(client), next_session_++),
                     asio::detached);
    else
      std::make_shared<Session>(std::move(client), next_session_++, herd_, places_, clients_,
                                clients_open_)
          ->start();
  }
}

awaitable<void> Server::start_tls_session(tcp::socket socket, std::uint64_t id) {
  using namespace std::chrono_literals;
  using namespace asio::experimental::awaitable_operators;
  auto from = remote_address(socket);
  TlsStream stream(std::move(socket), *tls_);
  asio::steady_timer deadline(stream.get_executor(), 10s);
  auto shaken = co_await (stream.async_handshake(asio::ssl::stream_base::server, as_result) ||
                          deadline.async_wait(as_result));
  std::string why;
  if (shaken.index() == 1)
    why = "no TLS handshake within 10 s";
  else if (auto [error] = std::get<0>(shaken); error)
    why = "TLS handshake failed: " + error.message();
  if (!why.empty()) {
    clients_open_.closed();
    asio::post(tls_acceptor_.get_executor(),
               [this, from, why] { tls_failures_.refused(herd_.log(), from, why); });
    co_return;
  }
  std::make_shared<Session>(std::move(stream), id, herd_, places_, clients_, clients_open_)
      ->start();
}

awaitable<void> Server::pause_accepting(std::string_view why) {
  if (pauses_++ == 0) {
    paused_since_ = std::chrono::steady_clock::now();
    herd_.log().event("server", fmt::format("accept paused: {}", why));
  }
  auto pause = first_accept_pause * (1 << std::min<std::size_t>(pauses_ - 1, 6));
  asio::steady_timer timer(acceptor_.get_executor(),
                           std::min<std::chrono::milliseconds>(pause, last_accept_pause));
  co_await timer.async_wait(as_result);
}

}  // namespace herd
