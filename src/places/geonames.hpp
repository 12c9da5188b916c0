// The default, offline provider: GeoNames populated places, ranked by population.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "log.hpp"
#include "places/gazetteer.hpp"
#include "places/provider.hpp"

namespace herd::places {

// The gazetteer loads on a thread of its own after the server listens (about 0.1 s of work),
// so that the ports open at once; lookups asked meanwhile wait for it, each at most `wait`.
class GeonamesProvider : public Provider {
 public:
  // Throws std::runtime_error naming `data` when it cannot be used, as far as that shows
  // without reading it: missing, unreadable, a directory, an empty file.
  GeonamesProvider(asio::io_context& io, std::filesystem::path data, std::chrono::milliseconds wait,
                   Log& log);
  ~GeonamesProvider() override;

  void start(std::function<void(std::string why)> failed) override;
  void nearby(const NearbyQuery& query, std::function<void(std::string json)> done) override;
  void shutdown() override;

 private:
  struct Waiter {
    NearbyQuery query;
    std::function<void(std::string)> done;
    std::chrono::steady_clock::time_point deadline;
  };

  void load(std::stop_token stop);  // on loader_
  // The rest runs on strand_.
  void wait_for_load(Waiter waiter);
  void loaded(std::unique_ptr<const Gazetteer> gazetteer, std::chrono::milliseconds took,
              std::chrono::milliseconds cpu);
  void failed_to_load(std::string why);
  void wait_for_first_deadline();
  void expire_waiters();
  void answer_waiters(const std::string& error_status, const std::string& error_message);

  std::filesystem::path data_;
  std::chrono::milliseconds wait_;
  Log& log_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer deadline_timer_;  // expires at the first waiter's deadline
  std::deque<Waiter> waiting_;         // in arrival order, so by deadline too
  std::unique_ptr<const Gazetteer> gazetteer_;
  std::atomic<const Gazetteer*> ready_{nullptr};  // gazetteer_ once loaded: read from any thread
  std::optional<std::string> failure_;            // why it did not load
  std::function<void(std::string)> on_failure_;
  bool stopped_ = false;
  std::jthread loader_;  // last: stopped and joined before the members it uses go
};

// Where setup puts the data, then where `meson install` puts it; the first that exists wins.
std::vector<std::filesystem::path> default_geonames_paths();

}  // namespace herd::places
