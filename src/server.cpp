#include "server.hpp"

#include <stdexcept>

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

#include "session.hpp"

namespace herd {

Server::Server(asio::io_context& io, const ServerConfig& self, const ClientsConfig& clients,
               Herd& herd, places::Provider& places, asio::ssl::context* tls)
    : io_(io),
      self_(self),
      clients_(clients),
      herd_(herd),
      places_(places),
      tls_(tls),
      acceptor_(asio::make_strand(io)),
      tls_acceptor_(acceptor_.get_executor()) {}

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
  asio::co_spawn(acceptor_.get_executor(), accept(), asio::detached);
  if (tls_) asio::co_spawn(acceptor_.get_executor(), accept_tls(), asio::detached);
}

void Server::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
    tls_acceptor_.close(ignored);
  });
}

awaitable<void> Server::accept() {
  using namespace std::chrono_literals;
  while (acceptor_.is_open()) {
    auto [error, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), as_result);
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (error) {  // out of file descriptors, say: note it and give the system a moment
      herd_.log().warning("server", "accept failed: " + error.message());
      asio::steady_timer pause(io_, 50ms);
      co_await pause.async_wait(as_result);
      continue;
    }
    std::make_shared<Session>(tcp::socket(std::move(socket)), next_session_++, herd_, places_,
                              clients_)
        ->start();
  }
}

// The client TLS port: each connection's handshake runs on its own strand, then it is a
// session like any other.
awaitable<void> Server::accept_tls() {
  using namespace std::chrono_literals;
  while (tls_acceptor_.is_open()) {
    auto [error, socket] = co_await tls_acceptor_.async_accept(asio::make_strand(io_), as_result);
    if (error == asio::error::operation_aborted || !tls_acceptor_.is_open()) break;
    if (error) {
      herd_.log().event("tls port", "accept failed: " + error.message());
      asio::steady_timer pause(io_, 50ms);
      co_await pause.async_wait(as_result);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, start_tls_session(tcp::socket(std::move(socket)), next_session_++),
                   asio::detached);
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
    asio::post(tls_acceptor_.get_executor(),
               [this, from, why] { tls_failures_.refused(herd_.log(), from, why); });
    co_return;
  }
  std::make_shared<Session>(std::move(stream), id, herd_, places_, clients_)->start();
}

}  // namespace herd
