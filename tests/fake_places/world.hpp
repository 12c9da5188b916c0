// The fake world: places derived deterministically from the centre and radius of a search.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace fake_places {

struct Category {
  std::string_view word;                // in the name: "Fake Cafe 3"
  std::vector<std::string_view> types;  // Google's type list, most specific first
  std::string_view icon;                // legacy icon URL
  std::string_view icon_background_color;
  std::string_view icon_mask_base_uri;
  bool priced;  // has a price level (food and drink)
};

inline constexpr int places_per_search = 50;  // legacy pages: 20, 20, 10
inline constexpr double max_radius_m = 50000;
inline constexpr std::string_view city = "Fakeville";
inline constexpr std::string_view country = "Fakeland";
// The half-size of a place's viewport in degrees of latitude, like Google's.
inline constexpr double viewport_half_lat = 0.001349898;

inline constexpr double earth_radius_m = 6371008.8;
inline constexpr double degree = std::numbers::pi / 180;
inline constexpr double golden_angle = 2.399963229728653;  // radians: spreads the spiral evenly
inline constexpr std::string_view base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

inline const std::array<Category, 12> categories{{
    {"Cafe",
     {"cafe", "food", "point_of_interest", "store", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/cafe-71.png",
     "#FF9E67",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/cafe_pinlet",
     true},
    {"Restaurant",
     {"restaurant", "food", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/restaurant-71.png",
     "#FF9E67",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/restaurant_pinlet",
     true},
    {"Bar",
     {"bar", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/bar-71.png",
     "#FF9E67",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/bar_pinlet",
     true},
    {"Bakery",
     {"bakery", "food", "point_of_interest", "store", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/shopping-71.png",
     "#FF9E67",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/cafe_pinlet",
     true},
    {"Pharmacy",
     {"pharmacy", "health", "point_of_interest", "store", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/shopping-71.png",
     "#4B96F3",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/pharmacy_pinlet",
     false},
    {"Park",
     {"park", "tourist_attraction", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/park-71.png",
     "#4DB546",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/tree_pinlet",
     false},
    {"Museum",
     {"museum", "tourist_attraction", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/museum-71.png",
     "#13B5C7",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/museum_pinlet",
     false},
    {"Library",
     {"library", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/generic_business-71.png",
     "#7B9EB0",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/generic_pinlet",
     false},
    {"Gym",
     {"gym", "health", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/generic_business-71.png",
     "#7B9EB0",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/generic_pinlet",
     false},
    {"Bookstore",
     {"book_store", "point_of_interest", "store", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/shopping-71.png",
     "#4B96F3",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/shopping_pinlet",
     false},
    {"Hotel",
     {"lodging", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/lodging-71.png",
     "#909CE1",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/hotel_pinlet",
     false},
    {"Gas Station",
     {"gas_station", "point_of_interest", "establishment"},
     "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/gas_station-71.png",
     "#909CE1",
     "https://maps.gstatic.com/mapfiles/place_api/icons/v2/gas_pinlet",
     false},
}};

inline constexpr std::array<std::string_view, 6> streets{
    "Fake Street", "Mock Avenue", "Stub Road", "Double Lane", "Test Drive", "Dummy Boulevard"};

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

inline double round7(double x) {
  return std::round(x * 1e7) / 1e7;
}

inline double normalized_lng(double lng) {
  while (lng >= 180) lng -= 360;
  while (lng < -180) lng += 360;
  return lng;
}

inline double haversine_m(double lat1, double lng1, double lat2, double lng2) {
  double dlat = (lat2 - lat1) * degree;
  double dlng = (lng2 - lng1) * degree;
  double a = std::pow(std::sin(dlat / 2), 2) +
             std::cos(lat1 * degree) * std::cos(lat2 * degree) * std::pow(std::sin(dlng / 2), 2);
  return 2 * earth_radius_m * std::asin(std::min(1.0, std::sqrt(a)));
}

// A string of `length` base64url characters drawn from `seed`, for place IDs, photo references...
inline std::string token_chars(std::uint64_t seed, std::size_t length) {
  std::string out(length, 'A');
  for (std::size_t i = 0; i < length; i += 10) {  // 10 characters from each 64-bit draw
    std::uint64_t bits = seed = splitmix64(seed);
    for (std::size_t j = i; j < std::min(i + 10, length); ++j, bits >>= 6) {
      out[j] = base64url_alphabet[bits & 63];
    }
  }
  return out;
}

inline std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (unsigned char c : bytes) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += base64url_alphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += base64url_alphabet[(bits << (6 - count)) & 63];
  return out;
}

// Empty on malformed input.
inline std::string base64url_decode(std::string_view text) {
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    auto value = base64url_alphabet.find(c);
    if (value == std::string_view::npos) return {};
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

// Open Location Code of 10 digits: "849VCWC8+R9".
inline std::string plus_code(double lat, double lng) {
  constexpr std::string_view digits = "23456789CFGHJMPQRVWX";
  constexpr long long cells_per_degree = 8000;  // the fifth pair is 1/8000 of a degree
  long long lat_cells = static_cast<long long>(std::floor((lat + 90) * cells_per_degree));
  long long lng_cells =
      static_cast<long long>(std::floor((normalized_lng(lng) + 180) * cells_per_degree));
  lat_cells = std::clamp(lat_cells, 0LL, 180 * cells_per_degree - 1);
  lng_cells = std::clamp(lng_cells, 0LL, 360 * cells_per_degree - 1);
  std::string code(11, '+');
  for (int pair = 4; pair >= 0; --pair) {
    std::size_t at = static_cast<std::size_t>(pair < 4 ? 2 * pair : 9);
    code[at] = digits[static_cast<std::size_t>(lat_cells % 20)];
    code[at + 1] = digits[static_cast<std::size_t>(lng_cells % 20)];
    lat_cells /= 20;
    lng_cells /= 20;
  }
  return code;
}

// "CWC8+R9 Fakeville, Fakeland": the code without its first four digits, and the locality.
inline std::string compound_code(const std::string& global_code) {
  return fmt::format("{} {}, {}", std::string_view(global_code).substr(4), city, country);
}

inline double viewport_half_lng(double lat) {
  return viewport_half_lat / std::cos(lat * degree);
}

struct Place {
  int number;  // 1-based position on the spiral, nearest first
  double lat;  // rounded to 7 decimals, as Google prints them
  double lng;
  double distance_m;
  const Category* category;
  std::string id;  // "ChIJ..." 27 characters
  std::uint64_t hash;
  double rating;  // 3.0 to 5.0, one decimal
  int user_rating_count;
  int price_level;  // 1 to 3 when category->priced
  bool open_now;
  int street_number;
  std::string_view street;

  std::string name() const { return fmt::format("Fake {} {}", category->word, number); }
  // "123 Fake Street, Fakeville"
  std::string vicinity() const { return fmt::format("{} {}, {}", street_number, street, city); }
  // "123 Fake Street, Fakeville, Fakeland"
  std::string formatted_address() const {
    return fmt::format("{} {}, {}, {}", street_number, street, city, country);
  }
};

inline Place make_place(int index, double lat, double lng, double radius_m, std::uint64_t seed) {
  // A Fermat spiral inside 90% of the radius: the 10% margin absorbs rounding to 7 decimals and
  // differences between the earth models a client may measure with.
  double distance = 0.9 * radius_m * std::sqrt((index + 0.5) / places_per_search);
  double bearing = index * golden_angle;
  double delta = distance / earth_radius_m;
  double phi1 = lat * degree;
  double phi2 = std::asin(std::sin(phi1) * std::cos(delta) +
                          std::cos(phi1) * std::sin(delta) * std::cos(bearing));
  double lambda2 = lng * degree + std::atan2(std::sin(bearing) * std::sin(delta) * std::cos(phi1),
                                             std::cos(delta) - std::sin(phi1) * std::sin(phi2));

  Place place{};
  place.number = index + 1;
  place.lat = round7(phi2 / degree);
  place.lng = round7(normalized_lng(lambda2 / degree));
  place.distance_m = haversine_m(lat, lng, place.lat, place.lng);
  place.hash = splitmix64(seed + static_cast<std::uint64_t>(index) * 0x9e3779b97f4a7c15);
  std::uint64_t h = place.hash;
  place.category = &categories[h % categories.size()];
  place.id = "ChIJ" + token_chars(h ^ 0x1d, 23);
  place.rating = static_cast<double>(30 + (h >> 8) % 21) / 10;
  place.user_rating_count = static_cast<int>(1 + (h >> 16) % 4000);
  place.price_level = static_cast<int>(1 + (h >> 28) % 3);
  place.open_now = ((h >> 32) & 3) != 0;
  place.street_number = static_cast<int>(1 + (h >> 40) % 9999);
  place.street = streets[(h >> 56) % streets.size()];
  return place;
}

// Nothing is found within a radius under 1 m, nor where |lat| > 85 (the designated empty area).
inline bool is_empty_area(double lat, double /*lng*/, double radius_m) {
  return radius_m < 1 || std::abs(lat) > 85;
}

// Up to places_per_search places strictly within radius_m of the centre, nearest first; or only
// those numbered first + 1 to first + count.
inline std::vector<Place> places_around(double lat, double lng, double radius_m, int first = 0,
                                        int count = places_per_search) {
  std::vector<Place> places;
  if (is_empty_area(lat, lng, radius_m)) return places;
  std::uint64_t seed = splitmix64(static_cast<std::uint64_t>(std::llround(lat * 1e7))) ^
                       splitmix64(static_cast<std::uint64_t>(std::llround(lng * 1e7)) << 1) ^
                       static_cast<std::uint64_t>(std::llround(radius_m * 100));
  int last = std::min(places_per_search, first + count);
  places.reserve(static_cast<std::size_t>(std::max(0, last - first)));
  for (int i = first; i < last; ++i) {
    places.push_back(make_place(i, lat, lng, radius_m, seed));
  }
  return places;
}

}  // namespace fake_places
