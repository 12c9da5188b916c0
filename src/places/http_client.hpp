#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace herd::places {

// Every member has an initializer so designated initializers may skip any of them without
// -Wmissing-field-initializers.
struct HttpRequest {
  std::string method = "GET";
  std::string url{};
  std::vector<std::string> headers{};  // "Name: value"
  std::string body{};
  std::chrono::milliseconds timeout{3000};          // the whole transfer
  std::chrono::milliseconds connect_timeout{1500};  // TCP and TLS handshake; capped by timeout
  std::size_t max_body_bytes = 8 << 20;             // a longer response fails the fetch
};

struct HttpResponse {
  long status = 0;
  std::string body{};
  // Empty when the transfer completed, whatever the HTTP status. Otherwise a short message
  // ("upstream timed out after 3000 ms"); it never contains the URL, which may carry a key.
  std::string error{};
};

// Error codes whose value is a CURLcode, for failures with no closer system error.
const std::error_category& curl_category();

namespace detail {

class CurlMulti;

// A fetch's completion handler with its type erased (Asio 1.22 has no any_completion_handler).
class FetchCompletion {
 public:
  virtual ~FetchCompletion() = default;
  // Posts the handler to its associated executor; call at most once.
  virtual void post(std::error_code ec, HttpResponse response) = 0;
};

template <typename Handler>
class FetchCompletionFor final : public FetchCompletion {
 public:
  FetchCompletionFor(Handler handler, const asio::io_context::executor_type& fallback)
      : handler_(std::move(handler)), work_(asio::make_work_guard(handler_, fallback)) {}

  void post(std::error_code ec, HttpResponse response) override {
    auto executor = work_.get_executor();
    asio::post(executor, [handler = std::move(handler_), work = std::move(work_), ec,
                          response = std::move(response)]() mutable {
      // Our cancellation handler must not outlive the operation it cancels.
      asio::get_associated_cancellation_slot(handler).clear();
      std::move(handler)(ec, std::move(response));
    });
  }

 private:
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler, asio::io_context::executor_type>>
      work_;
};

}  // namespace detail

// HTTP(S) requests on one io_context through one curl multi handle, so connections and DNS
// answers are reused between requests. Curl runs on the client's own strand: async_fetch and
// shutdown may be called from any thread. The destructor cleans up synchronously, so destroy
// the client before its io_context and while no other thread runs that io_context (after the
// io threads have been joined, or from a handler when one thread runs it).
class HttpClient {
 public:
  using executor_type = asio::io_context::executor_type;

  // max_host_connections: CURLMOPT_MAX_HOST_CONNECTIONS, 0 for no limit.
  explicit HttpClient(asio::io_context& io, long max_host_connections = 0);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  executor_type get_executor() const noexcept { return executor_; }

  // Completion signature void(std::error_code, HttpResponse). The code is clear when the
  // transfer completed (any HTTP status); asio::error::operation_aborted after cancellation
  // (through the handler's cancellation slot) or shutdown; otherwise timed_out,
  // connection_refused, host_not_found, another system error, or a curl_category() code, with
  // response.error saying what happened in words.
  template <typename CompletionToken>
  auto async_fetch(HttpRequest request, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, HttpResponse)>(
        Initiation{this}, token, std::move(request));
  }

  // Aborts every transfer (their handlers complete with operation_aborted) and closes the
  // connections; later fetches complete with operation_aborted at once. Idempotent.
  void shutdown();

 private:
  struct Initiation {
    using executor_type = HttpClient::executor_type;
    executor_type get_executor() const noexcept { return client->executor_; }

    template <typename Handler>
    void operator()(Handler handler, HttpRequest request) const {
      asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
      client->start(std::move(request),
                    std::make_unique<detail::FetchCompletionFor<Handler>>(std::move(handler),
                                                                          client->executor_),
                    slot);
    }

    HttpClient* client;
  };

  void start(HttpRequest request, std::unique_ptr<detail::FetchCompletion> completion,
             asio::cancellation_slot slot);

  executor_type executor_;
  std::shared_ptr<detail::CurlMulti> multi_;
};

}  // namespace herd::places
