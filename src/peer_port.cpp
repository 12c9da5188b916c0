#include "peer_port.hpp"

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

#include "protocol.hpp"
#include "server.hpp"  // listen_on

namespace herd {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto handshake_timeout = 3s;
constexpr std::size_t max_hello_bytes = 256;  // "PEER " and a server name
constexpr int max_greeting = 64;             // handshakes in progress at once; more are refused

}  // namespace

PeerPort::PeerPort(Herd& herd, const ServerConfig& self, asio::ssl::context* tls)
    : herd_(herd), self_(self), tls_(tls), acceptor_(herd.strand()) {}

void PeerPort::listen() {
  listen_on(acceptor_, self_.listen, self_.peer_port);
}

void PeerPort::start() {
  asio::co_spawn(herd_.strand(), accept(), asio::detached);
}

void PeerPort::stop() {
  asio::post(herd_.strand(), [this] {
    asio::error_code ignored;
    acceptor_.close(ignored);
  });
}

awaitable<void> PeerPort::accept() {
  while (acceptor_.is_open()) {
    auto [error, socket] = co_await acceptor_.async_accept(as_result);
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (error) {  // out of descriptors, say
      herd_.log().event("peer port", "accept failed: " + error.message());
      asio::steady_timer pause(herd_.strand(), 100ms);
      co_await pause.async_wait(as_result);
      continue;
    }
    if (greeting_ >= max_greeting) {
      refuse(remote_address(socket), "too many handshakes in progress");
      continue;
    }
    asio::co_spawn(herd_.strand(), greet(std::move(socket)), asio::detached);
  }
}

awaitable<void> PeerPort::greet(tcp::socket socket) {
  ++greeting_;
  struct Done {
    int& count;
    ~Done() { --count; }
  } done{greeting_};
  auto from = remote_address(socket);
  asio::steady_timer deadline(herd_.strand(), handshake_timeout);
  std::string buffered;
  if (!tls_) {
    auto name = co_await read_hello(socket, buffered, deadline, from);
    if (!name) co_return;
    co_await herd_.until_loaded();
    herd_.attach_peer(*name, std::move(socket), std::move(buffered));
    co_return;
  }
  TlsStream stream(std::move(socket), *tls_);
  VerifyReport report;
  report.watch(stream);
  auto shaken = co_await (stream.async_handshake(asio::ssl::stream_base::server, as_result) ||
                          deadline.async_wait(as_result));
  if (shaken.index() == 1) co_return refuse(from, "no TLS handshake within 3 s");
  if (auto [error] = std::get<0>(shaken); error)
    co_return refuse(from, handshake_failure(report, error));
  auto name = co_await read_hello(stream, buffered, deadline, from);
  if (!name) co_return;
  if (!certificate_names(SSL_get0_peer_certificate(stream.native_handle()), *name))
    co_return refuse(from, fmt::format("it says it is {}, but its certificate does not name {}",
                                       *name, *name));
  co_await herd_.until_loaded();
  herd_.attach_peer(*name, std::move(stream), std::move(buffered));
}

// Reads "PEER <name>" and checks that the name is a neighbor's; refuses otherwise.
template <typename Stream>
awaitable<std::optional<std::string>> PeerPort::read_hello(Stream& stream, std::string& buffered,
                                                           asio::steady_timer& deadline,
                                                           const std::string& from) {
  auto read = co_await (asio::async_read_until(
                            stream, asio::dynamic_buffer(buffered, max_hello_bytes), '\n',
                            as_result) ||
                        deadline.async_wait(as_result));
  if (read.index() == 1) {
    refuse(from, "no PEER line within 3 s");
    co_return std::nullopt;
  }
  auto [error, length] = std::get<0>(read);
  if (error == asio::error::not_found) {
    refuse(from, fmt::format("its first line is longer than {} bytes", max_hello_bytes));
    co_return std::nullopt;
  }
  if (error) {
    refuse(from, "closed before its PEER line: " + error.message());
    co_return std::nullopt;
  }
  std::string_view line(buffered.data(), length - 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto name = parse_peer_hello(line);
  if (!name) {
    std::string shown;
    append_escaped(shown, line.substr(0, 64));
    refuse(from, fmt::format("its first line is not \"PEER <server>\": \"{}\"", shown));
    co_return std::nullopt;
  }
  if (!herd_.is_neighbor(*name)) {
    std::string shown;
    append_escaped(shown, *name);
    refuse(from, fmt::format("it says it is {}, which is not a neighbor of {}", shown,
                             self_.name));
    co_return std::nullopt;
  }
  std::string server(*name);
  buffered.erase(0, length);
  co_return server;
}

void PeerPort::refuse(const std::string& from, std::string_view why) {
  refusals_.refused(herd_.log(), from, why);
}

}  // namespace herd
