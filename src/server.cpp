#include "server.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "session.hpp"

namespace herd {

Server::Server(asio::io_context& io, const ServerConfig& self, const ClientsConfig& clients,
               Herd& herd, places::Provider& places)
    : io_(io),
      self_(self),
      clients_(clients),
      herd_(herd),
      places_(places),
      acceptor_(asio::make_strand(io)) {}

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
}

void Server::start() {
  asio::co_spawn(acceptor_.get_executor(), accept(), asio::detached);
}

void Server::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
  });
}

awaitable<void> Server::accept() {
  using namespace std::chrono_literals;
  while (acceptor_.is_open()) {
    auto [error, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), as_result);
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (error) {  // out of file descriptors, say: note it and give the system a moment
      herd_.log().event("server", "accept failed: " + error.message());
      asio::steady_timer pause(io_, 50ms);
      co_await pause.async_wait(as_result);
      continue;
    }
    std::make_shared<Session>(std::move(socket), next_session_++, herd_, places_, clients_)
        ->start();
  }
}

}  // namespace herd
