#include "places/gazetteer.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <numbers>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace herd::places {

namespace {

constexpr double kDegree = std::numbers::pi / 180.0;
// Widens the searched box so that rounding can never drop a city the distance test accepts.
constexpr double kMarginDegrees = 1e-6;
constexpr std::int64_t kMaxLatE5 = 90'00000;
constexpr std::int64_t kMaxLngE5 = 180'00000;

[[noreturn]] void fail(const std::string& what, std::size_t offset) {
  throw std::runtime_error(what + " at byte offset " + std::to_string(offset));
}

std::uint64_t read_varint(std::string_view bytes, std::size_t& pos, std::size_t end,
                          const char* what) {
  const std::size_t start = pos;
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos == end) fail(std::string("truncated ") + what, start);
    const auto byte = static_cast<unsigned char>(bytes[pos++]);
    value |= std::uint64_t{byte & 0x7fu} << shift;
    if (byte < 0x80) return value;
  }
  fail(std::string("overlong varint in ") + what, start);
}

std::int64_t zigzag(std::uint64_t raw) {
  return static_cast<std::int64_t>((raw >> 1) ^ (0 - (raw & 1)));
}

// The coordinates are deltas from the previous record, in units of 1e-5 degrees.
void add_delta(std::int64_t& running, std::uint64_t raw, std::int64_t max_abs, const char* what,
               std::size_t offset) {
  const std::int64_t delta = zigzag(raw);
  if (delta < -2 * max_abs || delta > 2 * max_abs || std::abs(running + delta) > max_abs) {
    fail(std::string(what) + " out of range", offset);
  }
  running += delta;
}

struct Cursor {
  std::int64_t lat_e5 = 0;
  std::int64_t lng_e5 = 0;
};

enum WireType : std::uint64_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

bool is_known_number(std::uint64_t field) {
  return field == 1 || (field >= 9 && field <= 11);
}
bool is_known_text(std::uint64_t field) {
  return field >= 2 && field <= 8;
}

void set_number(City& city, Cursor& cursor, std::uint64_t field, std::uint64_t value,
                std::size_t offset) {
  if (field == 1) city.id = zigzag(value);
  if (field == 9) city.population = static_cast<std::int64_t>(value);
  if (field == 10) add_delta(cursor.lng_e5, value, kMaxLngE5, "longitude", offset);
  if (field == 11) add_delta(cursor.lat_e5, value, kMaxLatE5, "latitude", offset);
}

// The text fields kept; altName (4), muni (5) and muniSub (6) are read past.
std::string* kept_text(City& city, std::uint64_t field) {
  if (field == 2) return &city.name;
  if (field == 3) return &city.country;
  if (field == 7) return &city.feature_code;
  if (field == 8) return &city.admin_code;
  return nullptr;
}

std::string_view read_bytes(std::string_view pbf, std::size_t& pos, std::size_t end,
                            std::size_t field_start) {
  const std::uint64_t length = read_varint(pbf, pos, end, "string length");
  if (length > end - pos) fail("truncated string field", field_start);
  pos += length;
  return pbf.substr(pos - length, length);
}

void skip_fixed(std::size_t& pos, std::size_t end, std::size_t width, std::size_t field_start) {
  if (end - pos < width) fail("truncated field", field_start);
  pos += width;
}

// One record: the fields in pbf[pos, end).
City decode_city(std::string_view pbf, std::size_t pos, std::size_t end, Cursor& cursor) {
  City city;
  while (pos < end) {
    const std::size_t field_start = pos;
    const std::uint64_t key = read_varint(pbf, pos, end, "field key");
    const std::uint64_t field = key >> 3;
    const std::uint64_t wire_type = key & 7;
    if (wire_type != kVarint && wire_type != kFixed64 && wire_type != kLengthDelimited &&
        wire_type != kFixed32) {
      fail("bad wire type " + std::to_string(wire_type), field_start);
    }
    if ((is_known_number(field) && wire_type != kVarint) ||
        (is_known_text(field) && wire_type != kLengthDelimited)) {
      fail("field " + std::to_string(field) + " has unexpected wire type " +
               std::to_string(wire_type),
           field_start);
    }
    if (wire_type == kVarint) {
      set_number(city, cursor, field, read_varint(pbf, pos, end, "varint field"), field_start);
    } else if (wire_type == kLengthDelimited) {
      const std::string_view text = read_bytes(pbf, pos, end, field_start);
      if (std::string* kept = kept_text(city, field)) *kept = text;
    } else {
      skip_fixed(pos, end, wire_type == kFixed64 ? 8 : 4, field_start);
    }
  }
  city.lat = static_cast<double>(cursor.lat_e5) / 1e5;
  city.lng = static_cast<double>(cursor.lng_e5) / 1e5;
  return city;
}

