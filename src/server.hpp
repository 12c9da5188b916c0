// The listening socket: accepts connections and gives each a session on a strand of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "config.hpp"
#include "herd.hpp"
#include "net.hpp"
#include "client_budget.hpp"
#include "places/provider.hpp"
#include "refusals.hpp"
#include "tls.hpp"

namespace herd {

// Binds `acceptor` to address:port and listens; throws std::runtime_error naming the address.
void listen_on(tcp::acceptor& acceptor, const std::string& address, std::uint16_t port);

class Server {
 public:
  // `tls`: the context of the client TLS port (servers.NAME.tls_port), or null.
  Server(asio::io_context& io, const ServerConfig& self, const ClientsConfig& clients, Herd& herd,
         places::Provider& places, asio::ssl::context* tls);

  // Binds and listens (the client port, and the TLS port if any); throws std::runtime_error
  // naming the address when it cannot.
  void listen();
  void start();
  // Stops accepting. The herd stops the sessions (Herd::stop).
  void stop();

 private:
  awaitable<void> accept(tcp::acceptor& acceptor, bool tls);
  awaitable<void> start_tls_session(tcp::socket socket, std::uint64_t id);
  // Waits before accepting again, longer each time in a row; logs the first of an episode.
  awaitable<void> pause_accepting(std::string_view why);

  asio::io_context& io_;
  const ServerConfig& self_;
  const ClientsConfig& clients_;
  Herd& herd_;
  places::Provider& places_;
  asio::ssl::context* tls_;
  tcp::acceptor acceptor_, tls_acceptor_;
  std::uint64_t next_session_ = 1;  // on the acceptors' strand
  RefusalLog tls_failures_{"tls port"};
  ClientBudget clients_open_;  // what the sessions hold together
  std::size_t max_clients_;    // the descriptor limit less a reserve for links, the log, places
  std::size_t pauses_ = 0;     // accepts that failed or waited in the current episode
  std::chrono::steady_clock::time_point paused_since_;
};

}  // namespace herd
