// The listening socket: accepts connections and gives each a session; stops gracefully.
#pragma once

#include <cstdint>

#include "config.hpp"
#include "herd.hpp"
#include "net.hpp"
#include "places/provider.hpp"
#include "session.hpp"

namespace herd {

class Server {
 public:
  // `sessions` outlives the io_context: sessions still pending when it is destroyed leave it.
  Server(asio::io_context& io, const ServerConfig& self, const ClientsConfig& clients, Herd& herd,
         places::Provider& places, SessionRegistry& sessions, int threads);

  // Binds and listens; throws std::runtime_error naming the address when it cannot.
  void listen();
  void start();
  // Stops accepting and lets every session answer what it has read, then close.
  void stop();
  std::size_t sessions() const { return sessions_.size(); }

 private:
  awaitable<void> accept();

  asio::io_context& io_;
  const ServerConfig& self_;
  const ClientsConfig& clients_;
  Herd& herd_;
  places::Provider& places_;
  tcp::acceptor acceptor_;
  SessionRegistry& sessions_;
  bool one_thread_;
  std::uint64_t next_session_ = 1;
};

}  // namespace herd
