// The default, offline provider: GeoNames populated places, ranked by population.
#pragma once

#include <filesystem>
#include <vector>

#include "places/gazetteer.hpp"
#include "places/provider.hpp"

namespace herd::places {

class GeonamesProvider : public Provider {
 public:
  explicit GeonamesProvider(const std::filesystem::path& data);

  void nearby(const NearbyQuery& query, std::function<void(std::string json)> done) override;
  std::string answer(const NearbyQuery& query) const;

 private:
  Gazetteer gazetteer_;
};

// Where setup puts the data, then where `meson install` puts it; the first that exists wins.
std::vector<std::filesystem::path> default_geonames_paths();

}  // namespace herd::places
