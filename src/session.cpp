#include "session.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include <fmt/format.h>

namespace herd {

template <typename Stream>
Session::Session(Stream stream, std::uint64_t id, Herd& herd, places::Provider& places,
                 const ClientsConfig& clients, ClientBudget& budget)
    : id_(id),
      max_clock_skew_ms_(clients.max_clock_skew_ms),
      herd_(herd),
      places_(places),
      connection_(std::move(stream), *this, herd.log(),
                  ConnectionOptions{fmt::format("client {}", id), std::chrono::milliseconds(clients.send_timeout_ms), true,
                                    LogLevel::info,
                                    std::chrono::milliseconds(clients.idle_timeout_ms)}),
      replies_(std::min<std::size_t>(ReplyQueue::max_unsent, clients.max_output_bytes / 2)),
      budget_(budget),
      max_output_(static_cast<std::size_t>(clients.max_output_bytes)) {}

template Session::Session(tcp::socket, std::uint64_t, Herd&, places::Provider&,
                          const ClientsConfig&, ClientBudget&);
template Session::Session(TlsStream, std::uint64_t, Herd&, places::Provider&,
                          const ClientsConfig&, ClientBudget&);

void Session::start() {
  herd_.join(id_, weak_from_this());
  herd_.log().event(who(), "connected from " + remote_address(connection_.socket()));
  // A completion handler, not a coroutine around run(): one frame less on every connection.
  asio::co_spawn(connection_.executor(), connection_.run(),
                 [self = shared_from_this()](std::exception_ptr, std::string why) {
                   self->finished(why);
                 });
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

void Session::finished(const std::string& why) {
  budget_.change_output(std::exchange(accounted_, 0), 0);
  budget_.closed();
  herd_.leave(id_);
  if (!why.empty()) herd_.log().warning(who(), why + "; disconnecting");
  herd_.log().event(who(), "disconnected");
}

void Session::received(LineBuffer& input, Timestamp at, Input state) {
  ops_.clear();
  lookups_.clear();
  batch_places_ = 0;
  const char* logged_from = nullptr;
  std::string_view last;
  std::optional<std::string_view> overlong;
  while (!batch_full()) {
    auto line = input.next_line();
    if (!line) break;
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
        who(), {logged_from, static_cast<std::size_t>(last.data() + last.size() - logged_from)}, at);
  bool held_back = !overlong && input.has_line();  // for the next batch
  if (!overlong && !held_back && input.rest().size() > max_line_bytes) overlong = input.rest();
  if (overlong) {
    // Answered as invalid, cut at the limit; nothing more is read from this connection.
    herd_.log().warning(who(), fmt::format("line longer than {} bytes; closing", max_line_bytes));
    herd_.client_counters().add(herd_.client_counters().invalid);
    replies_.add(format_invalid(overlong->substr(0, max_line_bytes)), true, connection_.outbox());
    connection_.finish_reading();
  } else if (state == Input::eof && !held_back && !input.rest().empty()) {
    // A last line may end at EOF without a newline.
    herd_.log().received(who(), input.rest(), at);
    handle(input.rest(), at);
  }
  if (ops_.empty()) return flush();
  in_herd_ = true;
  herd_.submit(ops_, id_, connection_.executor(),
               [self = shared_from_this()] { self->applied(); });
}

// One read of WHATSATs would make megabytes of replies at once, too many for the output cap
// however fast the client reads: a batch takes lines only while its replies, as estimated,
// stay under the point where reading pauses. The rest wait in the input for the next batch.
bool Session::batch_full() const {
  return batch_places_ > 0 &&
         connection_.unsent() + replies_.waiting_bytes() + places_in_flight_ + batch_places_ >
             replies_.pause_at();
}

bool Session::hold_reading() const {
  return in_herd_ || replies_.should_pause_reading(connection_.unsent() + places_in_flight_);
}

std::size_t Session::places_estimate(int bound) {
  return 512 + 512 * static_cast<std::size_t>(bound);
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
    batch_places_ += places_estimate(whatsat->bound);
  } else {
    replies_.add(format_invalid(line), true, out);
  }
}

void Session::applied() {
  in_herd_ = false;
  for (std::size_t i = 0; i < ops_.size() && !connection_.closed(); ++i) {
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
  places_in_flight_ += places_estimate(lookup.bound);
  places_.nearby(query, [self = shared_from_this(), reply = op.reply, bound = lookup.bound,
                         at_line = std::move(op.location.at_line),
                         asked = std::chrono::steady_clock::now()](std::string json) mutable {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - asked;
    self->herd_.places_counters().observe(places_status(json), took.count());
    std::string text;
    text.reserve(at_line.size() + json.size() + 3);
    text.append(at_line).append("\n").append(json).append("\n\n");
    asio::dispatch(self->connection_.executor(),
                   [self, reply, bound, text = std::move(text)] {
                     self->places_in_flight_ -= places_estimate(bound);
                     self->complete(reply, text);
                     self->flush();
                     self->connection_.wake_reader();
                   });
  });
}

void Session::complete(std::uint64_t reply, std::string_view text) {
  if (connection_.closed()) return;
  replies_.complete(reply, connection_.outbox(), text);
  if (connection_.unsent() + replies_.waiting_bytes() > max_output_) account();
}

// Like Redis's client-output-buffer-limit: replies are made faster than a client that does not
// read can be paused (one read of WHATSATs makes megabytes), so the cap is on what is held.
void Session::account() {
  if (connection_.closed()) return;
  auto held = connection_.unsent() + replies_.waiting_bytes();
  bool all_over = budget_.change_output(std::exchange(accounted_, held), held);
  if (held > max_output_)
    connection_.close(fmt::format("{} bytes of replies unread, over clients.max_output_bytes ({})",
                                  held, max_output_));
  else if (all_over && held >= max_output_ / 16)
    connection_.close(fmt::format(
        "{} bytes of replies unread while all clients hold {}, over "
        "clients.max_total_output_bytes ({})",
        held, budget_.output(), budget_.output_limit()));
}

void Session::flush() {
  if (auto handed_out = replies_.handed_out(); handed_out != replies_counted_) {
    herd_.client_counters().add(herd_.client_counters().replies, handed_out - replies_counted_);
    replies_counted_ = handed_out;
  }
  connection_.flush();
  account();
}

}  // namespace herd
