#include "places/provider.hpp"

#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "config.hpp"
#include "places/geonames.hpp"
#include "places/google_provider.hpp"

namespace herd::places {
namespace {

std::filesystem::path find_geonames_data(const PlacesConfig& config) {
  if (!config.data.empty()) {
    if (!std::filesystem::exists(config.data))
      throw std::runtime_error(
          fmt::format("[places] data = {}: no such file", config.data.string()));
    return config.data;
  }
  std::string looked;
  for (const auto& path : default_geonames_paths()) {
    if (std::filesystem::exists(path)) return path;
    looked += fmt::format("\n  {}", path.string());
  }
  throw std::runtime_error(
      fmt::format("no GeoNames data found; looked in:{}\nrun `tools/dev setup` to fetch it, or set "
                  "[places] data "
                  "in herd.toml",
                  looked));
}

std::string api_key(const PlacesConfig& config) {
  const char* key = std::getenv(config.api_key_env.c_str());
  if (!key || !*key)
    throw std::runtime_error(fmt::format(
        "places provider \"{}\" needs a Google API key: set the environment variable {} "
        "(named by [places] api_key_env)",
        config.provider, config.api_key_env));
  std::string_view k = key;
  if (k.find_first_of("\r\n \t") != std::string_view::npos)
    throw std::runtime_error(
        fmt::format("the API key in {} contains whitespace", config.api_key_env));
  return std::string(k);
}

}  // namespace

std::unique_ptr<Provider> make_provider(const PlacesConfig& config, asio::io_context& io,
                                        Log& log) {
  if (config.provider == "geonames")
    return std::make_unique<GeonamesProvider>(
        io, find_geonames_data(config), std::chrono::milliseconds(config.timeout_ms), log);
  GoogleSettings settings;
  settings.api = config.provider == "google-legacy" ? GoogleSettings::Api::legacy
                                                    : GoogleSettings::Api::places_new;
  settings.endpoint = config.endpoint;
  settings.api_key = api_key(config);
  settings.timeout = std::chrono::milliseconds(config.timeout_ms);
  settings.max_concurrent = config.max_concurrent;
  return std::make_unique<GoogleProvider>(io, std::move(settings), log);
}

}  // namespace herd::places
