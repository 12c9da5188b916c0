#include "places/provider.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "config.hpp"
#include "places/geonames.hpp"

namespace herd::places {
namespace {

std::filesystem::path find_geonames_data(const PlacesConfig& config) {
  if (!config.data.empty()) {
    if (!std::filesystem::exists(config.data))
      throw std::runtime_error(fmt::format("[places] data = {}: no such file", config.data.string()));
    return config.data;
  }
  std::string looked;
  for (const auto& path : default_geonames_paths()) {
    if (std::filesystem::exists(path)) return path;
    looked += fmt::format("\n  {}", path.string());
  }
  throw std::runtime_error(fmt::format(
      "no GeoNames data found; looked in:{}\nrun `tools/dev setup` to fetch it, or set [places] data "
      "in herd.toml",
      looked));
}

}  // namespace

std::unique_ptr<Provider> make_provider(const PlacesConfig& config, asio::io_context&) {
  if (config.provider == "geonames")
    return std::make_unique<GeonamesProvider>(find_geonames_data(config));
  throw std::runtime_error(fmt::format("places provider \"{}\" is not available", config.provider));
}

}  // namespace herd::places
