// Google Places as a provider: Places API (New) or the legacy Nearby Search, over the
// curl-multi client. Identical lookups in flight share one request; at most
// `max_concurrent` requests go upstream at once, the rest wait their turn.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include "log.hpp"
#include "places/google.hpp"
#include "places/http_client.hpp"
#include "places/provider.hpp"

namespace herd::places {

struct GoogleSettings {
  enum class Api { places_new, legacy } api = Api::places_new;
  std::string endpoint;  // empty: Google's own
  std::string api_key;
  std::chrono::milliseconds timeout{3000};
  int max_concurrent = 8;
};

class GoogleProvider : public Provider {
 public:
  GoogleProvider(asio::io_context& io, GoogleSettings settings, Log& log);
  ~GoogleProvider() override;

  void nearby(const NearbyQuery& query, std::function<void(std::string json)> done) override;
  void shutdown() override;

 private:
  struct Waiter {
    NearbyQuery query;
    std::function<void(std::string)> done;
  };
  // One upstream request and everyone waiting for its answer.
  struct Flight {
    NearbyQuery query;  // its bound is the largest any waiter may have
    std::chrono::steady_clock::time_point deadline;
    std::vector<Waiter> waiters;
  };
  using Key = std::tuple<double, double, int>;  // lat, lng, radius

  void join_or_start(Waiter waiter);
  void launch_queued();
  void run(std::shared_ptr<Flight> flight);
  void answer(const std::shared_ptr<Flight>& flight, UpstreamResponse response);
  void forget(const std::shared_ptr<Flight>& flight);
  UpstreamRequest build(const NearbyQuery& query) const;
  std::string translate(const UpstreamResponse& response, const NearbyQuery& query) const;

  GoogleSettings settings_;
  Log& log_;
  asio::strand<asio::io_context::executor_type> strand_;
  HttpClient http_;
  std::multimap<Key, std::shared_ptr<Flight>> in_flight_;  // queued or running
  std::deque<std::shared_ptr<Flight>> queue_;
  int running_ = 0;
  bool stopped_ = false;
};

}  // namespace herd::places
