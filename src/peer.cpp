#include "peer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

#include "link_traffic.hpp"
#include "protocol.hpp"

namespace herd {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto first_retry = 100ms;
constexpr auto last_retry = 2000ms;
constexpr auto handshake_timeout = 3s;
constexpr auto ack_timeout = 3s;
constexpr auto send_timeout = 10s;
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
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  int idle = 5, interval = 2, count = 3;
  auto fd = socket.native_handle();
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

// Appends "ACK a-b" lines for the ids, sorted and merged into ranges; returns how many.
std::size_t append_acks(std::vector<std::uint64_t>& ids, std::string& out) {
  std::sort(ids.begin(), ids.end());
  std::size_t lines = 0;
  for (std::size_t i = 0; i < ids.size(); ++lines) {
    auto j = i;
    while (j + 1 < ids.size() && ids[j + 1] <= ids[j] + 1) ++j;
    out.append(format_ack(ids[i], ids[j])).push_back('\n');
    i = j + 1;
  }
  ids.clear();
  return lines;
}

// The start of a line refused, for the log: enough to recognize it, never 64 KiB.
std::string excerpt(std::string_view line) {
  constexpr std::size_t shown = 100;
  return line.size() <= shown ? std::string(line)
                              : fmt::format("{}... ({} bytes)", line.substr(0, shown), line.size());
}

}  // namespace

// One connection of the link: what it reads goes to the link, what the link queues goes out.
class PeerLink::Live : public LineHandler {
 public:
  Live(PeerLink& link, tcp::socket socket, std::uint64_t owner)
      : link(link),
        connection(std::move(socket), *this, link.host_.peer_log(),
                   {link.who_, send_timeout, false, LogLevel::debug}),
        owner(owner),
        catch_up_end(link.host_.store().size()) {}

  // A line too long for a link is refused whole and the link goes on: closing it would only
  // bring the same line back with the next catch-up.
  void received(LineBuffer& input, Timestamp at, Input) override {
    auto& log = link.host_.peer_log();
    auto refused = input.refused();
    while (auto line = input.next_line(max_line_bytes)) {
      traffic.in.bytes += line->size() + 1;
      log.received(link.who_, *line, at, LogLevel::debug);
      link.handle(*this, *line, at);
    }
    if (auto skipped = input.refused() - refused) {
      traffic.refused += skipped;
      log.warning(
          link.who_,
          fmt::format("refused {} longer than {} bytes, whole; the link stays up",
                      skipped == 1 ? "a line" : fmt::format("{} lines", skipped), max_line_bytes));
    }
    link.host_.handled_batch();
  }

  // Sends the records the neighbor may not have, a chunk at a time, so that floods
  // interleave with them.
  void refill(std::string& outbox) override {
    if (catch_up_next == catch_up_end || outbox.size() >= catch_up_chunk) return;
    const auto& store = link.host_.store();
    auto before = outbox.size();
    auto first = catch_up_next;
    while (catch_up_next < catch_up_end && outbox.size() < catch_up_chunk)
      outbox.append(store.at(catch_up_next++).at_line).push_back('\n');
    traffic.out.records += catch_up_next - first;
    traffic.out.bytes += outbox.size() - before;
    catch_up_bytes += outbox.size() - before;
    if (catch_up_next == catch_up_end) {
      std::chrono::duration<double> took = LinkTraffic::Clock::now() - catch_up_started;
      link.host_.peer_log().event(
          link.who_, fmt::format("catch-up sent: {} records, {} bytes in {:.1f} s", catch_up_end,
                                 catch_up_bytes, took.count()));
    }
  }

  // Queues a line; a neighbor that lets 64 MiB pile up is not reading, and loses its link.
  std::string& outbox() {
    if (connection.unsent() > max_outbox)
      connection.close("the neighbor is not reading; dropping the link");
    return connection.outbox();
  }

