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
      acceptor_(asio::make_strand(io)),
      output_(static_cast<std::size_t>(clients.max_total_output_bytes)) {}

void Server::listen() {
  auto where = fmt::format("{}:{}", self_.host, self_.port);
  try {
    tcp::resolver resolver(io_);
    auto endpoint = resolver.resolve(self_.host, std::to_string(self_.port)).begin()->endpoint();
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const std::system_error& e) {
    throw std::runtime_error(fmt::format("cannot listen on {}: {}", where, e.code().message()));
  }
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
    std::make_shared<Session>(std::move(socket), next_session_++, herd_, places_, clients_, output_)
        ->start();
  }
}

}  // namespace herd
