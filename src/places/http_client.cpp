#include "places/http_client.hpp"

#include <curl/curl.h>
#include <fmt/core.h>
#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace herd::places {

namespace {

class CurlCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "curl"; }
  std::string message(int value) const override {
    return curl_easy_strerror(static_cast<CURLcode>(value));
  }
};

void init_curl_once() {
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK) throw std::runtime_error("curl_global_init failed");
}

bool curl_has_http2() {
  return (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) != 0;
}

bool has_header(const std::vector<std::string>& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [name](const std::string& header) {
    return header.size() > name.size() && header[name.size()] == ':' &&
           std::equal(name.begin(), name.end(), header.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  });
}

// curl reads "0" as "no limit"; a request always has one.
long at_least_1ms(std::chrono::milliseconds ms) {
  return std::max<long>(1, ms.count());
}

}  // namespace

const std::error_category& curl_category() {
  static const CurlCategory category;
  return category;
}

namespace detail {

struct Transfer {
  Transfer(HttpRequest r, std::unique_ptr<FetchCompletion> c)
      : request(std::move(r)), completion(std::move(c)) {}
  ~Transfer() { curl_slist_free_all(headers); }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  HttpRequest request;
  HttpResponse response;
  std::unique_ptr<FetchCompletion> completion;  // null once completed
  CURL* easy = nullptr;                         // set while added to the multi handle
  curl_slist* headers = nullptr;
  bool body_too_large = false;
};

// One fd curl asked us to watch. curl owns the fd: the descriptor is released, never closed,
// unless curl asks us to close it (on_close_socket).
struct WatchedSocket {
  explicit WatchedSocket(asio::io_context& io) : descriptor(io) {}
  ~WatchedSocket() { release(); }
  WatchedSocket(const WatchedSocket&) = delete;
  WatchedSocket& operator=(const WatchedSocket&) = delete;

  // Deregisters from the reactor and aborts pending waits.
  void release() {
    if (descriptor.is_open()) descriptor.release();
  }

  asio::posix::stream_descriptor descriptor;
  int wanted = CURL_POLL_NONE;  // what curl asked for last
  bool reading = false;         // a wait_read is pending
  bool writing = false;         // a wait_write is pending
  // A kept connection idling in curl's cache: curl has said REMOVE but will close it only
  // through on_close_socket, so it stays registered for the next transfer to reuse.
  bool parked = false;
};

// The curl multi handle and everything that drives it. Apart from construction and close()
// from the client's destructor, every member function runs on strand_.
class CurlMulti : public std::enable_shared_from_this<CurlMulti> {
 public:
  using Strand = asio::strand<asio::io_context::executor_type>;

  CurlMulti(asio::io_context& io, long max_host_connections)
      : io_(io),
        strand_(io.get_executor()),
        timer_(io),
        multiplex_(curl_has_http2()),
        // As many as run at once: with fewer kept, a lull then a burst makes and frees handles.
        max_idle_easies_(std::max<std::size_t>(
            16, static_cast<std::size_t>(std::max(0L, max_host_connections)))) {
    init_curl_once();
    multi_ = curl_multi_init();
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING,
                      multiplex_ ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    if (max_host_connections > 0) {
      curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
      // The cache's size, over all hosts (we ask one). By default curl keeps 4 idle
      // connections per transfer running at that moment, so a lull closes connections that
      // the next burst reopens (with TLS, a handshake each).
      curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, max_host_connections);
    }
  }

  ~CurlMulti() { close(); }
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  const Strand& strand() const { return strand_; }

  void start(const std::shared_ptr<Transfer>& transfer);
  void cancel(const std::shared_ptr<Transfer>& transfer);
  void close();

