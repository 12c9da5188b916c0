// The Asio vocabulary shared by the server's networking files.
#pragma once

#include <string>
#include <tuple>
#include <utility>

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
  explicit Signal(const asio::any_io_executor& ex) : timer_(ex) {}
  // Not coroutines themselves: a frame each would be a tenth of an idle connection's memory.
  // Until `deadline` at the latest: the error is operation_aborted when notified.
  awaitable<std::tuple<asio::error_code>> wait_until(asio::steady_timer::time_point deadline) {
    armed_ = true;
    timer_.expires_at(deadline);
    return timer_.async_wait(as_result);
  }
  awaitable<std::tuple<asio::error_code>> wait() {
    return wait_until(asio::steady_timer::time_point::max());
  }
  void notify() {
    if (std::exchange(armed_, false)) timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  bool armed_ = false;  // a wait began since the last notify (it may have timed out since)
};

}  // namespace herd
