#include "places/http_client.hpp"

#include <fmt/core.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/host_name.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace herd::places {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using FetchResult = std::tuple<std::error_code, HttpResponse>;

constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(use_awaitable);

struct ReceivedRequest {
  int connection = 0;  // 1 for the first TCP connection accepted, 2 for the next...
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

ReceivedRequest parse_head(std::string_view head) {
  ReceivedRequest request;
  std::string_view line = head.substr(0, head.find("\r\n"));
  head.remove_prefix(line.size() + 2);
  request.method = line.substr(0, line.find(' '));
  request.target =
      line.substr(request.method.size() + 1, line.rfind(' ') - request.method.size() - 1);
  while (head.size() > 2) {
    std::string_view field = head.substr(0, head.find("\r\n"));
    head.remove_prefix(field.size() + 2);
    std::string name(field.substr(0, field.find(':')));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = field.substr(name.size() + 1);
    value.remove_prefix(std::min(value.find_first_not_of(' '), value.size()));
    request.headers[name] = value;
  }
  return request;
}

// A keep-alive HTTP/1.1 server on 127.0.0.1 and its own thread. It answers by target:
// /slow/... after 300 ms, /hang never, /status/503 with 503, /big with 64 KiB, anything else at
// once with "METHOD TARGET"; after answering /bye/... it closes the connection (as a server
// does whose keep-alive timeout is up).
class TestServer {
 public:
  TestServer() : port_(acceptor_.local_endpoint().port()) {
    asio::co_spawn(io_, accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  unsigned short port() const { return port_; }
  std::string url(std::string_view target) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, target);
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
  }

 private:
  awaitable<void> accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(as_tuple_awaitable);
      if (ec) co_return;
      std::lock_guard lock(mutex_);
      asio::co_spawn(io_, serve(std::move(socket), ++connections_), asio::detached);
    }
  }

  awaitable<void> serve(tcp::socket socket, int connection) {
    std::string buffer;
    for (;;) {
      auto [ec, head_size] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                             "\r\n\r\n", as_tuple_awaitable);
      if (ec) co_return;
      ReceivedRequest request = parse_head(std::string_view(buffer).substr(0, head_size));
      buffer.erase(0, head_size);
      request.connection = connection;
      std::size_t length = 0;
      if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
        length = std::stoul(it->second);
      }
      if (buffer.size() < length) {
        auto [body_ec, n] = co_await asio::async_read(
            socket, asio::dynamic_buffer(buffer), asio::transfer_exactly(length - buffer.size()),
            as_tuple_awaitable);
        if (body_ec) co_return;
      }
      request.body = buffer.substr(0, length);
      buffer.erase(0, length);
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
      }
      std::string reply = co_await answer(request);
      auto [write_ec, n] =
          co_await asio::async_write(socket, asio::buffer(reply), as_tuple_awaitable);
      if (write_ec || request.target.starts_with("/bye")) co_return;
    }
  }

  static awaitable<std::string> answer(const ReceivedRequest& request) {
    std::string_view target = request.target;
    asio::steady_timer delay(co_await asio::this_coro::executor);
    if (target.starts_with("/hang")) delay.expires_at(asio::steady_timer::time_point::max());
    if (target.starts_with("/slow")) delay.expires_after(300ms);
    co_await delay.async_wait(as_tuple_awaitable);

    std::string status = "200 OK";
    std::string body = fmt::format("{} {}", request.method, request.target);
    if (target == "/status/503") {
      status = "503 Service Unavailable";
      body = "unavailable";
    }
    if (target == "/big") body.assign(64 * 1024, 'x');
    co_return fmt::format("HTTP/1.1 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                          status, body.size(), body);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_{io_, {asio::ip::address_v4::loopback(), 0}};
  unsigned short port_;
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  int connections_ = 0;
  std::thread thread_;
};

// A URL nobody listens on.
std::string refused_url(std::string_view target) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  return fmt::format("http://127.0.0.1:{}{}", acceptor.local_endpoint().port(), target);
}

// A name for 127.0.0.1 that curl hands to its resolver thread, whose socketpair it reports too
// (it answers "localhost" itself): this machine's name when /etc/hosts maps it there.
std::string loopback_name() {
  asio::io_context io;
  tcp::resolver resolver(io);
  std::error_code ec;
  const std::string name = asio::ip::host_name(ec);
  for (const auto& entry : resolver.resolve(tcp::v4(), name, "", ec)) {
    if (entry.endpoint().address() == asio::ip::address_v4::loopback()) return name;
  }
  return "localhost";
}