 private:
  using Direction = asio::posix::stream_descriptor::wait_type;

  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket);
  static int on_close_socket(void* self, curl_socket_t fd);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static size_t on_body(char* data, size_t size, size_t count, void* transfer);

  int watch(curl_socket_t fd, int what, WatchedSocket* known);
  void unwatch(CURL* easy, curl_socket_t fd);
  void forget(curl_socket_t fd);
  void arm(const std::shared_ptr<WatchedSocket>& socket, Direction direction);
  void on_ready(const std::shared_ptr<WatchedSocket>& socket, Direction direction,
                std::error_code ec);
  void set_timer(long timeout_ms);
  void arm_timer_by(std::chrono::steady_clock::time_point at);
  void on_due();
  void socket_action(curl_socket_t fd, int events);
  void drain_done();
  void finish(CURL* easy, CURLcode result);
  void configure(CURL* easy, Transfer& transfer);
  CURL* take_easy();
  void recycle(CURL* easy);
  static void complete(Transfer& transfer, std::error_code ec, std::string error);

  asio::io_context& io_;
  Strand strand_;
  // curl's single timeout, `due_`, is served by timer_, armed at or before it (`armed_at_`)
  // and re-armed only when the timeout moves earlier: with lookups completing in
  // milliseconds, curl moves it on every transfer, and reprogramming the kernel's timer each
  // time is one of a lookup's costliest system calls. A timeout of 0 is a posted handler.
  asio::steady_timer timer_;
  std::optional<std::chrono::steady_clock::time_point> due_;
  std::optional<std::chrono::steady_clock::time_point> armed_at_;
  std::uint64_t timer_generation_ = 0;  // tells a superseded timer's completion apart
  bool due_now_posted_ = false;
  CURLM* multi_ = nullptr;
  bool closing_ = false;
  bool multiplex_;
  std::unordered_map<curl_socket_t, std::shared_ptr<WatchedSocket>> sockets_;
  std::unordered_map<CURL*, std::shared_ptr<Transfer>> transfers_;
  std::vector<CURL*> idle_easies_;  // reset handles kept for the next requests
  std::size_t max_idle_easies_;
};

namespace {

// Asio's own categories, so callers compare with asio::error::timed_out and friends as they
// would for a socket.
std::error_code error_code_for(CURLcode result, long os_errno) {
  switch (result) {
    case CURLE_OPERATION_TIMEDOUT:
      return asio::error::timed_out;
    case CURLE_COULDNT_RESOLVE_HOST:
      return asio::error::host_not_found;
    case CURLE_COULDNT_CONNECT:
      if (os_errno != 0) return {static_cast<int>(os_errno), asio::error::get_system_category()};
      break;
    default:
      break;
  }
  return {result, curl_category()};
}

// Built from codes only: curl's error buffer may quote the host or the URL.
std::string describe(CURLcode result, long os_errno, const Transfer& transfer,
                     std::chrono::microseconds elapsed) {
  const HttpRequest& request = transfer.request;
  switch (result) {
    case CURLE_OPERATION_TIMEDOUT:
      if (request.connect_timeout < request.timeout && elapsed < request.timeout) {
        return fmt::format("connecting to upstream timed out after {} ms",
                           at_least_1ms(request.connect_timeout));
      }
      return fmt::format("upstream timed out after {} ms", at_least_1ms(request.timeout));
    case CURLE_COULDNT_CONNECT:
      if (os_errno == ECONNREFUSED) return "connection refused by upstream";
      if (os_errno != 0) {
        return "could not connect to upstream: " +
               std::system_category().message(static_cast<int>(os_errno));
      }
      return "could not connect to upstream";
    case CURLE_COULDNT_RESOLVE_HOST:
      return "could not resolve the upstream host";
    case CURLE_WRITE_ERROR:
      if (transfer.body_too_large) {
        return fmt::format("upstream response larger than {} bytes", request.max_body_bytes);
      }
      break;
    default:
      break;
  }
  return fmt::format("upstream request failed: {}", curl_easy_strerror(result));
}

// Installed in the fetch handler's cancellation slot; runs on whatever thread emits.
class CancelFetch {
 public:
  CancelFetch(std::weak_ptr<CurlMulti> multi, std::weak_ptr<Transfer> transfer,
              CurlMulti::Strand strand)
      : multi_(std::move(multi)), transfer_(std::move(transfer)), strand_(std::move(strand)) {}

  void operator()(asio::cancellation_type_t type) {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                 asio::cancellation_type::total)) == asio::cancellation_type::none) {
      return;
    }
    asio::post(strand_, [multi = multi_, transfer = transfer_] {
      auto m = multi.lock();
      auto t = transfer.lock();
      if (m && t) m->cancel(t);
    });
  }

 private:
  std::weak_ptr<CurlMulti> multi_;
  std::weak_ptr<Transfer> transfer_;
  CurlMulti::Strand strand_;
};

}  // namespace

