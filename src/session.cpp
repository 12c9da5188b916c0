#include "session.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <ctime>

#include <fmt/format.h>
#include <asio/experimental/awaitable_operators.hpp>

namespace herd {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr std::size_t read_size = 16 * 1024;
// A client that sends without reading stops being read once this much waits to be sent.
constexpr std::size_t max_unsent = 4 * 1024 * 1024;

Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<std::int32_t>(ts.tv_nsec)};
}

}  // namespace

void SessionRegistry::add(std::uint64_t id, std::weak_ptr<Session> session) {
  std::lock_guard lock(mutex_);
  sessions_.emplace(id, std::move(session));
}

void SessionRegistry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
}

void SessionRegistry::stop_all() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, session] : sessions_)
      if (auto s = session.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->stop();
}

std::size_t SessionRegistry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

Session::Session(tcp::socket socket, std::uint64_t id, Herd& herd, places::Provider& places,
                 SessionRegistry& registry, std::chrono::milliseconds send_timeout)
    : socket_(std::move(socket)),
      who_(fmt::format("client {}", id)),
      herd_(herd),
      places_(places),
      registry_(registry),
      id_(id),
      send_timeout_(send_timeout),
      wake_writer_(socket_.get_executor()),
      wake_reader_(socket_.get_executor()) {}

Session::~Session() {
  registry_.remove(id_);
}

void Session::start() {
  registry_.add(id_, weak_from_this());
  asio::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  socket_.set_option(tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);  // send() writes directly and must never block
  herd_.log().event(
      who_, fmt::format("connected from {}:{}", remote.address().to_string(), remote.port()));
  // Each coroutine holds the session from its creation: the reader may finish before the
  // writer first runs, and taking the reference inside could then be too late.
  asio::co_spawn(socket_.get_executor(), reader(shared_from_this()), asio::detached);
  asio::co_spawn(socket_.get_executor(), writer(shared_from_this()), asio::detached);
}

void Session::stop() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    self->stopping_ = true;
    asio::error_code ignored;
    self->socket_.shutdown(tcp::socket::shutdown_receive, ignored);  // the pending read ends
  });
}

void Session::propagated(std::uint64_t reply) {
  asio::dispatch(socket_.get_executor(),
                 [self = shared_from_this(), reply] { self->complete(reply); });
}

awaitable<void> Session::reader(std::shared_ptr<Session> self) {
  const std::shared_ptr<PropagationListener> listener = self;  // told when updates have spread
  bool first_line = true;
  bool done = false;
  while (!done) {
    auto [error, n] = co_await socket_.async_read_some(
        asio::buffer(input_.prepare(read_size), read_size), as_result);
    received_at_ = now();
    if (!error) input_.commit(n);
    done = error || stopping_;
    saw_eof_ = error == asio::error::eof && !stopping_;

    ops_.clear();
    const char* logged_from = nullptr;
    std::string_view last;
    std::optional<std::string_view> overlong;
    while (auto line = input_.next_line()) {
      if (line->size() > max_line_bytes) {
        overlong = line;
        break;
      }
      if (first_line && handed_to_peer(*line)) co_return;
      first_line = false;
      if (!logged_from) logged_from = line->data();
      last = *line;
      handle(*line, ops_);
    }
    if (logged_from)
      herd_.log().received(
          who_, {logged_from, static_cast<std::size_t>(last.data() + last.size() - logged_from)},
          received_at_);
    if (!overlong && input_.rest().size() > max_line_bytes) overlong = input_.rest();
    if (overlong) {
      // Answered as invalid, cut at the limit; nothing more is read from this connection.
      herd_.log().event(who_, fmt::format("line longer than {} bytes; closing", max_line_bytes));
      add_reply(format_invalid(overlong->substr(0, max_line_bytes)), true);
      done = true;
    } else if (saw_eof_ &&
               !input_.rest().empty()) {  // a last line may end at EOF without a newline
      herd_.log().received(who_, input_.rest(), received_at_);
      handle(input_.rest(), ops_);
    }
    if (!ops_.empty()) {
      bool applied = false;
      herd_.apply(ops_, listener, socket_.get_executor(), [this, self, &applied] {
        applied = true;
        wake_reader_.notify();
      });
      while (!applied) co_await wake_reader_.wait();
      in_batch_ = true;  // one write for the whole batch, below
      answer_lookups(ops_);
      in_batch_ = false;
    }
    send();
    while (!done && !write_failed_ && outbox_.size() + sending_.size() + texts_.size() > max_unsent)
      co_await wake_reader_.wait();
    // The other sessions go first: by the time this one reads again its client has likely
    // written more, and the read finds data instead of costing a system call that finds none.
    if (!done) co_await asio::post(socket_.get_executor(), asio::use_awaitable);
  }
  input_done_ = true;
  wake_writer_.notify();
}

