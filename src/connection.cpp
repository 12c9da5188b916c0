#include "connection.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <cstring>
#include <ctime>
#include <type_traits>

#include <fmt/format.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include "reply_queue.hpp"  // judge_stall

namespace herd {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr std::size_t read_size = 16 * 1024;
constexpr std::size_t max_read_at_stop = 256 * 1024;
constexpr auto linger_time = 1s;

Timestamp wall_clock() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<std::int32_t>(ts.tv_nsec)};
}

}  // namespace

template <typename Stream>
Connection<Stream>::Connection(Stream stream, LineHandler& handler, Log& log,
                               ConnectionOptions options)
    : stream_(std::move(stream)),
      handler_(handler),
      log_(log),
      options_(std::move(options)),
      wake_reader_(stream_.get_executor()),
      wake_writer_(stream_.get_executor()) {
  asio::error_code ignored;
  stream_.lowest_layer().set_option(tcp::no_delay(true), ignored);
  stream_.lowest_layer().non_blocking(true, ignored);  // flush() writes directly, never blocking
}

template <typename Stream>
awaitable<std::string> Connection<Stream>::run() {
  co_await (reader() && writer());
  asio::error_code ignored;
  auto& socket = stream_.lowest_layer();
  if (!closed_) {
    if constexpr (!std::is_same_v<Stream, tcp::socket>) {
      // TLS ends with close_notify both ways, so that the other side can tell the end from a
      // cut; the wait for its close_notify is bounded like a linger.
      asio::steady_timer deadline(stream_.get_executor(), linger_time);
      co_await (stream_.async_shutdown(as_result) || deadline.async_wait(as_result));
    } else {
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      if (options_.linger && !saw_eof_) co_await linger();
    }
  }
  closed_ = true;
  socket.close(ignored);
  co_return why_;
}

template <typename Stream>
void Connection<Stream>::preload(std::string_view bytes) {
  if (bytes.empty()) return;
  std::memcpy(input_.prepare(bytes.size()), bytes.data(), bytes.size());
  input_.commit(bytes.size());
}

template <typename Stream>
awaitable<void> Connection<Stream>::reader() {
  using Input = LineHandler::Input;
  if (!input_.rest().empty()) handler_.received(input_, wall_clock(), Input::more);
  while (!reading_done_ && !closed_) {
    asio::error_code error;
    if (!stopping_) {
      auto [read_error, n] =
          co_await stream_.async_read_some(asio::buffer(input_.prepare(read_size), read_size),
                                           asio::bind_cancellation_slot(stop_.slot(), as_result));
      if (closed_) break;
      if (!read_error) input_.commit(n);
      error = read_error == asio::error::operation_aborted && stopping_ ? asio::error_code{}
                                                                        : read_error;
    }
    if (stopping_ && !error) error = read_what_is_there();
    saw_eof_ = error == asio::error::eof;
    if (error && !saw_eof_ && why_.empty()) why_ = error.message();
    auto state = saw_eof_                              ? Input::eof
                 : error || reading_done_ || stopping_ ? Input::over
                                                       : Input::more;
    handler_.received(input_, wall_clock(), state);
    if (state != Input::more || reading_done_) break;  // the handler may have finished reading
    while (handler_.hold_reading() && !reading_done_ && !closed_) co_await wake_reader_.wait();
    // The other connections go first: by the time this one reads again its client has likely
    // written more, and the read finds data instead of costing a system call that finds none.
    co_await asio::post(stream_.get_executor(), asio::use_awaitable);
  }
  reading_done_ = true;
  wake_writer_.notify();
}

// After stop_reading(): what the kernel already holds, up to a bound (a client that keeps
// writing must not keep the server from stopping); the rest is discarded by linger().
template <typename Stream>
asio::error_code Connection<Stream>::read_what_is_there() {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    for (std::size_t taken = 0; taken < max_read_at_stop;) {
      asio::error_code error;
      auto n = stream_.read_some(asio::buffer(input_.prepare(read_size), read_size), error);
      if (error) return error == asio::error::would_block ? asio::error_code{} : error;
      input_.commit(n);
      taken += n;
    }
  }
  return {};
}