void CurlMulti::start(const std::shared_ptr<Transfer>& transfer) {
  if (!transfer->completion) return;  // cancelled before it reached the strand
  if (!multi_) {
    return complete(*transfer, asio::error::operation_aborted, "HTTP client is shut down");
  }
  CURL* easy = take_easy();
  if (!easy) return complete(*transfer, {CURLE_OUT_OF_MEMORY, curl_category()}, "out of memory");
  configure(easy, *transfer);
  if (CURLMcode added = curl_multi_add_handle(multi_, easy); added != CURLM_OK) {
    recycle(easy);
    return complete(*transfer, {CURLE_FAILED_INIT, curl_category()},
                    fmt::format("could not start the request: {}", curl_multi_strerror(added)));
  }
  transfer->easy = easy;
  transfers_.emplace(easy, transfer);
  // Adding the handle set curl's timeout to 0. Served here rather than by the posted handler
  // (this is not inside a curl callback), the request goes out before the answers already
  // queued on the io_context are translated, and a handler per lookup is saved.
  on_due();
}

void CurlMulti::configure(CURL* easy, Transfer& transfer) {
  const HttpRequest& request = transfer.request;
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &transfer);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, at_least_1ms(request.timeout));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   at_least_1ms(std::min(request.connect_timeout, request.timeout)));
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CurlMulti::on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlMulti::on_close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  if (multiplex_) {
    // HTTP/2 where TLS negotiates it, HTTP/1.1 keep-alive for plain http.
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    if (request.url.starts_with("https:")) curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
  }

  if (request.method == "GET" && request.body.empty()) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    if (request.method == "POST" || !request.body.empty()) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    if (request.method != "POST") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  for (const std::string& header : request.headers) {
    transfer.headers = curl_slist_append(transfer.headers, header.c_str());
  }
  // A round trip saved: no "Expect: 100-continue" before a body.
  if (!request.body.empty() && !has_header(request.headers, "Expect")) {
    transfer.headers = curl_slist_append(transfer.headers, "Expect:");
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.headers);
}

void CurlMulti::cancel(const std::shared_ptr<Transfer>& transfer) {
  if (!transfer->completion) return;  // already completed
  if (CURL* easy = std::exchange(transfer->easy, nullptr)) {
    transfers_.erase(easy);
    curl_multi_remove_handle(multi_, easy);
    recycle(easy);
  }
  complete(*transfer, asio::error::operation_aborted, "request cancelled");
}

void CurlMulti::close() {
  if (!multi_) return;
  closing_ = true;
  for (auto& [easy, transfer] : std::exchange(transfers_, {})) {
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
    transfer->easy = nullptr;
    complete(*transfer, asio::error::operation_aborted, "HTTP client is shut down");
  }
  // Cleanup closes the cached connections through on_close_socket: sockets_ must still be
  // there.
  curl_multi_cleanup(multi_);
  multi_ = nullptr;
  for (auto& [fd, socket] : sockets_) socket->release();
  sockets_.clear();
  for (CURL* easy : idle_easies_) curl_easy_cleanup(easy);
  idle_easies_.clear();
  timer_.cancel();
}

int CurlMulti::on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket) {
  auto& multi = *static_cast<CurlMulti*>(self);
  if (what == CURL_POLL_REMOVE) {
    multi.unwatch(easy, fd);
    return 0;
  }
  return multi.watch(fd, what, static_cast<WatchedSocket*>(socket));
}

// Called instead of close() for the sockets of curl's connections (not for those of failed
// connection attempts, nor for its resolver's socketpair), parked or not.
int CurlMulti::on_close_socket(void* self, curl_socket_t fd) {
  static_cast<CurlMulti*>(self)->forget(fd);
  return ::close(fd);
}