// A neighbor opens with "PEER <its name>"; from then on the connection is its link.
bool Session::handed_to_peer(std::string_view first_line) {
  auto command = parse_client_line(first_line);
  auto hello = std::get_if<PeerHello>(&command);
  if (!hello || !herd_.is_neighbor(hello->server)) return false;
  herd_.log().received(who_, first_line);
  herd_.log().event(who_,
                    fmt::format("is the neighbor {}; handing over to its link", hello->server));
  herd_.attach_peer(std::string(hello->server), std::move(socket_), std::string(input_.rest()));
  input_done_ = true;
  wake_writer_.notify();
  return true;
}

void Session::handle(std::string_view line, std::vector<StoreOp>& ops) {
  auto command = parse_client_line(line);
  if (auto iamat = std::get_if<Iamat>(&command)) {
    auto hash = Store::hash_of(iamat->client);
    herd_.prefetch(hash);
    auto location = make_location(herd_.name(), format_diff(received_at_, iamat->client_time),
                                  iamat->client, iamat->coords, iamat->time, iamat->client_time);
    auto reply = add_reply(location.at_line, false);
    ops.push_back({StoreOp::Kind::publish, {}, std::move(location), hash, reply});
  } else if (auto whatsat = std::get_if<Whatsat>(&command)) {
    // The answer stays "? line" unless the client turns out to be known.
    auto reply = add_reply(format_invalid(line), false);
    auto& slot = waiting_.back();
    slot.radius_km = whatsat->radius_km;
    slot.bound = whatsat->bound;
    auto hash = Store::hash_of(whatsat->client);
    herd_.prefetch(hash);
    ops.push_back({StoreOp::Kind::lookup, whatsat->client, {}, hash, reply});
  } else {
    add_reply(format_invalid(line), true);
  }
}

void Session::answer_lookups(std::vector<StoreOp>& ops) {
  for (auto& op : ops) {
    if (op.kind == StoreOp::Kind::publish) {
      if (!op.propagating) complete(op.reply);
      continue;
    }
    if (!op.found || op.reply < first_waiting_) {
      complete(op.reply);
      continue;
    }
    const auto& slot = waiting_[op.reply - first_waiting_];
    auto where = op.location.where();
    places::NearbyQuery query{where.lat, where.lng, slot.radius_km, slot.bound};
    places_.nearby(query, [self = shared_from_this(), reply = op.reply,
                           at_line = std::move(op.location.at_line)](std::string json) mutable {
      std::string text;
      text.reserve(at_line.size() + json.size() + 3);
      text.append(at_line).append("\n").append(json).append("\n\n");
      asio::dispatch(self->socket_.get_executor(), [self, reply, text = std::move(text)]() mutable {
        self->complete(reply, text);
      });
    });
  }
}

std::uint64_t Session::add_reply(std::string_view line, bool ready) {
  auto number = next_reply_++;
  if (ready && waiting_.empty()) {
    outbox_.append(line).push_back('\n');
    first_waiting_ = next_reply_;
  } else {
    waiting_.push_back({texts_.size(), line.size() + 1, ready});
    texts_.append(line).push_back('\n');
  }
  return number;
}

