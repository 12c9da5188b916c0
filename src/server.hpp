// The listening socket: accepts connections and gives each a session on a strand of its own.
#pragma once

#include <cstdint>

#include "config.hpp"
#include "herd.hpp"
#include "net.hpp"
#include "output_budget.hpp"
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

  asio::io_context& io_;
  const ServerConfig& self_;
  const ClientsConfig& clients_;
  Herd& herd_;
  places::Provider& places_;
  tcp::acceptor acceptor_;
  std::uint64_t next_session_ = 1;
  OutputBudget output_;  // the replies every session holds
};

}  // namespace herd