// Runs `body` until it, and everything it started, has finished. Returns false if io still had
// work after 10 s: something hangs or leaks outstanding work.
bool run(asio::io_context& io, std::function<awaitable<void>()> body) {
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) { failure = e; });
  io.run_for(10s);
  if (failure) std::rethrow_exception(failure);
  return io.stopped();
}

// `request` must outlive the fetch (GCC 12 mishandles temporaries copied into coroutine
// parameters, so none are).
awaitable<void> fetch_into(HttpClient& client, const HttpRequest& request, FetchResult& result) {
  result = co_await client.async_fetch(request, as_tuple_awaitable);
}

std::size_t open_fds() {
  auto fds = std::filesystem::directory_iterator("/proc/self/fd");
  return static_cast<std::size_t>(std::distance(begin(fds), end(fds)));
}

// The descriptors open on epoll instances (Asio makes one for each io_context's reactor).
std::vector<int> epoll_fds() {
  std::vector<int> fds;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(entry.path(), ec) == "anon_inode:[eventpoll]") {
      fds.push_back(std::stoi(entry.path().filename().string()));
    }
  }
  return fds;
}

// The socket registered with the epoll instance `epoll_fd` that is connected to `port` on
// this host, or -1 (read from /proc/self/fdinfo, which lists what an epoll instance watches).
int registered_connection(int epoll_fd, unsigned short port) {
  std::ifstream info(fmt::format("/proc/self/fdinfo/{}", epoll_fd));
  for (std::string word; info >> word;) {
    if (word != "tfd:") continue;
    int fd = -1;
    info >> fd;
    sockaddr_in peer{};
    socklen_t size = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &size) == 0 &&
        peer.sin_family == AF_INET && ntohs(peer.sin_port) == port) {
      return fd;
    }
  }
  return -1;
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

TEST_CASE("a GET arrives with its headers and returns the reply", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  FetchResult result;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    HttpRequest request{.url = server.url("/places?q=cafe"), .headers = {"X-Herd: yes"}};
    result = co_await client.async_fetch(request, as_tuple_awaitable);
  }));

  auto& [ec, response] = result;
  CHECK_FALSE(ec);
  CHECK(response.status == 200);
  CHECK(response.body == "GET /places?q=cafe");
  CHECK(response.error.empty());
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "GET");
  CHECK(requests[0].headers["x-herd"] == "yes");
  CHECK(requests[0].body.empty());
}

TEST_CASE("a POST arrives with its headers and body", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  const std::string body = R"({"q":"café","near":[48.85,2.35]})";
  HttpResponse response;
  const HttpRequest request{.method = "POST",
                            .url = server.url("/search"),
                            .headers = {"Content-Type: application/json", "X-Api-Key: k1"},
                            .body = body};
  REQUIRE(run(io, [&]() -> awaitable<void> {
    response = co_await client.async_fetch(request, use_awaitable);
  }));

  CHECK(response.status == 200);
  CHECK(response.body == "POST /search");
  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].body == body);
  CHECK(requests[0].headers["content-type"] == "application/json");
  CHECK(requests[0].headers["x-api-key"] == "k1");
  CHECK(requests[0].headers.count("expect") == 0);
}

TEST_CASE("a host name goes through curl's resolver", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  const std::string name = loopback_name();
  std::vector<long> statuses;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      HttpRequest request{.url = server.url("/named")};
      request.url.replace(request.url.find("127.0.0.1"), 9, name);
      auto [ec, response] = co_await client.async_fetch(request, as_tuple_awaitable);
      statuses.push_back(response.status);
    }
  }));

  CHECK(statuses == std::vector<long>(3, 200));
  CHECK(server.connections() == 1);
}

TEST_CASE("a 503 is a completed transfer and not an error", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  FetchResult result;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    HttpRequest request{.url = server.url("/status/503")};
    result = co_await client.async_fetch(request, as_tuple_awaitable);
  }));

  auto& [ec, response] = result;
  CHECK_FALSE(ec);
  CHECK(response.status == 503);
  CHECK(response.body == "unavailable");
  CHECK(response.error.empty());
}