// Marks a reply ready (replacing its text if given) and moves the ready ones in front to the
// outbox.
void Session::complete(std::uint64_t reply, std::string_view text) {
  if (reply < first_waiting_ || reply - first_waiting_ >= waiting_.size()) return;
  auto& slot = waiting_[reply - first_waiting_];
  if (slot.ready) return;
  slot.ready = true;
  bool moved = false;
  if (!text.empty() && reply == first_waiting_) {  // first in line: straight to the outbox
    outbox_.append(text);
    waiting_.pop_front();
    ++first_waiting_;
    moved = true;
  } else if (!text.empty()) {
    slot.at = texts_.size();
    slot.size = text.size();
    texts_.append(text);
  }
  while (!waiting_.empty() && waiting_.front().ready) {
    outbox_.append(texts_, waiting_.front().at, waiting_.front().size);
    waiting_.pop_front();
    ++first_waiting_;
    moved = true;
  }
  if (waiting_.empty()) texts_.clear();
  if (moved && !in_batch_) send();
}

// Writes what is ready at once, without a round through the event loop, when the socket
// takes it all (the usual case); whatever it does not take is left to the writer.
void Session::send() {
  if (writing_ || write_failed_ || outbox_.empty() || !socket_.is_open()) return;
  asio::error_code error;
  auto n = socket_.write_some(asio::buffer(outbox_), error);
  if (n > 0) {
    herd_.log().sent(who_, std::string_view(outbox_).substr(0, n));
    if (n == outbox_.size())
      outbox_.clear();
    else
      outbox_.erase(0, n);
  }
  // The writer takes what is left, reports errors, and closes once input is done.
  if (!outbox_.empty() || (error && error != asio::error::would_block) || input_done_)
    wake_writer_.notify();
}

awaitable<void> Session::writer([[maybe_unused]] std::shared_ptr<Session> self) {
  for (;;) {
    if (outbox_.empty()) {
      if (input_done_ && waiting_.empty()) break;
      co_await wake_writer_.wait();
      continue;
    }
    std::swap(outbox_, sending_);
    herd_.log().sent(who_, sending_);
    writing_ = true;
    auto error = co_await write_all(sending_);
    writing_ = false;
    sending_.clear();
    wake_reader_.notify();
    if (error) {
      write_failed_ = true;
      herd_.log().event(who_, error == asio::error::timed_out
                                  ? fmt::format("took none of its replies for {} ms; disconnecting",
                                                send_timeout_.count())
                                  : "write failed: " + error.message());
      break;
    }
  }
  if (!socket_.is_open()) co_return;  // handed over to a peer link
  asio::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  if (!saw_eof_ && !write_failed_) co_await linger();
  socket_.close(ignored);
  herd_.log().event(who_, "disconnected");
}

awaitable<asio::error_code> Session::write_all(std::string_view text) {
  asio::steady_timer stalled(socket_.get_executor());
  while (!text.empty()) {
    auto queued = unacknowledged_bytes();
    stalled.expires_after(send_timeout_);
    auto result = co_await (socket_.async_write_some(asio::buffer(text), as_result) ||
                            stalled.async_wait(as_result));
    if (result.index() == 1) {
      // The write was cancelled before it sent anything. A client that reads slowly takes
      // bytes without the socket turning writable (that waits for a third of its buffer).
      if (unacknowledged_bytes() < queued) continue;
      co_return asio::error::timed_out;
    }
    auto [error, n] = std::get<0>(result);
    if (error) co_return error;
    text.remove_prefix(n);
  }
  co_return asio::error_code{};
}

// Bytes written to the socket that the client has not acknowledged yet. They go down as the
// client's side takes them in, which, once its buffer is full, is only as the client reads.
int Session::unacknowledged_bytes() {
  int bytes = 0;
  if (::ioctl(socket_.native_handle(), SIOCOUTQ, &bytes) != 0) return 0;
  return bytes;
}

// Closing with unread input would reset the connection and could destroy the reply in
// flight; read and discard until the client closes its side, for a short while.
awaitable<void> Session::linger() {
  asio::steady_timer deadline(socket_.get_executor(), 1s);
  char discard[4096];
  for (;;) {
    auto result = co_await (socket_.async_read_some(asio::buffer(discard), as_result) ||
                            deadline.async_wait(as_result));
    if (result.index() == 1 || std::get<0>(std::get<0>(result))) co_return;
  }
}

}  // namespace herd
