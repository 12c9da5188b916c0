#include "peer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <random>

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

#include "herd.hpp"
#include "line_buffer.hpp"
#include "protocol.hpp"

namespace herd {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto first_retry = 100ms;
constexpr auto last_retry = 2000ms;
constexpr auto handshake_timeout = 3s;
constexpr auto ack_timeout = 3s;
constexpr std::size_t catch_up_chunk = 64 * 1024;
constexpr std::size_t max_outbox = 64 * 1024 * 1024;

std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
  thread_local std::minstd_rand random{std::random_device{}()};
  std::uniform_int_distribution<long> spread(0, base.count() / 5);
  return base + std::chrono::milliseconds(spread(random));
}

// Notices a silently dead neighbor (power loss, partition) within about ten seconds.
void keep_alive(tcp::socket& socket) {
  asio::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  int idle = 5, interval = 2, count = 3;
  auto fd = socket.native_handle();
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

struct PeerLink::Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)), wake(socket.get_executor()) {}

  struct Unacked {
    std::shared_ptr<Propagation> propagation;
    std::chrono::steady_clock::time_point sent;
  };

  tcp::socket socket;
  std::string outbox, sending;
  Signal wake;
  std::map<std::uint64_t, Unacked> unacked;
  std::size_t catch_up_next = 0, catch_up_end = 0;
  bool closed = false;
};

PeerLink::PeerLink(Herd& herd, const ServerConfig& neighbor, bool dials)
    : herd_(herd),
      neighbor_(neighbor),
      who_("peer " + neighbor.name),
      dials_(dials),
      retry_(herd.strand()) {}

void PeerLink::start() {
  if (dials_) asio::co_spawn(herd_.strand(), dial(), asio::detached);
}

void PeerLink::stop() {
  stopped_ = true;
  retry_.cancel();
  if (connection_) close(*connection_, "server stopping");
}

void PeerLink::accept(tcp::socket socket, std::string buffered) {
  if (stopped_) return;
  herd_.log().event(who_, "connected to us");
  asio::co_spawn(herd_.strand(),
                 run(std::move(socket), std::move(buffered), "PEER " + herd_.name() + "\n"),
                 asio::detached);
}

void PeerLink::send(const Location& location, const std::shared_ptr<Propagation>& propagation) {
  if (!connection_) return;
  auto& c = *connection_;
  if (!propagation) return enqueue(c, location.at_line);
  auto id = next_id_++;
  c.unacked.emplace(id, Connection::Unacked{propagation, std::chrono::steady_clock::now()});
  enqueue(c, fmt::format("PUT {} {}", id, location.at_line));
}

awaitable<void> PeerLink::dial() {
  auto self = shared_from_this();
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto backoff = std::chrono::milliseconds(first_retry);
  auto where = fmt::format("{}:{}", neighbor_.host, neighbor_.port);
  while (!stopped_) {
    tcp::socket socket(executor);
    auto [resolve_error, endpoints] =
        co_await resolver.async_resolve(neighbor_.host, std::to_string(neighbor_.port), as_result);
    auto [error, endpoint] = resolve_error
                                 ? std::tuple(resolve_error, tcp::endpoint())
                                 : co_await asio::async_connect(socket, endpoints, as_result);
    if (stopped_) break;
    std::string buffered;
    if (error) {
      herd_.log().event(who_, fmt::format("cannot connect to {}: {}; retrying in {} ms", where,
                                          error.message(), backoff.count()));
    } else if (co_await handshake(socket, buffered)) {
      herd_.log().event(who_, fmt::format("connected to {}", where));
      backoff = first_retry;
      co_await run(std::move(socket), std::move(buffered), "");
    }
    if (stopped_) break;
    retry_.expires_after(jittered(backoff));
    co_await retry_.async_wait(as_result);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, last_retry);
  }
}

awaitable<bool> PeerLink::handshake(tcp::socket& socket, std::string& buffered) {
  std::string hello = "PEER " + herd_.name() + "\n";
  herd_.log().sent(who_, hello);
  auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(hello), as_result);
  if (write_error) {
    herd_.log().event(who_, "handshake failed: " + write_error.message());
    co_return false;
  }
  asio::steady_timer timeout(socket.get_executor(), handshake_timeout);
  auto answer =
      co_await (asio::async_read_until(socket, asio::dynamic_buffer(buffered, max_line_bytes), '\n',
                                       as_result) ||
                timeout.async_wait(as_result));
  if (answer.index() == 1) {
    herd_.log().event(who_, "no answer to the handshake within 3 s");
    co_return false;
  }
  auto [read_error, length] = std::get<0>(answer);
  if (read_error) {
    herd_.log().event(who_, "handshake failed: " + read_error.message());
    co_return false;
  }
  std::string_view line(buffered.data(), length - 1);
  herd_.log().received(who_, line);
  auto hello_back = parse_client_line(line);
  auto peer = std::get_if<PeerHello>(&hello_back);
  if (!peer || peer->server != neighbor_.name) {
    herd_.log().event(who_, "refused the link (does its herd.toml list us as a neighbor?)");
    co_return false;
  }
  buffered.erase(0, length);
  co_return true;
}