TEST_CASE("twenty parallel fetches all complete", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  std::vector<FetchResult> results(20);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(run(io, [&]() -> awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (std::size_t i = 0; i < results.size(); ++i) {
      asio::co_spawn(
          executor,
          [&, i]() -> awaitable<void> {
            HttpRequest request{.url = server.url(fmt::format("/slow/{}", i))};
            results[i] = co_await client.async_fetch(request, as_tuple_awaitable);
          },
          asio::detached);
    }
    co_return;
  }));

  CHECK(since(start) < 3000ms);  // one after the other would take 6 s
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto& [ec, response] = results[i];
    CHECK_FALSE(ec);
    CHECK(response.status == 200);
    CHECK(response.body == fmt::format("GET /slow/{}", i));
  }
  CHECK(server.requests().size() == 20);
}

TEST_CASE("sequential requests reuse one connection", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  std::vector<long> statuses;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      HttpRequest request{.url = server.url(fmt::format("/again/{}", i))};
      auto [ec, response] = co_await client.async_fetch(request, as_tuple_awaitable);
      statuses.push_back(response.status);
    }
  }));

  CHECK(statuses == std::vector<long>(5, 200));
  CHECK(server.connections() == 1);
  for (const ReceivedRequest& request : server.requests()) CHECK(request.connection == 1);
}

TEST_CASE("a kept connection stays registered with the reactor while it idles", "[http]") {
  TestServer server;
  const std::vector<int> before = epoll_fds();
  asio::io_context io;
  HttpClient client(io);  // its timer brings up the io_context's reactor
  std::vector<int> ours;
  for (int fd : epoll_fds()) {
    if (std::find(before.begin(), before.end(), fd) == before.end()) ours.push_back(fd);
  }
  REQUIRE(ours.size() == 1);

  std::vector<int> registered;  // the connection's socket, after each fetch
  REQUIRE(run(io, [&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      HttpRequest request{.url = server.url(fmt::format("/idle/{}", i))};
      auto [ec, response] = co_await client.async_fetch(request, as_tuple_awaitable);
      registered.push_back(response.status == 200 ? registered_connection(ours[0], server.port())
                                                  : -2);
    }
  }));

  CHECK(server.connections() == 1);
  CHECK(registered[0] >= 0);  // curl has said REMOVE: the socket is parked, not released
  CHECK(registered == std::vector<int>(3, registered[0]));
}

TEST_CASE("a kept connection that the server closed while idle is replaced", "[http]") {
  {
    asio::io_context warm_up;  // curl's global state opens what it keeps for the process
    HttpClient client(warm_up);
  }
  const std::size_t fds_before = open_fds();
  std::vector<long> statuses;
  {
    TestServer server;
    asio::io_context io;
    HttpClient client(io);
    REQUIRE(run(io, [&]() -> awaitable<void> {
      asio::steady_timer pause(co_await asio::this_coro::executor);
      for (int i = 0; i < 4; ++i) {
        HttpRequest request{.url = server.url(fmt::format("/bye/{}", i))};
        auto [ec, response] = co_await client.async_fetch(request, as_tuple_awaitable);
        statuses.push_back(response.status);
        pause.expires_after(50ms);  // the server's FIN arrives while curl keeps the connection
        co_await pause.async_wait(as_tuple_awaitable);
      }
    }));
    CHECK(server.connections() == 4);
  }
  CHECK(statuses == std::vector<long>(4, 200));
  CHECK(open_fds() == fds_before);
}

TEST_CASE("the request timeout ends a hanging fetch", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  FetchResult result;
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(run(io, [&]() -> awaitable<void> {
    HttpRequest request{.url = server.url("/hang?key=SECRET"), .timeout = 200ms};
    result = co_await client.async_fetch(request, as_tuple_awaitable);
  }));

  auto& [ec, response] = result;
  CHECK(ec == asio::error::timed_out);
  CHECK(response.error == "upstream timed out after 200 ms");
  CHECK(since(start) >= 190ms);
  CHECK(since(start) < 5000ms);  // not left hanging
}

