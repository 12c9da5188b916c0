#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <new>
#include <map>
#include <random>
#include <string>
#include <vector>

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

// The store's chunks are its only 4 MiB arrays: a test can make the next ones fail.
std::atomic<long> chunks_allowed{-1};  // -1: all
std::atomic<long> chunks_made{0};

}  // namespace

void* operator new[](std::size_t bytes) {
  if (bytes == (std::size_t{4} << 20)) {
    ++chunks_made;
    if (chunks_allowed >= 0 && chunks_allowed-- == 0) throw std::bad_alloc();
  }
  if (void* p = std::malloc(bytes ? bytes : 1)) return p;
  throw std::bad_alloc();
}
// Every form that pairs with operator delete[] is replaced too, or a sanitizer sees memory
// from its own new[] freed by this free() (simdjson allocates with the nothrow form).
void* operator new[](std::size_t bytes, const std::nothrow_t&) noexcept {
  try {
    return operator new[](bytes);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

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
  CHECK_FALSE(store.find("mango").has_value());
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
    CHECK(found->client_time().seconds == i);
  }
  CHECK_FALSE(store.find("c100000").has_value());
  CHECK_FALSE(store.find("").has_value());
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
  CHECK(live.find("c2999").has_value());
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < live.size(); ++i) bytes += live.at(i).at_line.size();
  CHECK(live.at_line_bytes() == bytes);
}

TEST_CASE("each change is numbered; a record carries the number of its last change", "[store]") {
  Store store;
  CHECK(store.apply(at("AT A +0.100000000 kiwi +1+1 10")).record.changed == 1);
  CHECK(store.apply(at("AT A +0.100000000 mango +1+1 10")).record.changed == 2);
  CHECK(store.apply(at("AT A +0.100000000 kiwi +1+1 5")).outcome == Store::Outcome::unchanged);
  CHECK(store.changes() == 2);
  CHECK(store.apply(at("AT A +0.100000000 kiwi +1+1 11")).record.changed == 3);
  CHECK(store.find("kiwi")->changed == 3);
  CHECK(store.find("mango")->changed == 2);
  store.skip_changes_to(100);
  CHECK(store.apply(at("AT A +0.100000000 papaya +1+1 1")).record.changed == 101);
  store.skip_changes_to(50);  // never backwards
  CHECK(store.changes() == 101);
}

TEST_CASE("restored records keep their numbers; the same line twice keeps the greater",
          "[store]") {
  auto numbered = [](std::string_view line, std::uint64_t changed) {
    auto record = at(line);
    record.changed = changed;
    return record;
  };
  Store store;
  store.restore(numbered("AT A +0.100000000 kiwi +1+1 10", 7));
  store.restore(numbered("AT A +0.100000000 kiwi +1+1 10", 9));   // written again, renumbered
  store.restore(numbered("AT A +0.100000000 kiwi +1+1 10", 8));
  store.restore(numbered("AT A +0.100000000 mango +1+1 10", 40));
  store.restore(numbered("AT A +0.100000000 mango +1+1 9", 41));  // older: loses, number too
  store.restore(numbered("AT A +0.100000000 papaya +1+1 3", 2));
  store.restore(numbered("AT A +0.100000000 papaya +1+1 4", 3));  // newer: wins
  CHECK(store.find("kiwi")->changed == 9);
  CHECK(store.find("mango")->changed == 40);
  CHECK(store.find("mango")->at_line == "AT A +0.100000000 mango +1+1 10");
  CHECK(store.find("papaya")->changed == 3);
  CHECK(store.changes() == 41);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < store.size(); ++i) bytes += store.at(i).at_line.size();
  CHECK(store.at_line_bytes() == bytes);
}

TEST_CASE("records told during the load are numbered after the loaded ones", "[store]") {
  Store live, loaded;
  live.apply(at("AT A +0.100000000 kiwi +1+1 20"));   // newer than the file's
  live.apply(at("AT A +0.100000000 mango +1+1 5"));   // older than the file's
  live.apply(at("AT A +0.100000000 papaya +1+1 5"));  // not in the file
  auto kiwi = at("AT B +0.100000000 kiwi +2+2 10");
  kiwi.changed = 1000;
  loaded.restore(kiwi);
  auto mango = at("AT B +0.100000000 mango +2+2 10");
  mango.changed = 2000;
  loaded.restore(mango);
  std::vector<std::string> kept;
  live.merge_into(loaded, [&](const Record& record) { kept.emplace_back(record.client()); });
  CHECK(kept == std::vector<std::string>{"kiwi", "papaya"});
  CHECK(live.find("kiwi")->changed == 2001);
  CHECK(live.find("mango")->changed == 2000);
  CHECK(live.find("papaya")->changed == 2002);
  CHECK(live.changes() == 2002);
}

