#include "places/geonames.hpp"

#include <system_error>

#include <fmt/format.h>

#include "places/legacy_json.hpp"

namespace herd::places {

GeonamesProvider::GeonamesProvider(const std::filesystem::path& data)
    : gazetteer_(Gazetteer::load(data)) {}

void GeonamesProvider::nearby(const NearbyQuery& query, std::function<void(std::string)> done) {
  done(answer(query));
}

std::string GeonamesProvider::answer(const NearbyQuery& query) const {
  PlacesReply reply;
  reply.html_attributions.push_back(
      "Places from <a href=\"https://www.geonames.org/\">GeoNames</a>, CC BY 4.0");
  for (const City* city : gazetteer_.nearby(query.lat, query.lng, query.radius_km, query.bound)) {
    Place place;
    place.name = city->name;
    place.lat = city->lat;
    place.lng = city->lng;
    place.place_id = fmt::format("geonames:{}", city->id);
    place.vicinity = fmt::format("{}, {}, {}", city->name, city->admin_code, city->country);
    place.types = {"locality", "political"};
    reply.results.push_back(std::move(place));
  }
  reply.status = reply.results.empty() ? "ZERO_RESULTS" : "OK";
  return to_legacy_json(reply);
}

// An installed program first takes the data installed beside it (BINDIR/../share/herd), so
// that an install moved elsewhere (meson install --destdir, a tarball) still finds its own.
std::vector<std::filesystem::path> default_geonames_paths() {
  std::vector<std::filesystem::path> paths;
  std::error_code error;
  auto program = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error && *HERD_DATA_FROM_BINDIR)
    paths.push_back(
        (program.parent_path() / HERD_DATA_FROM_BINDIR / "cities.pbf").lexically_normal());
  paths.push_back(std::filesystem::path(HERD_DATA_DIR) / "geonames" / "cities.pbf");
  paths.push_back(std::filesystem::path(HERD_INSTALLED_DATA_DIR) / "cities.pbf");
  return paths;
}

}  // namespace herd::places