TEST_CASE("a timeout still fires after curl moves its timeout later", "[http]") {
  // curl keeps one timeout for all transfers, the earliest. While /slow (answered at 300 ms)
  // runs, that is its own deadline (400 ms); once it is answered, the timeout moves later, to
  // the hanging request's (700 ms). The client's timer, armed for the first, fires early and
  // must wait on for the second.
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  FetchResult slow, hang;
  const auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds elapsed{};
  REQUIRE(run(io, [&]() -> awaitable<void> {
    const HttpRequest slow_request{.url = server.url("/slow/1"), .timeout = 400ms};
    const HttpRequest hang_request{.url = server.url("/hang"), .timeout = 700ms};
    co_await (fetch_into(client, slow_request, slow) && fetch_into(client, hang_request, hang));
    elapsed = since(start);
  }));

  CHECK(std::get<0>(slow) == std::error_code{});
  CHECK(std::get<1>(slow).status == 200);
  CHECK(std::get<0>(hang) == asio::error::timed_out);
  CHECK(std::get<1>(hang).error == "upstream timed out after 700 ms");
  CHECK(elapsed >= 690ms);
}

TEST_CASE("a connect timeout says so", "[http]") {
  // A listener whose accept queue is full: the kernel drops further SYNs.
  asio::io_context io;
  tcp::acceptor full(io, tcp::v4());
  full.bind({asio::ip::address_v4::loopback(), 0});
  full.listen(0);
  std::vector<tcp::socket> queued;
  for (int i = 0; i < 4; ++i) {
    queued.emplace_back(io).async_connect(full.local_endpoint(), [](std::error_code) {});
  }
  HttpClient client(io);
  FetchResult result;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    HttpRequest request{.url = fmt::format("http://127.0.0.1:{}/", full.local_endpoint().port()),
                        .timeout = 2s,
                        .connect_timeout = 200ms};
    result = co_await client.async_fetch(request, as_tuple_awaitable);
    queued.clear();
  }));

  auto& [ec, response] = result;
  CHECK(ec == asio::error::timed_out);
  CHECK(response.error == "connecting to upstream timed out after 200 ms");
}

TEST_CASE("fetch || timer completes when the timer wins", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  const HttpRequest hang{.url = server.url("/hang"), .timeout = 10s};
  std::size_t throwing_winner = 0;
  std::size_t tuple_winner = 0;
  std::chrono::milliseconds elapsed{};
  FetchResult after;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
    auto throwing =
        co_await (client.async_fetch(hang, use_awaitable) || timer.async_wait(use_awaitable));
    throwing_winner = throwing.index();

    timer.expires_after(100ms);
    auto tuple =
        co_await (client.async_fetch(hang, as_tuple_awaitable) || timer.async_wait(use_awaitable));
    tuple_winner = tuple.index();
    elapsed = since(start);

    HttpRequest request{.url = server.url("/after")};
    after = co_await client.async_fetch(request, as_tuple_awaitable);
  }));

  CHECK(throwing_winner == 1);
  CHECK(tuple_winner == 1);
  CHECK(elapsed < 5000ms);  // the hanging fetch lasts 10 s unless cancelled
  CHECK_FALSE(std::get<0>(after));
  CHECK(std::get<1>(after).body == "GET /after");
}

TEST_CASE("a cancellation slot aborts a plain callback fetch", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  asio::cancellation_signal cancel;
  std::optional<FetchResult> result;
  client.async_fetch(
      HttpRequest{.url = server.url("/hang"), .timeout = 10s},
      asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec, HttpResponse r) {
        result.emplace(ec, std::move(r));
      }));
  asio::steady_timer timer(io, 50ms);
  timer.async_wait([&](std::error_code) { cancel.emit(asio::cancellation_type::terminal); });
  io.run_for(5s);

  REQUIRE(io.stopped());
  REQUIRE(result);
  CHECK(std::get<0>(*result) == asio::error::operation_aborted);
  CHECK(std::get<1>(*result).error == "request cancelled");
}

TEST_CASE("a closed port gives a clear error without the URL", "[http]") {
  asio::io_context io;
  HttpClient client(io);
  FetchResult result;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    HttpRequest request{.url = refused_url("/places?key=SECRET")};
    result = co_await client.async_fetch(request, as_tuple_awaitable);
  }));

  auto& [ec, response] = result;
  CHECK(ec == asio::error::connection_refused);
  CHECK(response.error == "connection refused by upstream");
  CHECK(response.status == 0);
}