TEST_CASE("records that outgrow their room move; the room they leave is reclaimed", "[store]") {
  Store store;
  constexpr int clients = 100'000;
  auto line = [](int i, std::string_view time) {
    return fmt::format("AT S +0.000000000 c{} +1+1 {}", i, time);
  };
  for (int i = 0; i < clients; ++i) store.apply(at(line(i, "1")));
  auto packed = store.record_bytes();
  CHECK(packed < clients * (16 + line(clients, "1").size() + 4) + (4u << 20));
  // Each round makes every line longer than the room its record had, so every record moves.
  std::size_t most = 0;
  for (std::string_view time : {"1000", "1000000.5", "1000000000000.25", "1000000000000000.125"}) {
    for (int i = 0; i < clients; ++i) {
      CHECK(store.apply(at(line(i, time))).outcome == Store::Outcome::replaced);
      most = std::max(most, store.record_bytes());
    }
    REQUIRE(store.size() == clients);
    for (int i = 0; i < clients; i += 997) {
      CHECK(store.at(i).at_line == line(i, time));  // indices stay put
      CHECK(store.find(fmt::format("c{}", i))->at_line == line(i, time));
      CHECK(store.find(fmt::format("c{}", i))->changed == store.at(i).changed);
    }
    CHECK(store.dead_bytes() <= store.record_bytes() / 4 + (4u << 20));
  }
  // Without reclaiming, four moves of every record would hold five copies.
  std::size_t bytes = 0, live = 0;
  for (std::size_t i = 0; i < store.size(); ++i) {
    bytes += store.at(i).at_line.size();
    live += (16 + store.at(i).at_line.size() + 3) / 4 * 4;
  }
  CHECK(most < 2 * live);
  CHECK(store.at_line_bytes() == bytes);
  // A shorter line fits in the room of the longer one, in place.
  auto before = store.record_bytes();
  CHECK(store.apply(at(line(7, "1000000000000001"))).outcome == Store::Outcome::replaced);
  CHECK(store.record_bytes() == before);
  CHECK(store.find("c7")->at_line == line(7, "1000000000000001"));
  CHECK(store.find("c7")->client_time().seconds == 1000000000000001);
}