  PeerLink& link;
  Connection<tcp::socket> connection;
  std::uint64_t owner;
  std::vector<std::uint64_t> to_acknowledge;
  std::size_t catch_up_next = 0, catch_up_end;
  std::uint64_t catch_up_bytes = 0;
  LinkTraffic::Clock::time_point catch_up_started = LinkTraffic::Clock::now();
  LinkTraffic traffic{LinkTraffic::Clock::now()};
};

PeerLink::PeerLink(PeerHost& host, const CoreStrand& strand, std::size_t number,
                   const ServerConfig& neighbor, bool dials)
    : host_(host),
      strand_(strand),
      number_(number),
      neighbor_(neighbor),
      who_("peer " + neighbor.name),
      dials_(dials),
      retry_(strand) {}

std::uint64_t PeerLink::owner() const {
  return live_ ? live_->owner : 0;
}

void PeerLink::start() {
  if (dials_) asio::co_spawn(strand_, dial(), asio::detached);
}

void PeerLink::stop() {
  stopped_ = true;
  retry_.cancel();
  if (!live_) return;
  report_traffic(*live_, true);  // the server may stop before the link's end is logged
  live_->connection.close("server stopping");
}

void PeerLink::accept(tcp::socket socket, std::string buffered) {
  if (stopped_) return;
  host_.peer_log().event(who_, "connected to us");
  asio::co_spawn(strand_,
                 run(std::move(socket), std::move(buffered), "PEER " + host_.server_name() + "\n"),
                 asio::detached);
}

void PeerLink::put(std::uint64_t id, const Location& record) {
  if (!live_) return;
  auto& out = live_->outbox();
  auto before = out.size();
  fmt::format_to(std::back_inserter(out), "PUT {} ", id);
  out.append(record.at_line).push_back('\n');
  ++live_->traffic.out.records;
  ++live_->traffic.out.puts;
  live_->traffic.out.bytes += out.size() - before;
}

void PeerLink::at(const Location& record) {
  if (!live_) return;
  live_->outbox().append(record.at_line).push_back('\n');
  ++live_->traffic.out.records;
  live_->traffic.out.bytes += record.at_line.size() + 1;
}

void PeerLink::confirm(std::uint64_t put_id) {
  if (live_) live_->to_acknowledge.push_back(put_id);
}

void PeerLink::flush() {
  if (!live_) return;
  if (!live_->to_acknowledge.empty()) {
    auto& out = live_->outbox();
    auto before = out.size();
    live_->traffic.out.acks += append_acks(live_->to_acknowledge, out);
    live_->traffic.out.bytes += out.size() - before;
  }
  live_->connection.flush();
}

void PeerLink::handle(Live& live, std::string_view line, Timestamp read_at) {
  auto message = parse_peer_line(line);
  auto put = std::get_if<PeerPut>(&message);
  auto at = put ? &put->at : std::get_if<At>(&message);
  if (at) {
    ++live.traffic.in.records;
    live.traffic.in.puts += put != nullptr;
    auto record = location_of(*at);
    std::optional<std::uint64_t> put_id;
    if (put) put_id = put->id;
    if (record.at_line.size() <= max_at_line_bytes) {
      live.traffic.changed += host_.received(*this, std::move(record), put_id, read_at);
      return;
    }
    // Stored, it could never be sent on: every catch-up that carried it would fail.
    ++live.traffic.refused;
    host_.peer_log().warning(who_, fmt::format("refused a record longer than {} bytes: {}",
                                               max_at_line_bytes, excerpt(line)));
    if (put_id) confirm(*put_id);  // the neighbor need not wait for what will never be stored
  } else if (auto ack = std::get_if<PeerAck>(&message)) {
    ++live.traffic.in.acks;
    host_.acknowledged(*this, ack->first, ack->last);
  } else {
    ++live.traffic.refused;
    host_.peer_log().warning(
        who_, fmt::format("ignored a line that is not a peer message: {}", excerpt(line)));
  }
}