TEST_CASE("a response over max_body_bytes fails the fetch", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  FetchResult big;
  FetchResult after;
  REQUIRE(run(io, [&]() -> awaitable<void> {
    HttpRequest capped{.url = server.url("/big"), .max_body_bytes = 1024};
    big = co_await client.async_fetch(capped, as_tuple_awaitable);
    HttpRequest uncapped{.url = server.url("/big")};
    after = co_await client.async_fetch(uncapped, as_tuple_awaitable);
  }));

  CHECK(std::get<0>(big));
  CHECK(std::get<1>(big).error == "upstream response larger than 1024 bytes");
  CHECK_FALSE(std::get<0>(after));
  CHECK(std::get<1>(after).body.size() == 64 * 1024);
}

TEST_CASE("shutdown aborts transfers in flight and later fetches", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io);
  std::vector<FetchResult> in_flight(3);
  FetchResult later;
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(run(io, [&]() -> awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (FetchResult& result : in_flight) {
      asio::co_spawn(
          executor,
          [&]() -> awaitable<void> {
            HttpRequest request{.url = server.url("/hang"), .timeout = 10s};
            result = co_await client.async_fetch(request, as_tuple_awaitable);
          },
          asio::detached);
    }
    asio::steady_timer timer(executor, 100ms);
    co_await timer.async_wait(use_awaitable);
    client.shutdown();
    client.shutdown();
    HttpRequest request{.url = server.url("/later")};
    later = co_await client.async_fetch(request, as_tuple_awaitable);
  }));

  CHECK(since(start) < 5000ms);  // the hanging fetches last 10 s unless aborted
  for (auto& [ec, response] : in_flight) {
    CHECK(ec == asio::error::operation_aborted);
    CHECK(response.error == "HTTP client is shut down");
  }
  CHECK(std::get<0>(later) == asio::error::operation_aborted);
  CHECK(server.requests().size() == 3);
}

TEST_CASE("destroying the client aborts transfers in flight and closes every socket", "[http]") {
  {
    asio::io_context warm_up;  // curl's global state opens what it keeps for the process
    HttpClient client(warm_up);
  }
  const std::size_t fds_before = open_fds();
  {
    TestServer server;
    asio::io_context io;
    auto client = std::make_unique<HttpClient>(io);
    std::vector<FetchResult> in_flight(3);
    REQUIRE(run(io, [&]() -> awaitable<void> {
      auto executor = co_await asio::this_coro::executor;
      for (FetchResult& result : in_flight) {
        asio::co_spawn(
            executor,
            [&]() -> awaitable<void> {
              HttpRequest request{.url = server.url("/hang"), .timeout = 10s};
              result = co_await client->async_fetch(request, as_tuple_awaitable);
            },
            asio::detached);
      }
      asio::steady_timer timer(executor, 100ms);
      co_await timer.async_wait(use_awaitable);
      client.reset();
    }));

    for (auto& [ec, response] : in_flight) CHECK(ec == asio::error::operation_aborted);
  }
  CHECK(open_fds() == fds_before);
}

TEST_CASE("fetches from coroutines on two io threads", "[http]") {
  TestServer server;
  asio::io_context io;
  HttpClient client(io, 4);
  std::atomic<int> completed{0};
  std::atomic<int> timer_won{0};
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(
        asio::make_strand(io),
        [&, i]() -> awaitable<void> {
          if (i % 5 == 4) {
            asio::steady_timer timer(co_await asio::this_coro::executor, 50ms);
            HttpRequest request{.url = server.url("/hang"), .timeout = 10s};
            auto winner = co_await (client.async_fetch(request, as_tuple_awaitable) ||
                                    timer.async_wait(use_awaitable));
            if (winner.index() == 1) ++timer_won;
          } else {
            HttpRequest request{.url = server.url(fmt::format("/slow/{}", i))};
            auto [ec, response] = co_await client.async_fetch(request, as_tuple_awaitable);
            if (!ec && response.body == fmt::format("GET /slow/{}", i)) ++completed;
          }
        },
        asio::detached);
  }
  std::thread other([&] { io.run_for(10s); });
  io.run_for(10s);
  other.join();

  CHECK(io.stopped());
  CHECK(completed == 16);
  CHECK(timer_won == 4);
}

}  // namespace
}  // namespace herd::places
