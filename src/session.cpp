#include "session.hpp"

#include <optional>
#include <utility>

#include <fmt/format.h>

namespace herd {

template <typename Stream>
Session::Session(Stream stream, std::uint64_t id, Herd& herd, places::Provider& places,
                 const ClientsConfig& clients)
    : id_(id),
      who_(fmt::format("client {}", id)),
      max_clock_skew_ms_(clients.max_clock_skew_ms),
      herd_(herd),
      places_(places),
      connection_(std::move(stream), *this, herd.log(),
                  {who_, std::chrono::milliseconds(clients.send_timeout_ms), true}) {}

template Session::Session(tcp::socket, std::uint64_t, Herd&, places::Provider&,
                          const ClientsConfig&);
template Session::Session(TlsStream, std::uint64_t, Herd&, places::Provider&,
                          const ClientsConfig&);

void Session::start() {
  asio::co_spawn(connection_.executor(), run(shared_from_this()), asio::detached);
}

void Session::stop() {
  asio::dispatch(connection_.executor(),
                 [self = shared_from_this()] { self->connection_.stop_reading(); });
}

void Session::confirmed(std::vector<std::uint64_t> replies) {
  asio::dispatch(connection_.executor(),
                 [self = shared_from_this(), replies = std::move(replies)] {
                   for (auto reply : replies) self->complete(reply);
                   self->flush();
                 });
}

awaitable<void> Session::run([[maybe_unused]] std::shared_ptr<Session> self) {
  herd_.join(id_, weak_from_this());
  herd_.log().event(who_, "connected from " + remote_address(connection_.socket()));
  auto why = co_await connection_.run();
  herd_.leave(id_);
  if (!why.empty()) herd_.log().warning(who_, why + "; disconnecting");
  herd_.log().event(who_, "disconnected");
}

void Session::received(LineBuffer& input, Timestamp at, Input state) {
  ops_.clear();
  lookups_.clear();
  const char* logged_from = nullptr;
  std::string_view last;
  std::optional<std::string_view> overlong;
  while (auto line = input.next_line()) {
    if (line->size() > max_line_bytes) {
      overlong = line;
      break;
    }
    if (!logged_from) logged_from = line->data();
    last = *line;
    handle(*line, at);
  }
  if (logged_from)
    herd_.log().received(
        who_, {logged_from, static_cast<std::size_t>(last.data() + last.size() - logged_from)}, at);
  if (!overlong && input.rest().size() > max_line_bytes) overlong = input.rest();
  if (overlong) {
    // Answered as invalid, cut at the limit; nothing more is read from this connection.
    herd_.log().warning(who_, fmt::format("line longer than {} bytes; closing", max_line_bytes));
    herd_.client_counters().add(herd_.client_counters().invalid);
    replies_.add(format_invalid(overlong->substr(0, max_line_bytes)), true, connection_.outbox());
    connection_.finish_reading();
  } else if (state == Input::eof && !input.rest().empty()) {
    // A last line may end at EOF without a newline.
    herd_.log().received(who_, input.rest(), at);
    handle(input.rest(), at);
  }
  if (ops_.empty()) return flush();
  in_herd_ = true;
  herd_.submit(ops_, id_, connection_.executor(),
               [self = shared_from_this()] { self->applied(); });
}

bool Session::hold_reading() const {
  return in_herd_ || replies_.should_pause_reading(connection_.unsent());
}

void Session::handle(std::string_view line, Timestamp at) {
  auto command = parse_client_line(line);
  auto& out = connection_.outbox();
  auto& counters = herd_.client_counters();
  counters.add(std::holds_alternative<Iamat>(command)     ? counters.iamat
               : std::holds_alternative<Whatsat>(command) ? counters.whatsat
                                                          : counters.invalid);
  if (auto iamat = std::get_if<Iamat>(&command);
      iamat && too_far_ahead(iamat->client_time, at, max_clock_skew_ms_)) {
    replies_.add(format_invalid(line), true, out);  // it would pin the client's record for good
  } else if (iamat) {
    auto hash = Store::hash_of(iamat->client);
    herd_.prefetch(hash);
    auto location = make_location(herd_.name(), format_diff(at, iamat->client_time), iamat->client,
                                  iamat->coords, iamat->time, iamat->client_time);
    if (location.at_line.size() > max_at_line_bytes) {  // no neighbor could be sent it
      replies_.add(format_invalid(line), true, out);
      return;
    }
    auto reply = replies_.add(location.at_line, false, out);
    ops_.push_back({StoreOp::Kind::publish, {}, std::move(location), hash, reply});
    lookups_.push_back({});
  } else if (auto whatsat = std::get_if<Whatsat>(&command)) {
    // The answer stays "? line" unless the client turns out to be known.
    auto reply = replies_.add(format_invalid(line), false, out);
    auto hash = Store::hash_of(whatsat->client);
    herd_.prefetch(hash);
    ops_.push_back({StoreOp::Kind::lookup, whatsat->client, {}, hash, reply});
    lookups_.push_back({whatsat->radius_km, whatsat->bound});
  } else {
    replies_.add(format_invalid(line), true, out);
  }
}

void Session::applied() {
  in_herd_ = false;
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    auto& op = ops_[i];
    if (op.kind == StoreOp::Kind::lookup && op.found)
      look_up_places(op, lookups_[i]);
    else if (!op.waiting)
      complete(op.reply);
  }
  flush();
  connection_.wake_reader();
}

void Session::look_up_places(StoreOp& op, Lookup lookup) {
  auto where = op.location.where();
  places::NearbyQuery query{where.lat, where.lng, lookup.radius_km, lookup.bound};
  places_.nearby(query, [self = shared_from_this(), reply = op.reply,
                         at_line = std::move(op.location.at_line),
                         asked = std::chrono::steady_clock::now()](std::string json) mutable {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - asked;
    self->herd_.places_counters().observe(places_status(json), took.count());
    std::string text;
    text.reserve(at_line.size() + json.size() + 3);
    text.append(at_line).append("\n").append(json).append("\n\n");
    asio::dispatch(self->connection_.executor(),
                   [self, reply, text = std::move(text)] {
                     self->complete(reply, text);
                     self->flush();
                   });
  });
}

void Session::complete(std::uint64_t reply, std::string_view text) {
  replies_.complete(reply, connection_.outbox(), text);
}

void Session::flush() {
  if (auto handed_out = replies_.handed_out(); handed_out != replies_counted_) {
    herd_.client_counters().add(herd_.client_counters().replies, handed_out - replies_counted_);
    replies_counted_ = handed_out;
  }
  connection_.flush();
}

}  // namespace herd
