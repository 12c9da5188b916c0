// Where WHATSAT's places come from: the offline gazetteer or one of Google's APIs.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace asio {
class io_context;
}

namespace herd {
struct PlacesConfig;
class Log;
}  // namespace herd

namespace herd::places {

struct NearbyQuery {
  double lat = 0, lng = 0;
  int radius_km = 0;  // 0..50, already validated
  int bound = 0;      // 0..20, already validated
};

class Provider {
 public:
  virtual ~Provider() = default;

  // Begins what may take a while (the gazetteer loads), once the server listens; lookups
  // asked before it is done wait for it. `failed` is called on the io_context, at most once,
  // when the provider turns out unable to answer any lookup (corrupt data).
  virtual void start(std::function<void(std::string why)> failed) { (void)failed; }

  // Calls `done` exactly once with places JSON in the legacy Nearby Search shape (no empty
  // line inside, no trailing newline), from any thread, possibly before returning.
  virtual void nearby(const NearbyQuery& query, std::function<void(std::string json)> done) = 0;

  // Answers what is still waiting (with an error status) and stops asking upstream.
  virtual void shutdown() {}
};

// Throws std::runtime_error with a message a person can act on (missing or empty data, missing
// key): what can be found out at once, before the server listens.
// Reads a Google provider's key from the environment variable the config names.
std::unique_ptr<Provider> make_provider(const PlacesConfig& config, asio::io_context& io, Log& log);

}  // namespace herd::places