int CurlMulti::watch(curl_socket_t fd, int what, WatchedSocket* known) {
  if (closing_) return 0;
  auto it = sockets_.find(fd);
  // curl forgets its pointer to a parked socket. Any other entry that it does not know is
  // stale, the fd closed and its number reused: deregister it before registering the new one.
  if (it != sockets_.end() && it->second.get() != known &&
      !(it->second->parked && known == nullptr)) {
    forget(fd);
    it = sockets_.end();
  }
  if (it == sockets_.end()) {
    auto socket = std::make_shared<WatchedSocket>(io_);
    std::error_code ec;
    socket->descriptor.assign(fd, ec);
    if (ec) return -1;
    it = sockets_.emplace(fd, std::move(socket)).first;
  }
  const std::shared_ptr<WatchedSocket>& socket = it->second;
  if (socket.get() != known) curl_multi_assign(multi_, fd, socket.get());  // allowed in here
  socket->parked = false;
  socket->wanted = what;
  if ((what & CURL_POLL_IN) && !socket->reading) arm(socket, Direction::wait_read);
  if ((what & CURL_POLL_OUT) && !socket->writing) arm(socket, Direction::wait_write);
  return 0;
}

// curl no longer needs fd for `easy`'s transfer. When the transfer's connection stays in
// curl's cache for reuse, its socket stays registered (parked): leaving and rejoining epoll
// for every request would cost a lookup three system calls. Any other socket is released
// now; curl may already have closed it.
//
// Parking relies on curl 7.88 closing a connection's socket (the one CURLINFO_ACTIVESOCKET
// names) only through on_close_socket: it closes the sockets of attempts that never
// connected itself, but those are never a connection's. Check again on a new libcurl.
void CurlMulti::unwatch(CURL* easy, curl_socket_t fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  curl_socket_t kept = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &kept) == CURLE_OK && kept == fd) {
    WatchedSocket& socket = *it->second;
    socket.wanted = CURL_POLL_NONE;
    socket.parked = true;
    // A wait still pending (the transfer ended in another socket's handler or on the timer,
    // as streams multiplexed over HTTP/2 do) would keep the io_context busy while the
    // connection idles. Aborting it makes no system call; on_ready re-arms it if curl has
    // taken the socket up again by then.
    std::error_code ignored;
    socket.descriptor.cancel(ignored);
  } else {
    forget(fd);
  }
}

void CurlMulti::forget(curl_socket_t fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  it->second->release();
  sockets_.erase(it);
}

void CurlMulti::arm(const std::shared_ptr<WatchedSocket>& socket, Direction direction) {
  (direction == Direction::wait_read ? socket->reading : socket->writing) = true;
  socket->descriptor.async_wait(
      direction, asio::bind_executor(
                     strand_, [self = shared_from_this(), socket, direction](std::error_code ec) {
                       self->on_ready(socket, direction, ec);
                     }));
}