TEST_CASE("the store agrees with a plain map over random applies and restores", "[store]") {
  // The model: per client, the winning line by (client time, line bytes), and its number.
  struct Kept {
    std::string line;
    Timestamp time;
    std::uint64_t changed;
  };
  std::map<std::string, Kept> model;
  std::uint64_t changes = 0;
  Store store;
  std::mt19937 random(20261201);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  for (int step = 0; step < 300'000; ++step) {
    // Long names, so that the bytes moved records leave behind soon fill a chunk and the
    // records are compacted several times.
    auto client = fmt::format("c{}.{}", pick(20000), std::string(200, 'x'));
    // Origins, diffs and times of different lengths, so that records grow, shrink and move;
    // times mostly newer than the client's last, some older or equal.
    auto line = fmt::format("AT {} +{}.{:09} {} +{}+{} {}.{}", std::string(1 + pick(12), 'S'),
                            pick(100), pick(1'000'000'000), client, pick(90), pick(180),
                            100 + step - pick(100), std::string(1 + pick(9), static_cast<char>('0' + pick(10))));
    auto location = at(line);
    auto found = model.find(client);
    bool wins = found == model.end() || location.client_time > found->second.time ||
                (location.client_time == found->second.time && line > found->second.line);
    if (pick(10) == 0) {  // as read back from the file, with a number of its own
      location.changed = 1 + pick(400'000);
      store.restore(location);
      changes = std::max(changes, location.changed);
      if (wins)
        model[client] = {line, location.client_time, location.changed};
      else if (found->second.line == line)
        found->second.changed = std::max(found->second.changed, location.changed);
    } else {
      auto outcome = store.apply(location).outcome;
      CHECK(outcome == (!wins                  ? Store::Outcome::unchanged
                        : found == model.end() ? Store::Outcome::inserted
                                               : Store::Outcome::replaced));
      if (wins) model[client] = {line, location.client_time, ++changes};
    }
  }
  REQUIRE(store.size() == model.size());
  CHECK(store.changes() == changes);
  std::size_t bytes = 0;
  for (const auto& [client, kept] : model) {
    auto found = store.find(client);
    REQUIRE(found);
    CHECK(found->at_line == kept.line);
    CHECK(found->changed == kept.changed);
    CHECK(found->client() == client);
    bytes += kept.line.size();
  }
  CHECK(store.at_line_bytes() == bytes);
  CHECK(store.dead_bytes() <= store.record_bytes() / 4 + (4u << 20));
}

TEST_CASE("running out of memory while compacting leaves the store as it was", "[store]") {
  constexpr int clients = 40'000;
  auto line = [](int i, std::string_view time) {
    return fmt::format("AT S +0.000000000 c{}.{} +1+1 {}", i, std::string(200, 'x'), time);
  };
  auto fill = [&](Store& store) {
    for (int i = 0; i < clients; ++i) store.apply(at(line(i, "1")));
  };
  // A dry run finds the replacement that compacts, and how many chunks compacting makes.
  int compacting = -1;
  long chunks = 0;
  {
    Store store;
    fill(store);
    for (int i = 0; i < clients && compacting < 0; ++i) {
      auto bytes = store.record_bytes();
      auto made = chunks_made.load();
      store.apply(at(line(i, "1000000.5")));  // longer: every record moves
      if (store.record_bytes() < bytes) compacting = i, chunks = chunks_made - made;
    }
  }
  REQUIRE(compacting > 0);
  REQUIRE(chunks >= 3);
  Store store;
  fill(store);
  for (int i = 0; i < compacting; ++i) store.apply(at(line(i, "1000000.5")));
  chunks_allowed = chunks - 1;  // the last fresh chunk fails
  auto applied = store.apply(at(line(compacting, "1000000.5")));
  chunks_allowed = -1;
  CHECK(applied.outcome == Store::Outcome::replaced);  // compacting is only a saving
  int wrong = 0;
  for (int i = 0; i < clients; ++i)
    wrong += store.at(i).at_line != line(i, i <= compacting ? "1000000.5" : "1");
  CHECK(wrong == 0);
  CHECK(store.find(fmt::format("c7.{}", std::string(200, 'x')))->at_line == line(7, "1000000.5"));
}

TEST_CASE("a line the store cannot hold is refused before anything changes", "[store]") {
  Store store;
  store.apply(at("AT S +0.000000000 kiwi +1+1 1"));
  auto bytes = store.at_line_bytes(), changes = store.changes(), dead = store.dead_bytes();
  auto huge = make_location("S", "+0.000000000", "kiwi", "+1+1", "2" + std::string(70'000, '0'),
                            Timestamp{2, 0});
  CHECK_THROWS_AS(store.apply(huge), std::length_error);
  CHECK_THROWS_AS(store.restore(huge), std::length_error);
  CHECK(store.at_line_bytes() == bytes);
  CHECK(store.dead_bytes() == dead);
  CHECK(store.changes() == changes);
  CHECK(store.find("kiwi")->at_line == "AT S +0.000000000 kiwi +1+1 1");
}

TEST_CASE("the room long lines leave when shorter ones replace them is reclaimed", "[store]") {
  Store store;
  auto line = [](int i, std::string_view coords, int time) {
    return fmt::format("AT S +0.000000000 c{} {} {}", i, coords, time);
  };
  auto wide = "+1." + std::string(60'000, '1') + "+1";
  for (int i = 0; i < 500; ++i) store.apply(at(line(i, wide, 1)));
  CHECK(store.record_bytes() > 500 * 60'000);
  for (int i = 0; i < 500; ++i) store.apply(at(line(i, "+1+1", 2)));
  CHECK(store.record_bytes() < (8u << 20));  // compacted: not 30 MB for 14 KB of lines
  CHECK(store.find("c499")->at_line == line(499, "+1+1", 2));
}