awaitable<void> PeerLink::run(tcp::socket socket, std::string buffered, std::string greeting) {
  auto self = shared_from_this();
  if (connection_) close(*connection_, "replaced by a new connection");
  keep_alive(socket);
  auto c = std::make_shared<Connection>(std::move(socket));
  connection_ = c;
  c->outbox = std::move(greeting);
  c->catch_up_end = herd_.store().size();
  herd_.log().event(who_, fmt::format("link up; sending {} records to catch up", c->catch_up_end));
  asio::co_spawn(herd_.strand(), writer(c), asio::detached);
  asio::co_spawn(herd_.strand(), watchdog(c), asio::detached);

  LineBuffer input;
  if (!buffered.empty()) {  // what came with the handshake
    std::memcpy(input.prepare(buffered.size()), buffered.data(), buffered.size());
    input.commit(buffered.size());
  }
  std::string why = "connection closed by the neighbor";
  while (!c->closed) {
    while (auto line = input.next_line()) handle(c, *line);
    if (input.rest().size() > max_line_bytes) {
      why = "line too long";
      break;
    }
    auto [error, n] = co_await c->socket.async_read_some(
        asio::buffer(input.prepare(64 * 1024), 64 * 1024), as_result);
    if (error) {
      if (error != asio::error::eof) why = error.message();
      break;
    }
    input.commit(n);
  }
  close(*c, why);
}

void PeerLink::handle(const std::shared_ptr<Connection>& c, std::string_view line) {
  herd_.log().received(who_, line);
  auto message = parse_peer_line(line);
  if (auto at = std::get_if<At>(&message)) {
    herd_.update(location_of(*at), this, nullptr);
  } else if (auto put = std::get_if<PeerPut>(&message)) {
    std::weak_ptr<Connection> from = c;
    auto propagation =
        std::make_shared<Propagation>([self = shared_from_this(), from, id = put->id] {
          if (auto c = from.lock(); c && !c->closed) self->enqueue(*c, fmt::format("ACK {}", id));
        });
    herd_.update(location_of(put->at), this, propagation);
  } else if (auto ack = std::get_if<PeerAck>(&message)) {
    c->unacked.erase(ack->id);
  } else {
    herd_.log().event(who_, "ignored a line that is not a peer message");
  }
}

awaitable<void> PeerLink::writer(std::shared_ptr<Connection> c) {
  while (!c->closed) {
    refill(*c);
    if (c->outbox.empty()) {
      co_await c->wake.wait();
      continue;
    }
    std::swap(c->outbox, c->sending);
    herd_.log().sent(who_, c->sending);
    auto [error, n] = co_await asio::async_write(c->socket, asio::buffer(c->sending), as_result);
    c->sending.clear();
    if (error) close(*c, error.message());
  }
}

// Sends the records the link did not see, a chunk at a time, so floods interleave with them.
void PeerLink::refill(Connection& c) {
  if (c.catch_up_next == c.catch_up_end || c.outbox.size() >= catch_up_chunk) return;
  const auto& store = herd_.store();
  while (c.catch_up_next < c.catch_up_end && c.outbox.size() < catch_up_chunk) {
    c.outbox.append(store.at(c.catch_up_next++).at_line).push_back('\n');
  }
  if (c.catch_up_next == c.catch_up_end)
    herd_.log().event(who_, fmt::format("catch-up sent: {} records", c.catch_up_end));
}

awaitable<void> PeerLink::watchdog(std::shared_ptr<Connection> c) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!c->closed) {
    timer.expires_after(500ms);
    co_await timer.async_wait(as_result);
    if (c->closed || c->unacked.empty()) continue;
    if (std::chrono::steady_clock::now() - c->unacked.begin()->second.sent > ack_timeout)
      close(*c, "no acknowledgement within 3 s");
  }
}

void PeerLink::enqueue(Connection& c, std::string_view line) {
  if (c.closed) return;
  if (c.outbox.size() > max_outbox)
    return close(c, "the neighbor is not reading; dropping the link");
  c.outbox.append(line).push_back('\n');
  c.wake.notify();
}

void PeerLink::close(Connection& c, std::string_view why) {
  if (c.closed) return;
  c.closed = true;
  herd_.log().event(who_, fmt::format("link down: {}", why));
  asio::error_code ignored;
  c.socket.shutdown(tcp::socket::shutdown_both, ignored);
  c.socket.close(ignored);
  c.wake.notify();
  std::shared_ptr<Connection> keep;
  if (connection_.get() == &c) keep = std::move(connection_);
  // Releasing the propagations may run their callbacks, which may enqueue on other links.
  auto unacked = std::move(c.unacked);
  unacked.clear();
}

}  // namespace herd
