#include "connection.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <cstring>
#include <ctime>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include "reply_queue.hpp"  // judge_stall

namespace herd {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr std::size_t read_size = 64 * 1024;
constexpr std::size_t max_read_at_stop = 256 * 1024;
constexpr std::size_t kept_write_buffer = 64 * 1024;  // a larger one goes back after its write
constexpr auto linger_time = 1s;

// Where a read lands, shared by the connections of a thread: a connection holds no read buffer
// of its own while it waits, only what LineBuffer keeps of an unfinished line. Valid until the
// next co_await, which may resume on another thread.
std::vector<char>& read_scratch() {
  thread_local std::vector<char> scratch(read_size);
  return scratch;
}

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
      wake_writer_(stream_.get_executor()),
      last_active_(std::chrono::steady_clock::now()) {
  asio::error_code ignored;
  stream_.lowest_layer().set_option(tcp::no_delay(true), ignored);
  stream_.lowest_layer().non_blocking(true, ignored);  // flush() writes directly, never blocking
}

template <typename Stream>
awaitable<std::string> Connection<Stream>::run() {
  // Reader and writer run side by side and the connection ends when both have. Not as a
  // parallel group (reader() && writer()): that costs 2 KB of coroutine frames per connection,
  // most of what an idle one holds.
  writer_running_ = true;
  asio::co_spawn(stream_.get_executor(), writer(), [this](std::exception_ptr failure) {
    writer_failure_ = failure;
    writer_running_ = false;
    wake_reader_.notify();  // the reader is done by then: run() waits on its signal
  });
  std::exception_ptr failure;
  try {
    co_await reader();
  } catch (...) {  // a bug: the writer ends too, then it is rethrown
    failure = std::current_exception();
    close("internal error");
  }
  while (writer_running_) co_await wake_reader_.wait();
  if (!failure) failure = writer_failure_;
  if (failure) std::rethrow_exception(failure);
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
  input_.append(bytes);
}

template <typename Stream>
awaitable<void> Connection<Stream>::reader() {
  using Input = LineHandler::Input;
  if (!input_.rest().empty()) handler_.received(input_, wall_clock(), Input::more);
  while (!reading_done_ && !closed_) {
    asio::error_code error;
    if (!stopping_) {
      // Waits for bytes without a buffer, then reads them into the thread's scratch: an idle
      // connection holds no read buffer (nor the frame of a nested coroutine).
      auto read_error = read_available();
      while (read_error == asio::error::would_block && !closed_) {
        auto [wait_error] = co_await stream_.lowest_layer().async_wait(
            tcp::socket::wait_read, asio::bind_cancellation_slot(stop_.slot(), as_result));
        read_error = wait_error ? wait_error : read_available();
      }
      if (closed_) break;
      error = read_error == asio::error::operation_aborted && stopping_ ? asio::error_code{}
                                                                        : read_error;
    }
    if (stopping_ && !error) error = read_what_is_there();
    saw_eof_ = error == asio::error::eof;
    if (error && !saw_eof_ && why_.empty()) why_ = error.message();
    auto state = saw_eof_                              ? Input::eof
                 : error || reading_done_ || stopping_ ? Input::over
                                                       : Input::more;
    // A handler that paces its replies leaves lines for later: they go before the next read.
    // (One co_await in this loop, not two: each costs the frame of every idle connection.)
    for (auto at = wall_clock(); !closed_; ) {
      hand_over(at, state);
      if (state != Input::more && !input_.has_line()) break;
      while (handler_.hold_reading() && !reading_done_ && !closed_) co_await wake_reader_.wait();
      input_.settle();  // only now: the batch (a session's StoreOps) points into its lines
      if (!input_.has_line() || reading_done_) break;
    }
    if (state != Input::more || reading_done_) break;  // the handler may have finished reading
    // The other connections go first: by the time this one reads again its client has likely
    // written more, and the read finds data instead of costing a system call that finds none.
    co_await asio::post(stream_.get_executor(), asio::use_awaitable);
  }
  reading_done_ = true;
  wake_writer_.notify();
}

template <typename Stream>
void Connection<Stream>::hand_over(Timestamp at, LineHandler::Input state) {
  auto lines_before = input_.lines_taken();
  handler_.received(input_, at, state);
  if (input_.lines_taken() != lines_before) last_active_ = std::chrono::steady_clock::now();
}

// Takes what the stream holds into input_, without waiting: would_block when it holds nothing.
// A TLS stream may hold decrypted bytes its socket does not show; the reader calls this before
// waiting for the socket, and waits only once it said would_block, so none are left behind.
template <typename Stream>
asio::error_code Connection<Stream>::read_available() {
  asio::error_code error;
  auto& scratch = read_scratch();
  auto n = stream_.read_some(asio::buffer(scratch), error);
  input_.append({scratch.data(), n});
  return error;
}

// After stop_reading(): what the kernel already holds, up to a bound (a client that keeps
// writing must not keep the server from stopping); the rest is discarded by linger().
template <typename Stream>
asio::error_code Connection<Stream>::read_what_is_there() {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    for (auto size = input_.rest().size(); input_.rest().size() - size < max_read_at_stop;) {
      auto error = read_available();
      if (error) return error == asio::error::would_block ? asio::error_code{} : error;
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
      auto deadline = options_.idle_timeout.count() > 0 ? last_active_ + options_.idle_timeout
                                                        : std::chrono::steady_clock::time_point::max();
      auto [woken] = co_await wake_writer_.wait_until(deadline);
      if (woken != asio::error::operation_aborted && idle(std::chrono::steady_clock::now()))
        close(fmt::format("completed no line for {} ms", options_.idle_timeout.count()));
      continue;
    }
    std::swap(outbox_, sending_);
    log_.sent(options_.who, sending_, options_.traffic);
    writing_ = true;
    auto error = co_await write_all(sending_);
    writing_ = false;
    last_active_ = std::chrono::steady_clock::now();
    sending_.clear();
    if (sending_.capacity() > kept_write_buffer) std::string().swap(sending_);
    wake_reader_.notify();
    if (error == asio::error::timed_out)
      close(fmt::format("took none of its replies for {} ms", options_.send_timeout.count()));
    else if (error)
      close("write failed: " + error.message());
  }
}

// Nothing read makes a line, nothing is owed, nothing written, for the whole idle timeout: a
// client that opens a connection and says nothing, or says it a byte at a time (slowloris).
template <typename Stream>
bool Connection<Stream>::idle(std::chrono::steady_clock::time_point now) const {
  return options_.idle_timeout.count() > 0 && !reading_done_ && !closed_ && outbox_.empty() &&
         !writing_ && !handler_.owes_output() && now - last_active_ >= options_.idle_timeout;
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
      if (n == outbox_.size()) {
        outbox_.clear();
        if (outbox_.capacity() > kept_write_buffer) std::string().swap(outbox_);
      } else
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