awaitable<void> PeerLink::dial() {
  auto self = shared_from_this();
  tcp::resolver resolver(strand_);
  auto backoff = std::chrono::milliseconds(first_retry);
  auto where = fmt::format("{}:{}", neighbor_.host, neighbor_.port);
  while (!stopped_) {
    tcp::socket socket(strand_);
    auto [resolve_error, endpoints] =
        co_await resolver.async_resolve(neighbor_.host, std::to_string(neighbor_.port), as_result);
    auto [error, endpoint] = resolve_error
                                 ? std::tuple(resolve_error, tcp::endpoint())
                                 : co_await asio::async_connect(socket, endpoints, as_result);
    if (stopped_) break;
    std::string buffered;
    if (error) {
      host_.peer_log().warning(who_, fmt::format("cannot connect to {}: {}; retrying in {} ms",
                                                 where, error.message(), backoff.count()));
    } else if (co_await handshake(socket, buffered)) {
      host_.peer_log().event(who_, fmt::format("connected to {}", where));
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
  auto& log = host_.peer_log();
  std::string hello = "PEER " + host_.server_name() + "\n";
  log.sent(who_, hello);
  auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(hello), as_result);
  if (write_error) {
    log.warning(who_, "handshake failed: " + write_error.message());
    co_return false;
  }
  asio::steady_timer timeout(strand_, handshake_timeout);
  auto answer =
      co_await (asio::async_read_until(socket, asio::dynamic_buffer(buffered, max_line_bytes), '\n',
                                       as_result) ||
                timeout.async_wait(as_result));
  if (answer.index() == 1) {
    log.warning(who_, "no answer to the handshake within 3 s");
    co_return false;
  }
  auto [read_error, length] = std::get<0>(answer);
  if (read_error) {
    log.warning(who_, "handshake failed: " + read_error.message());
    co_return false;
  }
  std::string_view line(buffered.data(), length - 1);
  log.received(who_, line);
  auto hello_back = parse_client_line(line);
  auto peer = std::get_if<PeerHello>(&hello_back);
  if (!peer || peer->server != neighbor_.name) {
    log.warning(who_, "refused the link (does its herd.toml list us as a neighbor?)");
    co_return false;
  }
  buffered.erase(0, length);
  co_return true;
}

awaitable<void> PeerLink::run(tcp::socket socket, std::string buffered, std::string greeting) {
  auto self = shared_from_this();
  if (live_) {  // what was sent on it will not be acknowledged: the link starts afresh
    live_->connection.close("replaced by a new connection");
    host_.peer_log().warning(who_, "link down: replaced by a new connection");
    report_traffic(*live_, true);
    live_.reset();
    host_.link_down(*this);
  }
  keep_alive(socket);
  auto live = std::make_shared<Live>(*this, std::move(socket), host_.new_owner());
  live_ = live;
  host_.peer_log().event(
      who_, fmt::format("link up; sending {} records to catch up", live->catch_up_end));
  live->connection.outbox() = std::move(greeting);
  live->connection.preload(buffered);
  asio::co_spawn(strand_, watchdog(live), asio::detached);
  auto why = co_await live->connection.run();
  if (live_ != live) co_return;  // replaced, and logged then
  auto down = "link down: " + (why.empty() ? "closed by the neighbor" : why);
  if (stopped_)
    host_.peer_log().event(who_, down);
  else
    host_.peer_log().warning(who_, down);
  report_traffic(*live, true);
  live_.reset();
  host_.link_down(*this);
}

// A neighbor that acknowledges nothing for ack_timeout loses its link, and is redialed. Sums
// up the link's traffic in the log every few seconds.
awaitable<void> PeerLink::watchdog(std::shared_ptr<Live> live) {
  asio::steady_timer timer(strand_);
  while (!live->connection.closed()) {
    timer.expires_after(500ms);
    co_await timer.async_wait(as_result);
    if (live_ != live) break;
    auto oldest = host_.oldest_unacknowledged(*this);
    if (oldest && PeerHost::Clock::now() - *oldest > ack_timeout)
      live->connection.close("no acknowledgement within 3 s");
    report_traffic(*live, false);
  }
}

void PeerLink::report_traffic(Live& live, bool final) {
  if (auto summary = live.traffic.summary(LinkTraffic::Clock::now(), final))
    host_.peer_log().event(who_, *summary);
}

}  // namespace herd
