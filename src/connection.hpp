// One connection, client or neighbor: a reader and a writer run as one group with one stop
// path. What differs between a client session and a peer link is what it does with the lines
// it reads, which is the LineHandler's part; the stream is a template parameter, so a TLS
// stream takes the same code.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <string_view>
#include <memory>
#include <utility>
#include <variant>

#include <asio/ssl/stream.hpp>

#include "line_buffer.hpp"
#include "log.hpp"
#include "net.hpp"
#include "protocol.hpp"  // Timestamp

namespace herd {

// Called on the connection's executor, never at the same time as each other.
class LineHandler {
 public:
  virtual ~LineHandler() = default;
  // more: more may come. eof: the other side closed its side, so a line still without its
  // newline is its last. over: nothing more will be read (the read failed, or reading stopped).
  enum class Input { more, eof, over };
  // Bytes read at `at` were added to `input`: take the complete lines. Lines left in it are
  // handed over again (same `at` and `state`) once hold_reading() is false.
  virtual void received(LineBuffer& input, Timestamp at, Input state) = 0;
  // Called by the writer before each write: a chance to add output made lazily (a catch-up).
  virtual void refill(std::string& /*outbox*/) {}
  // While true the reader waits; Connection::wake_reader() asks again.
  virtual bool hold_reading() const { return false; }
  // Whether output is still owed that is not in the outbox yet (replies waiting for the herd);
  // the connection stays open for it once reading is done.
  virtual bool owes_output() const { return false; }
};

struct ConnectionOptions {
  std::string who;                         // "client 7", "peer Hands": names it in the log
  std::chrono::milliseconds send_timeout;  // a write that moves nothing for this long fails
  bool linger = false;  // once done, read and discard until the other side closes (max 1 s)
  LogLevel traffic = LogLevel::info;  // the level its lines are logged at
  // Closes a connection that completes no line, and is owed nothing, for this long (0: never).
  std::chrono::milliseconds idle_timeout{0};
};

template <typename Stream>
class Connection {
 public:
  Connection(Stream stream, LineHandler& handler, Log& log, ConnectionOptions options);

  // Bytes that arrived before the connection took over the stream (with a handshake):
  // handed to the handler before the first read.
  void preload(std::string_view bytes);

  // Reads and writes until both are done or the connection is closed, then closes it.
  // Returns why it closed: empty when it ended normally.
  awaitable<std::string> run();

  // What goes out next; append to it, then flush().
  std::string& outbox() { return outbox_; }
  // Writes the outbox at once when the stream takes it (the usual case, and no round through
  // the event loop); whatever is left goes to the writer.
  void flush();
  // Bytes handed to the connection that the stream has not taken yet.
  std::size_t unsent() const { return outbox_.size() + sending_.size(); }

  void wake_reader() { wake_reader_.notify(); }
  // The writer asks the handler to refill() again (output made lazily is ready).
  void wake_writer() { wake_writer_.notify(); }
  // From received(): reads no more; what is owed is still written, then the connection closes.
  void finish_reading();
  // From elsewhere (the server stops): what the other side sent so far is still read and
  // answered, then the same; the read side stays open, so that linger() drains the rest.
  void stop_reading();
  // Closes now, dropping what is not written. `why` is what run() returns.
  void close(std::string_view why);
  bool closed() const { return closed_; }
  const std::string& who() const { return options_.who; }

  Stream& stream() { return stream_; }

 private:
  awaitable<void> reader();
  asio::error_code read_available();
  void hand_over(Timestamp at, LineHandler::Input state);  // input_ to the handler
  asio::error_code read_what_is_there();
  bool idle(std::chrono::steady_clock::time_point now) const;
  awaitable<void> writer();
  awaitable<asio::error_code> write_all(std::string_view text);
  awaitable<void> linger();
  int unacknowledged_bytes();

