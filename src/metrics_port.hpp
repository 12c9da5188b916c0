// The metrics port (servers.NAME.metrics_port): HTTP/1.1 GET /metrics in the Prometheus text
// format and GET /healthz, one request per connection. Each request is bounded in size and
// time, and so is the number of connections open at once, so a scraper can neither hang nor
// grow the server. The counts come from the herd (a snapshot taken on its strand), the client
// sessions' relaxed counters and the log.
#pragma once

#include <chrono>
#include <string>

#include "config.hpp"
#include "herd.hpp"
#include "http_request.hpp"
#include "net.hpp"

namespace herd {

class MetricsPort {
 public:
  MetricsPort(asio::io_context& io, Herd& herd, const ServerConfig& self);

  void listen();  // throws std::runtime_error naming the address
  void start();
  void stop();

 private:
  awaitable<void> accept();
  awaitable<void> serve(tcp::socket socket);
  awaitable<http::Request> read_request(tcp::socket& socket);
  awaitable<std::string> respond(const http::Request& request);
  awaitable<MetricsSnapshot> snapshot();

  Herd& herd_;
  const ServerConfig& self_;
  tcp::acceptor acceptor_;
  int open_ = 0;  // connections being served, on the acceptor's strand
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point started_steady_ = std::chrono::steady_clock::now();
};

// "ok", or why the server is not healthy: "link to Hands down", "links to Hands, Wilkes down".
std::string health_of(const HerdSnapshot& herd);

}  // namespace herd
