// The Asio vocabulary shared by the server's networking files.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace herd {

using asio::awaitable;
using asio::ip::tcp;
// An executor whose handlers never run at the same time: a strand, or, when one thread runs
// the loop, the io_context itself (an implicit strand, and cheaper: dispatch runs inline).
using Strand = asio::any_io_executor;

// Expected failures (EOF, reset, cancel) come back as values, not exceptions.
inline constexpr auto as_result = asio::experimental::as_tuple(asio::use_awaitable);

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
