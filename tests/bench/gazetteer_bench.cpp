// Loads cities.pbf and times nearby() around randomly chosen real cities.
// Usage: gazetteer_bench PATH/cities.pbf [QUERIES]
#include "places/gazetteer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <vector>

using herd::places::City;
using herd::places::Gazetteer;

namespace {

using Clock = std::chrono::steady_clock;

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH/cities.pbf [QUERIES]\n", argv[0]);
    return 2;
  }
  const long queries = argc > 2 ? std::atol(argv[2]) : 100'000;
  constexpr double kRadiusKm = 50.0;
  constexpr std::size_t kLimit = 20;

  try {
    const auto load_start = Clock::now();
    const Gazetteer gazetteer = Gazetteer::load(argv[1]);
    const double load_us = micros(Clock::now() - load_start);

    // Every city lies within 20,100 km of (0, 0): the whole list, to pick centres from.
    const std::vector<const City*> all = gazetteer.nearby(0.0, 0.0, 20100.0, gazetteer.size());
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::size_t> pick(0, all.size() - 1);

    std::vector<double> times_us;
    times_us.reserve(static_cast<std::size_t>(std::max(queries, 0L)));
    std::size_t found = 0;
    for (long i = 0; i < queries; ++i) {
      const City& centre = *all[pick(rng)];
      const auto start = Clock::now();
      found += gazetteer.nearby(centre.lat, centre.lng, kRadiusKm, kLimit).size();
      times_us.push_back(micros(Clock::now() - start));
    }
    std::sort(times_us.begin(), times_us.end());

    double total_us = 0.0;
    for (double t : times_us) total_us += t;
    const auto at = [&](double q) {
      return times_us.empty() ? 0.0 : times_us[static_cast<std::size_t>(q * (times_us.size() - 1))];
    };
    std::printf("cities: %zu\n", gazetteer.size());
    std::printf("load: %.1f ms\n", load_us / 1000.0);
    std::printf("queries: %ld (radius %.0f km, limit %zu), %.2f results on average\n", queries,
                kRadiusKm, kLimit, queries > 0 ? static_cast<double>(found) / queries : 0.0);
    std::printf("query: mean %.2f us, p50 %.2f us, p99 %.2f us, max %.2f us\n",
                queries > 0 ? total_us / queries : 0.0, at(0.50), at(0.99), at(1.0));

    // The densest places in the data (Milan's and Monza's degree squares hold the most cities),
    // Delhi, and a pole, where the box spans every longitude.
    const struct {
      const char* name;
      double lat, lng;
    } places[] = {{"Milan", 45.4642, 9.1900},         {"Sydney", -33.8688, 151.2093},
                  {"New York", 40.7128, -74.0060},    {"Paris", 48.8566, 2.3522},
                  {"Mexico City", 19.4326, -99.1332}, {"Delhi", 28.6139, 77.2090},
                  {"North Pole", 90.0, 0.0}};
    constexpr int kRepeats = 10'000;
    for (const auto& place : places) {
      const std::size_t within = gazetteer.nearby(place.lat, place.lng, kRadiusKm, -1).size();
      const auto start = Clock::now();
      for (int i = 0; i < kRepeats; ++i) {
        found += gazetteer.nearby(place.lat, place.lng, kRadiusKm, kLimit).size();
      }
      std::printf("%-12s %4zu places within %.0f km, mean %.2f us\n", place.name, within, kRadiusKm,
                  micros(Clock::now() - start) / kRepeats);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gazetteer_bench: %s\n", e.what());
    return 1;
  }
}
