#include "server.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

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
               Herd& herd, places::Provider& places)
    : io_(io),
      self_(self),
      clients_(clients),
      herd_(herd),
      places_(places),
      acceptor_(asio::make_strand(io)),
      clients_open_(static_cast<std::size_t>(clients.max_total_output_bytes)),
      max_clients_(client_limit(self.neighbors.size())) {}

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

// Out of descriptors (or at the clients' share of them), the server goes on serving the
// connections it has and tries again later; the clients waiting meanwhile stay in the backlog.
awaitable<void> Server::accept() {
  while (acceptor_.is_open()) {
    if (clients_open_.connections() >= max_clients_) {
      co_await pause_accepting(fmt::format(
          "{} client connections, all that the descriptor limit leaves room for", max_clients_));
      continue;
    }
    auto [error, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), as_result);
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) break;
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
    std::make_shared<Session>(std::move(socket), next_session_++, herd_, places_, clients_,
                              clients_open_)
        ->start();
  }
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
