#include "peer.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <array>
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
void keep_alive(tcp::socket::lowest_layer_type& socket) {
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
// The connection is plaintext or TLS; everything else is the same.
class PeerLink::Live : public LineHandler {
 public:
  template <typename Stream>
  Live(PeerLink& link, Stream stream, std::uint64_t owner)
      : link(link),
        connection(std::move(stream), *this, link.host_.peer_log(),
                   ConnectionOptions{link.who_, send_timeout, false, LogLevel::debug}),
        owner(owner),
        up_changes(link.host_.store().changes()),
        catch_up_end(link.host_.store().size()) {}

  // A line too long for a link is refused whole and the link goes on: closing it would only
  // bring the same line back with the next catch-up.
  void received(LineBuffer& input, Timestamp at, Input) override {
    auto& log = link.host_.peer_log();
    auto refused = input.refused();
    while (auto line = input.next_line(max_line_bytes)) {
      traffic.in.bytes += line->size() + 1;
      if (!synced_in) catch_up_in.bytes += line->size() + 1;
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

  // The neighbor said what it holds: the catch-up sends the records changed since, of those
  // this server held when the link came up. What changed later went out live on the link.
  void start_catch_up(PeerSince since) {
    const auto& store = link.host_.store();
    send_after = catch_up_after_since(since);
    catch_up_started = LinkTraffic::Clock::now();
    sending_catch_up = true;
    link.host_.peer_log().event(
        link.who_,
        send_after == 0
            ? fmt::format("catch-up: sending all {} records (it said {})", catch_up_end,
                          format_since(since))
            : fmt::format("catch-up: sending the records changed after {} of {} (it said {})",
                          send_after, store.changes(), format_since(since)));
    connection.wake_writer();  // which refills: a chunk at a time, as the socket takes them
  }

  std::uint64_t catch_up_after_since(PeerSince since) const {
    return catch_up_after(since, link.host_.epoch(), link.host_.store().changes());
  }

  // Sends the records the neighbor may not have, a chunk at a time, so that floods
  // interleave with them; then SYNCED.
  void refill(std::string& outbox) override {
    if (!sending_catch_up || outbox.size() >= catch_up_chunk) return;
    const auto& store = link.host_.store();
    auto before = outbox.size();
    std::uint64_t records = 0;
    while (catch_up_next < catch_up_end && outbox.size() < catch_up_chunk) {
      const auto& record = store.at(catch_up_next++);
      if (record.changed <= send_after || record.changed > up_changes) continue;
      outbox.append(record.at_line).push_back('\n');
      ++records;
    }
    auto bytes = outbox.size() - before;
    traffic.out.records += records;
    traffic.out.bytes += bytes;
    catch_up_out.records += records;
    catch_up_out.bytes += bytes;
    link.catch_up_totals_.records_sent += records;
    link.catch_up_totals_.bytes_sent += bytes;
    if (catch_up_next < catch_up_end) return;
    sending_catch_up = false;
    send_synced(outbox);
    std::chrono::duration<double> took = LinkTraffic::Clock::now() - catch_up_started;
    link.host_.peer_log().event(
        link.who_, fmt::format("catch-up sent: {} records, {} bytes in {:.1f} s",
                               catch_up_out.records, catch_up_out.bytes, took.count()));
  }

  // Every change this server numbered so far has been queued on the link, or came from it.
  void send_synced(std::string& outbox) {
    synced_out = link.host_.store().changes();
    auto before = outbox.size();
    outbox.append(format_synced({link.host_.epoch(), synced_out})).push_back('\n');
    traffic.out.bytes += outbox.size() - before;
  }

  // After the catch-up, a SYNCED whenever changes went out since the last one.
  void send_synced_if_changed() {
    if (!caught_up_out() || link.host_.store().changes() == synced_out) return;
    send_synced(outbox());
    connection.flush();
  }

  bool caught_up_out() const { return asked && !sending_catch_up; }

  // Queues a line; a neighbor that lets 64 MiB pile up is not reading, and loses its link.
  std::string& outbox() {
    if (connection.unsent() > max_outbox)
      connection.close("the neighbor is not reading; dropping the link");
    return connection.outbox();
  }

  struct Count {
    std::uint64_t records = 0, changed = 0, bytes = 0;
  };

  PeerLink& link;
  AnyConnection connection;
  std::uint64_t owner;
  std::vector<std::uint64_t> to_acknowledge;
  // Sending: what the store held when the link came up, and what the neighbor has of it.
  std::uint64_t up_changes;
  std::chrono::steady_clock::time_point up_since = std::chrono::steady_clock::now();
  std::size_t catch_up_next = 0, catch_up_end;
  std::uint64_t send_after = 0;  // the number its SINCE holds, or 0: everything
  bool asked = false;             // its SINCE came
  bool sending_catch_up = false;  // between its SINCE and our first SYNCED
  std::uint64_t synced_out = 0;   // the last SYNCED sent
  Count catch_up_out;
  LinkTraffic::Clock::time_point catch_up_started = LinkTraffic::Clock::now();
  // Receiving: the neighbor's catch-up, until its first SYNCED.
  bool synced_in = false;
  Count catch_up_in;
  LinkTraffic::Clock::time_point up_at = LinkTraffic::Clock::now();
  LinkTraffic traffic{LinkTraffic::Clock::now()};
};

PeerLink::PeerLink(PeerHost& host, const CoreStrand& strand, std::size_t number,
                   const ServerConfig& neighbor, bool redials)
    : host_(host),
      strand_(strand),
      number_(number),
      neighbor_(neighbor),
      who_("peer " + neighbor.name),
      where_(address_text(neighbor.host, neighbor.peer_port)),
      redials_(redials),
      retry_(strand),
      went_down_(strand) {}

std::uint64_t PeerLink::owner() const {
  return live_ ? live_->owner : 0;
}

void PeerLink::start() {
  asio::co_spawn(strand_, dial(), asio::detached);
}

void PeerLink::stop(std::string_view why) {
  stopped_ = true;
  retry_.cancel();
  went_down_.notify();
  if (!live_) return;
  report_traffic(*live_, true);  // the server may stop before the link's end is logged
  live_->connection.close(why);
}

void PeerLink::accept(tcp::socket socket, std::string buffered) {
  if (stopped_ || refuses(remote_address(socket), false)) return;
  host_.peer_log().event(who_, fmt::format("connected to us from {}", remote_address(socket)));
  asio::co_spawn(strand_,
                 run(std::move(socket), std::move(buffered), "PEER " + host_.server_name() + "\n"),
                 asio::detached);
}

void PeerLink::accept(TlsStream stream, std::string buffered) {
  auto from = remote_address(stream.next_layer());
  if (stopped_ || refuses(from, true)) return;
  host_.peer_log().event(who_, fmt::format("connected to us from {} (TLS)", from));
  asio::co_spawn(strand_,
                 run(std::move(stream), std::move(buffered), "PEER " + host_.server_name() + "\n"),
                 asio::detached);
}

// Within the handshake's 3 s of the link coming up, a connection from the neighbor is its own
// dial crossing ours: each side keeps the connection that is up and refuses the other, so the
// link does not go down and up (the neighbor sees its dial closed while its link is up). Later,
// a TLS connection replaces the link: the neighbor has proven who it is, and has restarted
// while the old connection still looks alive. A plaintext one cannot: anybody could have sent
// its handshake.
bool PeerLink::refuses(const std::string& from, bool tls) {
  if (!live_) return false;
  auto refused = fmt::format("refused a {} connection from {} saying it is {}: ",
                             tls ? "TLS" : "plaintext", from, neighbor_.name);
  if (std::chrono::steady_clock::now() - live_->up_since < handshake_timeout) {
    host_.peer_log().event(who_, refused + "the link came up less than 3 s ago (our dials crossed)");
    return true;
  }
  if (tls) return false;
  host_.peer_log().warning(who_,
                           refused + "the link is up, and a plaintext handshake cannot replace it");
  return true;
}

void PeerLink::put(std::uint64_t id, const Record& record) {
  if (!live_) return;
  auto& out = live_->outbox();
  auto before = out.size();
  fmt::format_to(std::back_inserter(out), "PUT {} ", id);
  out.append(record.at_line).push_back('\n');
  ++live_->traffic.out.records;
  ++live_->traffic.out.puts;
  live_->traffic.out.bytes += out.size() - before;
}

void PeerLink::at(const Record& record) {
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

bool PeerLink::catching_up() const {
  return live_ && !live_->synced_in;
}

void PeerLink::handle(Live& live, std::string_view line, Timestamp read_at) {
  auto message = parse_peer_line(line);
  if (std::holds_alternative<At>(message) || std::holds_alternative<PeerPut>(message)) {
    handle_record(live, message, line, read_at);
  } else if (auto ack = std::get_if<PeerAck>(&message)) {
    ++live.traffic.in.acks;
    host_.acknowledged(*this, ack->first, ack->last);
  } else if (auto since = std::get_if<PeerSince>(&message); since && !live.asked) {
    live.asked = true;
    live.start_catch_up(*since);
  } else if (auto marker = std::get_if<PeerSynced>(&message)) {
    synced(live, *marker);
  } else {
    ++live.traffic.refused;
    host_.peer_log().warning(
        who_, fmt::format("ignored a line that is not a peer message{}: {}",
                          std::holds_alternative<PeerSince>(message) ? " here (a second SINCE)" : "",
                          excerpt(line)));
  }
}

void PeerLink::handle_record(Live& live, const PeerMessage& message, std::string_view line,
                             Timestamp read_at) {
  auto put = std::get_if<PeerPut>(&message);
  auto at = put ? &put->at : std::get_if<At>(&message);
  ++live.traffic.in.records;
  live.traffic.in.puts += put != nullptr;
  if (!live.synced_in) ++live.catch_up_in.records;
  auto record = location_of(*at);
  std::optional<std::uint64_t> put_id;
  if (put) put_id = put->id;
  if (record.at_line.size() <= max_at_line_bytes) {
    bool changed = host_.received(*this, std::move(record), put_id, read_at);
    live.traffic.changed += changed;
    if (!live.synced_in) live.catch_up_in.changed += changed;
    return;
  }
  // Stored, it could never be sent on: every catch-up that carried it would fail.
  ++live.traffic.refused;
  host_.peer_log().warning(who_, fmt::format("refused a record longer than {} bytes: {}",
                                             max_at_line_bytes, excerpt(line)));
  if (put_id) confirm(*put_id);  // the neighbor need not wait for what will never be stored
}

// Everything the neighbor sent before the marker is handled: its changes up to the marker's
// number are here, which the next SINCE on a new connection says.
void PeerLink::synced(Live& live, PeerSynced marker) {
  if (!live.synced_in) {
    live.synced_in = true;  // before the herd hears of it: WHATSATs held for it may go on
    catch_up_totals_.records_received += live.catch_up_in.records;
    catch_up_totals_.bytes_received += live.catch_up_in.bytes;
    std::chrono::duration<double> took = LinkTraffic::Clock::now() - live.up_at;
    host_.peer_log().event(
        who_,
        fmt::format("catch-up received: {} records ({} changed the store), {} bytes in {:.1f} s",
                    live.catch_up_in.records, live.catch_up_in.changed, live.catch_up_in.bytes,
                    took.count()));
  }
  host_.synced(*this, marker);
}

// The redialing side dials while the link is down, backing off from 100 ms to 2 s, and each
// attempt to connect may take as long as the backoff at most: a neighbor that a partition
// hid is found again within the backoff of the partition's end. The other side dials once.
awaitable<void> PeerLink::dial() {
  auto self = shared_from_this();
  auto backoff = std::chrono::milliseconds(first_retry);
  while (!stopped_) {
    if (live_) {  // up by a connection the neighbor made
      co_await went_down_.wait();
      continue;
    }
    bool came_up = co_await dial_once(redials_ ? backoff : last_retry);
    if (stopped_ || !redials_) break;
    backoff = came_up ? first_retry : backoff;
    if (!came_up)
      host_.peer_log().sent(who_, fmt::format("(retrying in {} ms)", backoff.count()),
                            LogLevel::debug);
    retry_.expires_after(jittered(backoff));
    co_await retry_.async_wait(as_result);
    if (!came_up) backoff = std::min<std::chrono::milliseconds>(backoff * 2, last_retry);
  }
}

awaitable<bool> PeerLink::dial_once(std::chrono::milliseconds connect_timeout) {
  auto& log = host_.peer_log();
  tcp::resolver resolver(strand_);
  auto [resolve_error, endpoints] = co_await resolver.async_resolve(
      neighbor_.host, std::to_string(neighbor_.peer_port), as_result);
  if (stopped_) co_return false;
  if (resolve_error) {
    log.warning(who_, fmt::format("cannot resolve {}: {}", neighbor_.host, resolve_error.message()));
    co_return false;
  }
  tcp::socket socket(strand_);
  asio::steady_timer deadline(strand_, connect_timeout);
  auto connected = co_await (asio::async_connect(socket, endpoints, as_result) ||
                             deadline.async_wait(as_result));
  if (stopped_) co_return false;
  if (connected.index() == 1) {
    log.warning(who_, fmt::format("cannot connect to {}: no answer within {} ms", where_,
                                connect_timeout.count()));
    co_return false;
  }
  if (auto error = std::get<0>(std::get<0>(connected))) {
    log.warning(who_, fmt::format("cannot connect to {}: {}", where_, error.message()));
    co_return false;
  }

  deadline.expires_after(handshake_timeout);
  std::string buffered;
  auto* tls = host_.peer_tls();
  if (!tls) {
    if (!co_await say_hello(socket, buffered, deadline) || stopped_) co_return false;
    if (keeps_link_up()) {
      co_await until_closed(socket, deadline);
      co_return true;
    }
    log.event(who_, fmt::format("connected to {}", where_));
    co_await run(std::move(socket), std::move(buffered), "");
    co_return true;
  }
  TlsStream stream(std::move(socket), *tls);
  VerifyReport report;
  report.watch(stream);
  auto shaken = co_await (stream.async_handshake(asio::ssl::stream_base::client, as_result) ||
                          deadline.async_wait(as_result));
  if (stopped_) co_return false;
  if (shaken.index() == 1) {
    log.warning(who_, fmt::format("no TLS handshake from {} within 3 s", where_));
    co_return false;
  }
  if (auto [error] = std::get<0>(shaken); error) {
    log.warning(who_, fmt::format("refused {}: {}", where_, handshake_failure(report, error)));
    co_return false;
  }
  if (!certificate_names(SSL_get0_peer_certificate(stream.native_handle()), neighbor_.name)) {
    log.warning(who_, fmt::format("refused {}: its certificate does not name {}", where_,
                                neighbor_.name));
    co_return false;
  }
  if (!co_await say_hello(stream, buffered, deadline) || stopped_) co_return false;
  if (keeps_link_up()) {
    co_await until_closed(stream, deadline);
    co_return true;
  }
  log.event(who_, fmt::format("connected to {} (TLS)", where_));
  co_await run(std::move(stream), std::move(buffered), "");
  co_return true;
}

// When both neighbors dial at once (one starting, the other redialing), each may take the
// other's connection before its own completes: both keep the redialer's connection. The
// redialer's completed dial replaces the link; the other side keeps its link and leaves its
// own connection open for the redialer to close: closed from here, that could reach the
// redialer before the answer on its own connection, and take its link down meanwhile.
bool PeerLink::keeps_link_up() {
  if (!live_ || redials_) return false;
  host_.peer_log().event(
      who_, fmt::format("already linked; our connection to {} stays open until it closes it",
                        where_));
  return true;
}

// Reads and drops what comes until the neighbor closes the connection, or for 3 s at most.
template <typename Stream>
awaitable<void> PeerLink::until_closed(Stream& stream, asio::steady_timer& deadline) {
  deadline.expires_after(handshake_timeout);
  std::array<char, 4096> dropped;
  for (;;) {
    auto read = co_await (stream.async_read_some(asio::buffer(dropped), as_result) ||
                          deadline.async_wait(as_result));
    if (read.index() == 1 || std::get<0>(std::get<0>(read))) co_return;
  }
}

// "PEER <our name>" out, "PEER <its name>" back, both before the deadline.
template <typename Stream>
awaitable<bool> PeerLink::say_hello(Stream& stream, std::string& buffered,
                                    asio::steady_timer& deadline) {
  auto& log = host_.peer_log();
  auto failed = [&](std::string_view why) {
    if (live_)  // the link came up by the neighbor's connection meanwhile: nothing went wrong
      log.event(who_, fmt::format("our connection to {} ended in its handshake ({}); the link is "
                                  "up by the neighbor's (our dials crossed)",
                                  where_, why));
    else if (stopped_)  // the server stops: its connections close
      log.event(who_, fmt::format("handshake with {} ended: {}", where_, why));
    else
      log.warning(who_, fmt::format("handshake with {} failed: {}", where_, why));
    return false;
  };
  std::string hello = "PEER " + host_.server_name() + "\n";
  log.sent(who_, hello, LogLevel::debug);
  auto written = co_await (asio::async_write(stream, asio::buffer(hello), as_result) ||
                           deadline.async_wait(as_result));
  if (written.index() == 1) co_return failed("no progress within 3 s");
  if (auto [error, n] = std::get<0>(written); error) co_return failed(error.message());
  auto answer =
      co_await (asio::async_read_until(stream, asio::dynamic_buffer(buffered, max_line_bytes),
                                       '\n', as_result) ||
                deadline.async_wait(as_result));
  if (answer.index() == 1) co_return failed("no answer within 3 s");
  auto [read_error, length] = std::get<0>(answer);
  if (read_error == asio::error::eof)
    co_return failed("it closed the connection (does its herd.toml list this server?)");
  if (read_error) co_return failed(read_error.message());
  std::string_view line(buffered.data(), length - 1);
  log.received(who_, line, LogLevel::debug);
  if (parse_peer_hello(line) != std::optional<std::string_view>(neighbor_.name))
    co_return failed("it did not answer PEER " + neighbor_.name);
  buffered.erase(0, length);
  co_return true;
}

template <typename Stream>
awaitable<void> PeerLink::run(Stream stream, std::string buffered, std::string greeting) {
  auto self = shared_from_this();
  if (stopped_) co_return;  // removed from the config since: the connection just closes
  if (live_) {              // what was sent on it will not be acknowledged: the link starts afresh
    live_->connection.close("replaced by a new connection");
    host_.peer_log().event(who_, "link down: replaced by a new connection");
    report_traffic(*live_, true);
    live_.reset();
    host_.link_down(*this);
  }
  keep_alive(stream.lowest_layer());
  auto live = std::make_shared<Live>(*this, std::move(stream), host_.new_owner());
  live_ = live;
  auto since = host_.resume_point(*this);
  host_.peer_log().event(who_, fmt::format("link up; {} records here; saying {}",
                                           live->catch_up_end, format_since(since)));
  live->outbox() = std::move(greeting);
  live->outbox().append(format_since(since)).push_back('\n');
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
  went_down_.notify();
}

// A neighbor that acknowledges nothing for ack_timeout loses its link, and is redialed. Sums
// up the link's traffic in the log every few seconds, and tells the neighbor how far it is
// synced (SYNCED) when changes went out.
awaitable<void> PeerLink::watchdog(std::shared_ptr<Live> live) {
  auto self = shared_from_this();  // a link a reload removed may end before its watchdog wakes
  asio::steady_timer timer(strand_);
  while (!live->connection.closed()) {
    timer.expires_after(500ms);
    co_await timer.async_wait(as_result);
    if (live_ != live) break;
    auto oldest = host_.oldest_unacknowledged(*this);
    if (oldest && PeerHost::Clock::now() - *oldest > ack_timeout)
      live->connection.close("no acknowledgement within 3 s");
    live->send_synced_if_changed();
    report_traffic(*live, false);
  }
}

void PeerLink::report_traffic(Live& live, bool final) {
  if (auto summary = live.traffic.summary(LinkTraffic::Clock::now(), final))
    host_.peer_log().event(who_, *summary);
}

}  // namespace herd
