#include "places/google_provider.hpp"

#include <fmt/format.h>
#include <asio/bind_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include "places/legacy_json.hpp"

namespace herd::places {
namespace {

std::string error_reply(std::string status, std::string message) {
  PlacesReply reply;
  reply.status = std::move(status);
  reply.error_message = std::move(message);
  return to_legacy_json(reply);
}

std::chrono::milliseconds ms_until(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t -
                                                               std::chrono::steady_clock::now());
}

}  // namespace

GoogleProvider::GoogleProvider(asio::io_context& io, GoogleSettings settings, Log& log)
    : settings_(std::move(settings)),
      log_(log),
      strand_(asio::make_strand(io)),
      http_(io, settings_.max_concurrent) {}

GoogleProvider::~GoogleProvider() = default;

void GoogleProvider::nearby(const NearbyQuery& query, std::function<void(std::string)> done) {
  if (query.bound == 0) {  // nothing to ask Google for
    PlacesReply empty;
    empty.status = "ZERO_RESULTS";
    return done(to_legacy_json(empty));
  }
  asio::dispatch(strand_, [this, waiter = Waiter{query, std::move(done)}]() mutable {
    join_or_start(std::move(waiter));
  });
}

void GoogleProvider::join_or_start(Waiter waiter) {
  if (stopped_) return waiter.done(error_reply("UNKNOWN_ERROR", "the server is shutting down"));
  Key key{waiter.query.lat, waiter.query.lng, waiter.query.radius_km};
  bool legacy =
      settings_.api == GoogleSettings::Api::legacy;  // always answers 20; bounds don't matter
  for (auto [it, end] = in_flight_.equal_range(key); it != end; ++it) {
    auto& flight = *it->second;
    bool queued = std::find(queue_.begin(), queue_.end(), it->second) != queue_.end();
    if (legacy || flight.query.bound >= waiter.query.bound || queued) {
      flight.query.bound = std::max(flight.query.bound, waiter.query.bound);
      flight.waiters.push_back(std::move(waiter));
      return;
    }
  }
  auto flight = std::make_shared<Flight>();
  flight->query = waiter.query;
  flight->deadline = std::chrono::steady_clock::now() + settings_.timeout;
  flight->waiters.push_back(std::move(waiter));
  in_flight_.emplace(key, flight);
  queue_.push_back(flight);
  launch_queued();
}

void GoogleProvider::launch_queued() {
  while (running_ < settings_.max_concurrent && !queue_.empty()) {
    auto flight = std::move(queue_.front());
    queue_.pop_front();
    run(std::move(flight));
  }
}

void GoogleProvider::run(std::shared_ptr<Flight> flight) {
  auto timed_out = [this] {
    return UpstreamResponse{
        0, {}, fmt::format("upstream timed out after {} ms", settings_.timeout.count())};
  };
  auto remaining = ms_until(flight->deadline);
  if (remaining.count() <= 0) {  // waited its whole time in the queue
    answer(flight, timed_out());
    return forget(flight);
  }
  ++running_;
  auto upstream = build(flight->query);
  HttpRequest request;
  request.method = std::move(upstream.method);
  request.url = std::move(upstream.url);
  request.headers = std::move(upstream.headers);
  request.body = std::move(upstream.body);
  request.timeout = remaining;
  auto started = std::chrono::steady_clock::now();
  http_.async_fetch(
      std::move(request), asio::bind_executor(strand_, [this, flight, started, timed_out](
                                                           std::error_code ec, HttpResponse r) {
        --running_;
        if (stopped_) return;  // its waiters were answered by shutdown()
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        auto response = ec == asio::error::timed_out
                            ? timed_out()
                            : UpstreamResponse{r.status, std::move(r.body), std::move(r.error)};
        log_.event("places",
                   fmt::format("lookup {:.6f},{:.6f} radius {} km for {} waiting: {} in {} ms",
                               flight->query.lat, flight->query.lng, flight->query.radius_km,
                               flight->waiters.size(),
                               response.transport_error.empty()
                                   ? fmt::format("HTTP {}", response.http_status)
                                   : response.transport_error,
                               took.count()));
        answer(flight, std::move(response));
        forget(flight);
        launch_queued();
      }));
}

// Translating is most of the work of a lookup; it runs off the strand, so with several
// threads the answers to several lookups are written at once.
void GoogleProvider::answer(const std::shared_ptr<Flight>& flight, UpstreamResponse response) {
  auto shared = std::make_shared<const UpstreamResponse>(std::move(response));
  for (auto& waiter : flight->waiters) {
    asio::post(strand_.get_inner_executor(), [this, shared, waiter = std::move(waiter)] {
      waiter.done(translate(*shared, waiter.query));
    });
  }
  flight->waiters.clear();
}

void GoogleProvider::forget(const std::shared_ptr<Flight>& flight) {
  Key key{flight->query.lat, flight->query.lng, flight->query.radius_km};
  for (auto [it, end] = in_flight_.equal_range(key); it != end; ++it) {
    if (it->second == flight) {
      in_flight_.erase(it);
      return;
    }
  }
}

UpstreamRequest GoogleProvider::build(const NearbyQuery& query) const {
  if (settings_.api == GoogleSettings::Api::legacy)
    return build_legacy_request(
        query,
        settings_.endpoint.empty() ? kLegacyNearbyEndpoint : std::string_view(settings_.endpoint),
        settings_.api_key);
  return build_new_request(
      query, settings_.endpoint.empty() ? kNewNearbyEndpoint : std::string_view(settings_.endpoint),
      settings_.api_key);
}

std::string GoogleProvider::translate(const UpstreamResponse& response,
                                      const NearbyQuery& query) const {
  if (settings_.api == GoogleSettings::Api::legacy)
    return trim_legacy(response, query, settings_.api_key);
  return translate_new(response, query, settings_.api_key);
}

void GoogleProvider::shutdown() {
  asio::dispatch(strand_, [this] {
    if (stopped_) return;
    stopped_ = true;
    for (auto& [key, flight] : in_flight_)
      for (auto& waiter : flight->waiters)
        waiter.done(error_reply("UNKNOWN_ERROR", "the server is shutting down"));
    in_flight_.clear();
    queue_.clear();
    http_.shutdown();
  });
}

}  // namespace herd::places
