// The Asio vocabulary shared by the server's networking files.
#pragma once

#include <string>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace herd {

using asio::awaitable;
using asio::ip::tcp;
// Handlers on one strand never run at the same time, whatever the number of threads: the
// herd's core has one, and so has each client session.
using CoreStrand = asio::strand<asio::io_context::executor_type>;

// Expected failures (EOF, reset, cancel) come back as values, not exceptions.
inline constexpr auto as_result = asio::experimental::as_tuple(asio::use_awaitable);

// "address:port" of the other end, "[address]:port" for IPv6; "?" when the socket has none.
inline std::string remote_address(const tcp::socket& socket) {
  asio::error_code error;
  auto endpoint = socket.remote_endpoint(error);
  if (error) return "?";
  auto address = endpoint.address().to_string();
  if (endpoint.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(endpoint.port());
}

// A timer used as a condition variable: wait() until notify() cancels it. Both are called on
// the owner's executor; a notify with nobody waiting costs nothing (it is on every request).
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex)
      : timer_(ex, asio::steady_timer::time_point::max()) {}
  awaitable<void> wait() {
    ++waiting_;
    co_await timer_.async_wait(as_result);
    --waiting_;
  }
  void notify() {
    if (waiting_ > 0) timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  int waiting_ = 0;
};

}  // namespace herd
