// The Asio vocabulary shared by the server's networking files.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace herd {

using asio::awaitable;
using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

// Expected failures (EOF, reset, cancel) come back as values, not exceptions.
inline constexpr auto as_result = asio::experimental::as_tuple(asio::use_awaitable);

// A timer used as a condition variable: wait() until notify() cancels it.
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex)
      : timer_(ex, asio::steady_timer::time_point::max()) {}
  awaitable<void> wait() { co_await timer_.async_wait(as_result); }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace herd
