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

namespace herd {

class Server {
 public:
  Server(asio::io_context& io, const ServerConfig& self, const ClientsConfig& clients, Herd& herd,
         places::Provider& places);

  // Binds and listens; throws std::runtime_error naming the address when it cannot.
  void listen();
  void start();
  // Stops accepting. The herd stops the sessions (Herd::stop).
  void stop();

 private:
  awaitable<void> accept();
  // Waits before accepting again, longer each time in a row; logs the first of an episode.
  awaitable<void> pause_accepting(std::string_view why);

  asio::io_context& io_;
  const ServerConfig& self_;
  const ClientsConfig& clients_;
  Herd& herd_;
  places::Provider& places_;
  tcp::acceptor acceptor_;
  std::uint64_t next_session_ = 1;
  ClientBudget clients_open_;  // what the sessions hold together
  std::size_t max_clients_;    // the descriptor limit less a reserve for links, the log, places
  std::size_t pauses_ = 0;     // accepts that failed or waited in the current episode
  std::chrono::steady_clock::time_point paused_since_;
};

}  // namespace herd
