#include <algorithm>
#include <array>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "store.hpp"

using namespace herd;

namespace {

Location at(std::string_view line) {
  auto message = parse_peer_line(line);
  REQUIRE(std::holds_alternative<At>(message));
  return location_of(std::get<At>(message));
}

}  // namespace

TEST_CASE("a newer client time wins, compared exactly", "[store]") {
  Store store;
  CHECK(store.apply(at("AT A +0.100000000 kiwi +34-118 1520023934.000000001")).outcome ==
        Store::Outcome::inserted);
  // a nanosecond older loses, whoever relays it
  CHECK(store.apply(at("AT B +0.100000000 kiwi +35-118 1520023934")).outcome ==
        Store::Outcome::unchanged);
  CHECK(store.find("kiwi")->at_line == "AT A +0.100000000 kiwi +34-118 1520023934.000000001");
  // a nanosecond newer wins
  CHECK(store.apply(at("AT B +0.100000000 kiwi +35-118 1520023934.000000002")).outcome ==
        Store::Outcome::replaced);
  CHECK(store.find("kiwi")->where().lat == 35);
  // the same record again changes nothing
  CHECK(store.apply(at("AT B +0.100000000 kiwi +35-118 1520023934.000000002")).outcome ==
        Store::Outcome::unchanged);
  CHECK(store.size() == 1);
  CHECK(store.find("mango") == nullptr);
}

TEST_CASE("equal client times are broken the same way whatever the order of arrival", "[store]") {
  std::array<std::string, 4> lines = {
      "AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
      "AT Hands +0.100000000 kiwi +34.068930-118.445127 1520023934.918963997",
      "AT Goloman +0.263873386 kiwi +10-10 1520023934.918963997",
      "AT Welsh +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
  };
  std::sort(lines.begin(), lines.end());
  std::string winner;
  do {
    Store store;
    for (const auto& line : lines) store.apply(at(line));
    if (winner.empty()) winner = store.find("kiwi")->at_line;
    CHECK(store.find("kiwi")->at_line == winner);
  } while (std::next_permutation(lines.begin(), lines.end()));
  CHECK(winner == "AT Welsh +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997");
}

TEST_CASE("a time written with fewer decimals is the same instant", "[store]") {
  CHECK(at("AT A +0.100000000 kiwi +34-118 1520023934.5").client_time ==
        at("AT A +0.100000000 kiwi +34-118 1520023934.500000000").client_time);
}

TEST_CASE("records keep their insertion order for catching up", "[store]") {
  Store store;
  store.apply(at("AT S +0.000000000 a +1+1 1"));
  store.apply(at("AT S +0.000000000 b +1+1 1"));
  store.apply(at("AT S +0.000000000 a +2+2 2"));
  REQUIRE(store.size() == 2);
  CHECK(store.at(0).at_line == "AT S +0.000000000 a +2+2 2");
  CHECK(store.at(1).at_line == "AT S +0.000000000 b +1+1 1");
}

TEST_CASE("a record knows its client; many clients are all found", "[store]") {
  CHECK(at("AT Goloman +0.263873386 kiwi.cs.ucla.edu +34-118 1").client() == "kiwi.cs.ucla.edu");
  Store store;
  for (int i = 0; i < 100'000; ++i)
    store.apply(at("AT S +0.000000000 c" + std::to_string(i) + " +1+1 " + std::to_string(i)));
  REQUIRE(store.size() == 100'000);
  for (int i = 0; i < 100'000; ++i) {
    auto found = store.find("c" + std::to_string(i));
    REQUIRE(found);
    CHECK(found->client_time.seconds == i);
  }
  CHECK(store.find("c100000") == nullptr);
  CHECK(store.find("") == nullptr);
}

TEST_CASE("a loaded store merges with what was told meanwhile, the newer record winning",
          "[store]") {
  Store live, loaded;
  live.apply(at("AT A +0.100000000 kiwi +1+1 20"));   // told during the load, newer than the file's
  live.apply(at("AT A +0.100000000 mango +1+1 5"));   // older than the file's
  live.apply(at("AT A +0.100000000 papaya +1+1 5"));  // not in the file
  loaded.apply(at("AT B +0.100000000 kiwi +2+2 10"));
  loaded.apply(at("AT B +0.100000000 mango +2+2 10"));
  for (int i = 0; i < 3000; ++i)  // enough to grow the table
    loaded.apply(at(fmt::format("AT B +0.100000000 c{} +2+2 10", i)));
  live.merge_into(loaded);
  CHECK(live.size() == 3003);
  CHECK(live.find("kiwi")->at_line == "AT A +0.100000000 kiwi +1+1 20");
  CHECK(live.find("mango")->at_line == "AT B +0.100000000 mango +2+2 10");
  CHECK(live.find("papaya")->at_line == "AT A +0.100000000 papaya +1+1 5");
  CHECK(live.find("c2999") != nullptr);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < live.size(); ++i) bytes += live.at(i).at_line.size();
  CHECK(live.at_line_bytes() == bytes);
}