// In [-180, 180]; the index stores and searches longitudes in this range.
double normalized_lng(double lng) {
  return std::remainder(lng, 360.0);
}

int band_of(double lat, double band_degrees, int bands) {
  const double above_south_pole = std::clamp(lat, -90.0, 90.0) + 90.0;
  return std::min(static_cast<int>(above_south_pole / band_degrees), bands - 1);
}

// The longitudes within `reach` of `centre`, as intervals of [-180, 180]: two where they cross
// the antimeridian.
struct LngSpans {
  struct {
    double west, east;
  } span[2];
  int count;
};

LngSpans lng_spans(double centre, double reach) {
  if (reach >= 180.0) return {{{-180.0, 180.0}}, 1};
  const double west = centre - reach;
  const double east = centre + reach;
  if (west < -180.0) return {{{-180.0, east}, {west + 360.0, 180.0}}, 2};
  if (east > 180.0) return {{{-180.0, east - 360.0}, {west, 180.0}}, 2};
  return {{{west, east}}, 1};
}

bool valid_query(double lat, double lng, double radius_km) {
  return lat >= -90.0 && lat <= 90.0 && std::isfinite(lng) && radius_km >= 0.0;
}

// Population descending, then id ascending; storage order settles duplicate ids.
bool ranks_before(const City* a, const City* b) {
  if (a->population != b->population) return a->population > b->population;
  if (a->id != b->id) return a->id < b->id;
  return std::less<const City*>{}(a, b);
}

std::vector<const City*> best(std::vector<const City*> found, std::size_t limit) {
  const std::size_t n = std::min(limit, found.size());
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(n), found.end(),
                    ranks_before);
  found.resize(n);
  return found;
}

double cos_lat(double lat) {
  return std::cos(lat * kDegree);
}

// Haversine, given the cosines of the latitudes: the index keeps them, and the two cosines are
// most of the cost. Every distance goes through here, so the index and the scan agree exactly.
double haversine_km(double lat1, double lng1, double cos_lat1, double lat2, double lng2,
                    double cos_lat2) {
  const double sin_dlat = std::sin((lat2 - lat1) * kDegree / 2.0);
  const double sin_dlng = std::sin((lng2 - lng1) * kDegree / 2.0);
  const double h = sin_dlat * sin_dlat + cos_lat1 * cos_lat2 * sin_dlng * sin_dlng;
  return 2.0 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(h)));
}

}  // namespace

double great_circle_km(double lat1, double lng1, double lat2, double lng2) {
  return haversine_km(lat1, lng1, cos_lat(lat1), lat2, lng2, cos_lat(lat2));
}

std::vector<City> decode_cities(std::string_view pbf) {
  std::vector<City> cities;
  cities.reserve(pbf.size() / 40);  // the real file averages 47 bytes a record
  Cursor cursor;
  std::size_t pos = 0;
  while (pos < pbf.size()) {
    const std::size_t record_start = pos;
    const std::uint64_t length = read_varint(pbf, pos, pbf.size(), "record length");
    if (length > pbf.size() - pos) {
      fail("truncated record (length " + std::to_string(length) + ", " +
               std::to_string(pbf.size() - pos) + " bytes left)",
           record_start);
    }
    cities.push_back(decode_city(pbf, pos, pos + length, cursor));
    pos += length;
  }
  return cities;
}

Gazetteer Gazetteer::load(const std::filesystem::path& pbf) {
  std::ifstream in(pbf, std::ios::binary);
  if (!in) {
    throw std::runtime_error(pbf.string() + ": cannot open (" +
                             std::generic_category().message(errno) + ")");
  }
  std::string bytes;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    bytes.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error(pbf.string() + ": read error");
  return decode(pbf, bytes);
}

Gazetteer Gazetteer::decode(const std::filesystem::path& pbf, std::string_view bytes) {
  if (bytes.empty()) throw std::runtime_error(pbf.string() + ": empty file, no records");

  std::vector<City> cities;
  try {
    cities = decode_cities(bytes);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(pbf.string() + ": " + e.what());
  }
  try {
    return Gazetteer(std::move(cities));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(pbf.string() + ": " + e.what());
  }
}