template <typename Stream>
awaitable<void> Connection<Stream>::writer() {
  while (!closed_) {
    handler_.refill(outbox_);
    if (outbox_.empty()) {
      if (reading_done_ && !handler_.owes_output()) break;
      co_await wake_writer_.wait();
      continue;
    }
    std::swap(outbox_, sending_);
    log_.sent(options_.who, sending_, options_.traffic);
    writing_ = true;
    auto error = co_await write_all(sending_);
    writing_ = false;
    sending_.clear();
    wake_reader_.notify();
    if (error == asio::error::timed_out)
      close(fmt::format("took none of its replies for {} ms", options_.send_timeout.count()));
    else if (error)
      close("write failed: " + error.message());
  }
}

template <typename Stream>
void Connection<Stream>::flush() {
  if (closed_) return;
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    if (writing_ || outbox_.empty()) return;
    asio::error_code error;
    auto n = stream_.write_some(asio::buffer(outbox_), error);
    if (n > 0) {
      wake_reader_.notify();  // fewer bytes wait to be sent: a paused reader may go on
      log_.sent(options_.who, std::string_view(outbox_).substr(0, n), options_.traffic);
      if (n == outbox_.size())
        outbox_.clear();
      else
        outbox_.erase(0, n);
    }
    if (error && error != asio::error::would_block) return wake_writer_.notify();
  }
  // The writer takes what is left, reports errors, and ends once reading is done.
  if (!outbox_.empty() || reading_done_) wake_writer_.notify();
}

template <typename Stream>
void Connection<Stream>::finish_reading() {
  if (reading_done_ || closed_) return;
  reading_done_ = true;  // the input left unread is drained by linger(), not reset
  wake_writer_.notify();
}

template <typename Stream>
void Connection<Stream>::stop_reading() {
  if (reading_done_ || closed_ || stopping_) return;
  stopping_ = true;
  // The read in progress ends, and only it. Shutting the read side instead would make the
  // kernel answer anything the client sends later with a reset, destroying replies in flight.
  stop_.emit(asio::cancellation_type::terminal);
  wake_reader_.notify();
}

template <typename Stream>
void Connection<Stream>::close(std::string_view why) {
  if (closed_) return;
  closed_ = true;
  if (why_.empty()) why_ = why;
  asio::error_code ignored;
  stream_.lowest_layer().cancel(ignored);
  wake_reader_.notify();
  wake_writer_.notify();
}

template <typename Stream>
awaitable<asio::error_code> Connection<Stream>::write_all(std::string_view text) {
  asio::steady_timer stalled(stream_.get_executor());
  while (!text.empty()) {
    auto queued = unacknowledged_bytes();
    stalled.expires_after(options_.send_timeout);
    auto result = co_await (stream_.async_write_some(asio::buffer(text), as_result) ||
                            stalled.async_wait(as_result));
    if (result.index() == 1) {
      if (judge_stall(queued, unacknowledged_bytes()) == Stall::keep_waiting) continue;
      co_return asio::error::timed_out;
    }
    auto [error, n] = std::get<0>(result);
    if (error) co_return error;
    text.remove_prefix(n);
  }
  co_return asio::error_code{};
}

// Bytes written to the socket that the other side has not acknowledged yet. They go down as it
// takes them in, which, once its buffer is full, is only as it reads.
template <typename Stream>
int Connection<Stream>::unacknowledged_bytes() {
  int bytes = 0;
  if (::ioctl(stream_.lowest_layer().native_handle(), SIOCOUTQ, &bytes) != 0) return 0;
  return bytes;
}

// Closing with unread input would reset the connection and could destroy the reply in
// flight; read and discard until the other side closes, for a short while.
template <typename Stream>
awaitable<void> Connection<Stream>::linger() {
  asio::steady_timer deadline(stream_.get_executor(), linger_time);
  char discard[4096];
  for (;;) {
    auto result = co_await (stream_.async_read_some(asio::buffer(discard), as_result) ||
                            deadline.async_wait(as_result));
    if (result.index() == 1 || std::get<0>(std::get<0>(result))) co_return;
  }
}

template class Connection<tcp::socket>;
template class Connection<asio::ssl::stream<tcp::socket>>;

}  // namespace herd
