// The peer port: where neighbors connect, apart from clients. A connection first proves who it
// is (with [tls]: a certificate from the herd's CA naming a neighbor of this server; without:
// only its "PEER <name>" line), then becomes that neighbor's link. Anything else is refused
// and logged with its address and why; nothing it sent is read as a record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config.hpp"
#include "herd.hpp"
#include "net.hpp"
#include "refusals.hpp"
#include "tls.hpp"

namespace herd {

class PeerPort {
 public:
  // `tls`: null for plaintext links. Runs on the herd's strand.
  PeerPort(Herd& herd, const ServerConfig& self, asio::ssl::context* tls);

  void listen();  // throws std::runtime_error naming the address
  void start();
  void stop();

 private:
  awaitable<void> accept();
  awaitable<void> greet(tcp::socket socket);
  template <typename Stream>
  awaitable<std::optional<std::string>> read_hello(Stream& stream, std::string& buffered,
                                                   asio::steady_timer& deadline,
                                                   const std::string& from);
  void refuse(const std::string& from, std::string_view why);

  Herd& herd_;
  const ServerConfig& self_;
  asio::ssl::context* tls_;
  tcp::acceptor acceptor_;
  int greeting_ = 0;  // handshakes in progress
  RefusalLog refusals_{"peer port"};
};

}  // namespace herd