Gazetteer::Gazetteer(std::vector<City> cities) : cities_(std::move(cities)) {
  for (City& city : cities_) {
    if (!(city.lat >= -90.0 && city.lat <= 90.0) || !std::isfinite(city.lng)) {
      throw std::invalid_argument("city " + std::to_string(city.id) + " has invalid coordinates");
    }
    city.lng = normalized_lng(city.lng);
  }
  // Sorting small keys, then moving each city once, is several times faster than sorting cities.
  struct Place {
    int band;
    double lng;
    std::int64_t id;
    std::size_t index;
    auto operator<=>(const Place&) const = default;
  };
  std::vector<Place> places;
  places.reserve(cities_.size());
  for (std::size_t i = 0; i < cities_.size(); ++i) {
    const City& city = cities_[i];
    places.push_back({band_of(city.lat, kBandDegrees, kBands), city.lng, city.id, i});
  }
  std::sort(places.begin(), places.end());

  std::vector<City> sorted;
  sorted.reserve(cities_.size());
  spots_.reserve(cities_.size());
  band_start_.assign(kBands + 1, 0);
  for (const Place& place : places) {
    sorted.push_back(std::move(cities_[place.index]));
    spots_.push_back({sorted.back().lat, sorted.back().lng, cos_lat(sorted.back().lat)});
    ++band_start_[place.band + 1];
  }
  for (int band = 0; band < kBands; ++band) band_start_[band + 1] += band_start_[band];
  cities_ = std::move(sorted);
}

void Gazetteer::scan_band(int band, double west, double east, const Circle& circle,
                          std::vector<const City*>& found) const {
  const auto first = spots_.begin() + static_cast<std::ptrdiff_t>(band_start_[band]);
  const auto last = spots_.begin() + static_cast<std::ptrdiff_t>(band_start_[band + 1]);
  const auto begin = std::ranges::lower_bound(first, last, west, {}, &Spot::lng);
  const auto end = std::ranges::upper_bound(begin, last, east, {}, &Spot::lng);
  for (auto it = begin; it != end; ++it) {
    if (haversine_km(circle.lat, circle.lng, circle.cos_lat, it->lat, it->lng, it->cos_lat) <=
        circle.radius_km) {
      found.push_back(&cities_[static_cast<std::size_t>(it - spots_.begin())]);
    }
  }
}

std::vector<const City*> Gazetteer::nearby(double lat, double lng, double radius_km,
                                           std::size_t limit) const {
  if (limit == 0 || !valid_query(lat, lng, radius_km)) return {};
  lng = normalized_lng(lng);

  const Circle circle{lat, lng, cos_lat(lat), radius_km};

  // The circle lies within [lat - reach, lat + reach] and, unless it holds a pole, within
  // lng +- asin(sin(angle) / cos(lat)).
  const double angle = radius_km / kEarthRadiusKm;
  const double lat_reach = angle / kDegree + kMarginDegrees;
  const double lat_lo = lat - lat_reach;
  const double lat_hi = lat + lat_reach;
  double lng_reach = 180.0;
  if (lat_lo > -90.0 && lat_hi < 90.0) {
    const double sine = std::sin(angle) / circle.cos_lat;
    if (sine < 1.0) lng_reach = std::asin(sine) / kDegree + kMarginDegrees;
  }

  std::vector<const City*> found;
  const LngSpans spans = lng_spans(lng, lng_reach);
  const int last_band = band_of(lat_hi, kBandDegrees, kBands);
  for (int band = band_of(lat_lo, kBandDegrees, kBands); band <= last_band; ++band) {
    for (int i = 0; i < spans.count; ++i) {
      scan_band(band, spans.span[i].west, spans.span[i].east, circle, found);
    }
  }
  return best(std::move(found), limit);
}

std::vector<const City*> Gazetteer::nearby_brute_force(double lat, double lng, double radius_km,
                                                       std::size_t limit) const {
  if (limit == 0 || !valid_query(lat, lng, radius_km)) return {};
  lng = normalized_lng(lng);
  // Skipping what is plainly too far north or south (a city is at least R * |dlat| away) keeps
  // the scan fast enough for tests, with a generous margin that shares nothing with the index.
  const double lat_reach = radius_km / kEarthRadiusKm / kDegree * 1.001 + 0.001;
  std::vector<const City*> found;
  for (const City& city : cities_) {
    if (std::abs(city.lat - lat) > lat_reach) continue;
    if (great_circle_km(lat, lng, city.lat, city.lng) <= radius_km) found.push_back(&city);
  }
  return best(std::move(found), limit);
}

}  // namespace herd::places