  Stream stream_;
  LineHandler& handler_;
  Log& log_;
  ConnectionOptions options_;
  LineBuffer input_;
  std::string outbox_, sending_;
  Signal wake_reader_, wake_writer_;
  std::exception_ptr writer_failure_;  // a bug: rethrown by run()
  asio::cancellation_signal stop_;  // ends the read in progress, for stop_reading()
  std::string why_;
  std::chrono::steady_clock::time_point last_active_;  // the last line read or write done
  bool writer_running_ = false;
  bool writing_ = false;       // the writer has a write in flight
  bool reading_done_ = false;  // set by the reader, or by finish_reading()
  bool stopping_ = false;      // stop_reading() was called
  bool saw_eof_ = false;
  bool closed_ = false;
};

extern template class Connection<tcp::socket>;
extern template class Connection<asio::ssl::stream<tcp::socket>>;

// A connection over either stream, for what serves both: client sessions on the plain and the
// TLS port, peer links with and without [tls]. A TLS connection lives apart (it is much the
// larger), so that a plaintext one, the usual case, costs no more than before.
class AnyConnection {
  using Plain = Connection<tcp::socket>;
  using Tls = Connection<asio::ssl::stream<tcp::socket>>;

  // Calls f with the connection, whichever it is.
  template <typename F>
  decltype(auto) with(F f) {
    if (auto* plain = std::get_if<Plain>(&connection_)) return f(*plain);
    return f(*std::get<std::unique_ptr<Tls>>(connection_));
  }
  template <typename F>
  decltype(auto) with(F f) const {
    if (auto* plain = std::get_if<Plain>(&connection_)) return f(*plain);
    return f(std::as_const(*std::get<std::unique_ptr<Tls>>(connection_)));
  }

 public:
  template <typename Stream>
  AnyConnection(Stream stream, LineHandler& handler, Log& log, ConnectionOptions options)
      : connection_(make(std::move(stream), handler, log, std::move(options))) {}

  awaitable<std::string> run() {
    return with([](auto& c) { return c.run(); });
  }
  std::string& outbox() {
    return with([](auto& c) -> std::string& { return c.outbox(); });
  }
  void flush() {
    with([](auto& c) { c.flush(); });
  }
  std::size_t unsent() const {
    return with([](const auto& c) { return c.unsent(); });
  }
  void preload(std::string_view bytes) {
    with([bytes](auto& c) { c.preload(bytes); });
  }
  void wake_writer() {
    with([](auto& c) { c.wake_writer(); });
  }
  void wake_reader() {
    with([](auto& c) { c.wake_reader(); });
  }
  void finish_reading() {
    with([](auto& c) { c.finish_reading(); });
  }
  void stop_reading() {
    with([](auto& c) { c.stop_reading(); });
  }
  void close(std::string_view why) {
    with([why](auto& c) { c.close(why); });
  }
  bool closed() const {
    return with([](const auto& c) { return c.closed(); });
  }
  const std::string& who() const {
    return with([](const auto& c) -> const std::string& { return c.who(); });
  }
  asio::any_io_executor executor() {
    return with([](auto& c) -> asio::any_io_executor { return c.stream().get_executor(); });
  }
  tcp::socket& socket() {
    return with([](auto& c) -> tcp::socket& { return lowest(c.stream()); });
  }

 private:
  using Either = std::variant<Plain, std::unique_ptr<Tls>>;

  static Either make(tcp::socket socket, LineHandler& handler, Log& log,
                     ConnectionOptions options) {
    return Either(std::in_place_type<Plain>, std::move(socket), handler, log, std::move(options));
  }
  static Either make(asio::ssl::stream<tcp::socket> stream, LineHandler& handler, Log& log,
                     ConnectionOptions options) {
    return Either(std::make_unique<Tls>(std::move(stream), handler, log, std::move(options)));
  }

  static tcp::socket& lowest(tcp::socket& socket) { return socket; }
  static tcp::socket& lowest(asio::ssl::stream<tcp::socket>& stream) {
    return stream.next_layer();
  }

  Either connection_;
};

}  // namespace herd