void CurlMulti::on_ready(const std::shared_ptr<WatchedSocket>& socket, Direction direction,
                         std::error_code ec) {
  const bool read = direction == Direction::wait_read;
  bool& pending = read ? socket->reading : socket->writing;
  pending = false;
  // Released (by curl's REMOVE or close()): the fd number may already be another socket's.
  if (!socket->descriptor.is_open()) return;
  const int direction_bit = read ? CURL_POLL_IN : CURL_POLL_OUT;
  if (!(socket->wanted & direction_bit)) return;
  // Aborted when parked, and reused since: watch() saw this wait still pending.
  if (ec == asio::error::operation_aborted) return arm(socket, direction);
  if (ec) {
    // Not re-armed: a broken descriptor would fail again at once; curl times the transfer out.
    return socket_action(socket->descriptor.native_handle(), CURL_CSELECT_ERR);
  }
  socket_action(socket->descriptor.native_handle(), read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
  if (socket->descriptor.is_open() && (socket->wanted & direction_bit) && !pending) {
    arm(socket, direction);
  }
}

int CurlMulti::on_timer(CURLM*, long timeout_ms, void* self) {
  static_cast<CurlMulti*>(self)->set_timer(timeout_ms);
  return 0;
}

void CurlMulti::set_timer(long timeout_ms) {
  if (timeout_ms < 0 || closing_) {
    due_.reset();
    armed_at_.reset();
    timer_.cancel();
    return;
  }
  due_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  if (timeout_ms == 0) {
    // Even for 0: curl must not be called from inside its own callback.
    if (!std::exchange(due_now_posted_, true)) {
      asio::post(strand_, [self = shared_from_this()] {
        self->due_now_posted_ = false;
        self->on_due();
      });
    }
    return;
  }
  arm_timer_by(*due_);
}

// Makes sure the timer fires no later than `at`, leaving it alone when it already does.
void CurlMulti::arm_timer_by(std::chrono::steady_clock::time_point at) {
  if (armed_at_ && *armed_at_ <= at) return;
  armed_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait(asio::bind_executor(
      strand_, [self = shared_from_this(), generation = ++timer_generation_](std::error_code ec) {
        if (ec == asio::error::operation_aborted || generation != self->timer_generation_) return;
        self->armed_at_.reset();
        self->on_due();
      }));
}

// Tells curl its timeout has come, or, when the timer fired early because curl has since
// moved the timeout later, waits on for it.
void CurlMulti::on_due() {
  if (!due_ || closing_) return;
  if (*due_ > std::chrono::steady_clock::now()) return arm_timer_by(*due_);
  due_.reset();
  socket_action(CURL_SOCKET_TIMEOUT, 0);
}

size_t CurlMulti::on_body(char* data, size_t size, size_t count, void* transfer_ptr) {
  auto& transfer = *static_cast<Transfer*>(transfer_ptr);
  const size_t bytes = size * count;
  if (bytes > transfer.request.max_body_bytes - transfer.response.body.size()) {
    transfer.body_too_large = true;
    return CURL_WRITEFUNC_ERROR;
  }
  if (transfer.response.body.empty())
    transfer.response.body.reserve(std::max<size_t>(bytes, 16 * 1024));
  transfer.response.body.append(data, bytes);
  return bytes;
}

void CurlMulti::socket_action(curl_socket_t fd, int events) {
  if (!multi_) return;
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  drain_done();
}

void CurlMulti::drain_done() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    // Both read before removal invalidates the message.
    CURL* easy = message->easy_handle;
    CURLcode result = message->data.result;
    finish(easy, result);
  }
}

void CurlMulti::finish(CURL* easy, CURLcode result) {
  auto node = transfers_.extract(easy);
  if (node.empty()) return;  // not ours to touch
  curl_multi_remove_handle(multi_, easy);
  Transfer& transfer = *node.mapped();
  transfer.easy = nullptr;

  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &transfer.response.status);
  std::error_code ec;
  std::string error;
  if (result != CURLE_OK) {
    long os_errno = 0;
    curl_off_t elapsed_us = 0;
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &elapsed_us);
    ec = error_code_for(result, os_errno);
    error = describe(result, os_errno, transfer, std::chrono::microseconds(elapsed_us));
  }
  recycle(easy);
  complete(transfer, ec, std::move(error));
}

CURL* CurlMulti::take_easy() {
  if (idle_easies_.empty()) return curl_easy_init();
  CURL* easy = idle_easies_.back();
  idle_easies_.pop_back();
  return easy;
}

void CurlMulti::recycle(CURL* easy) {
  if (idle_easies_.size() >= max_idle_easies_) return curl_easy_cleanup(easy);
  curl_easy_reset(easy);
  idle_easies_.push_back(easy);
}

void CurlMulti::complete(Transfer& transfer, std::error_code ec, std::string error) {
  if (!transfer.completion) return;
  transfer.response.error = std::move(error);
  std::exchange(transfer.completion, nullptr)->post(ec, std::move(transfer.response));
}

}  // namespace detail

HttpClient::HttpClient(asio::io_context& io, long max_host_connections)
    : executor_(io.get_executor()),
      multi_(std::make_shared<detail::CurlMulti>(io, max_host_connections)) {}

HttpClient::~HttpClient() {
  multi_->close();
}

void HttpClient::start(HttpRequest request, std::unique_ptr<detail::FetchCompletion> completion,
                       asio::cancellation_slot slot) {
  auto transfer = std::make_shared<detail::Transfer>(std::move(request), std::move(completion));
  if (slot.is_connected()) {
    slot.emplace<detail::CancelFetch>(multi_, transfer, multi_->strand());
  }
  asio::dispatch(multi_->strand(), [multi = multi_, transfer] { multi->start(transfer); });
}

void HttpClient::shutdown() {
  asio::dispatch(multi_->strand(), [multi = multi_] { multi->close(); });
}

}  // namespace herd::places
