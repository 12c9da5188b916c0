#include <chrono>
#include <vector>

#include <catch2/catch.hpp>

#include "confirmations.hpp"

using namespace std::chrono_literals;
using herd::Confirmations;
using Waiter = Confirmations::Waiter;

namespace {

const auto t0 = Confirmations::Clock::time_point{} + 1h;

// Starts an update for `waiter` that goes out on `links`; returns its PUT ids, one per link.
std::vector<std::uint64_t> start(Confirmations& c, Waiter waiter, std::vector<std::size_t> links,
                                 std::vector<Waiter>& confirmed,
                                 std::chrono::milliseconds at = 0ms) {
  auto update = c.begin(waiter, t0 + at + 1s);
  std::vector<std::uint64_t> ids;
  for (auto link : links) ids.push_back(c.sent(update, link, t0 + at));
  c.sealed(update, confirmed);
  return ids;
}

}  // namespace

TEST_CASE("an update is confirmed once every link it went out on has acknowledged it",
          "[confirmations]") {
  Confirmations c(3);
  std::vector<Waiter> confirmed;
  auto ids = start(c, {7, 1}, {0, 1, 2}, confirmed);
  CHECK(ids == std::vector<std::uint64_t>{1, 1, 1});
  CHECK(c.pending() == 1);
  c.acknowledged(0, 1, 1, confirmed);
  c.acknowledged(2, 1, 1, confirmed);
  CHECK(confirmed.empty());
  c.acknowledged(1, 1, 1, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{7, 1}});
  CHECK(c.pending() == 0);
}

TEST_CASE("an update that went out on no link is confirmed at once", "[confirmations]") {
  Confirmations c(2);
  std::vector<Waiter> confirmed;
  start(c, {1, 9}, {}, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 9}});
  CHECK(c.pending() == 0);
}

TEST_CASE("one ranged acknowledgement confirms many updates, in any order", "[confirmations]") {
  Confirmations c(2);
  std::vector<Waiter> confirmed;
  for (std::uint64_t reply = 0; reply < 10; ++reply) start(c, {1, reply}, {0}, confirmed);
  c.acknowledged(0, 4, 6, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 3}, {1, 4}, {1, 5}});
  CHECK(c.oldest_unacknowledged(0) == t0);
  confirmed.clear();
  c.acknowledged(0, 1, 3, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 0}, {1, 1}, {1, 2}});
  CHECK(c.unacknowledged(0) == 4);
  confirmed.clear();
  c.acknowledged(0, 5, 12, confirmed);  // overlaps what was heard, runs past what was sent
  CHECK(confirmed == std::vector<Waiter>{{1, 6}, {1, 7}, {1, 8}, {1, 9}});
  CHECK(c.pending() == 0);
  CHECK_FALSE(c.oldest_unacknowledged(0));
  // The next PUT on the link takes the next id.
  CHECK(start(c, {1, 10}, {0, 1}, confirmed) == std::vector<std::uint64_t>{11, 1});
}

TEST_CASE("acknowledgements for ids never sent change nothing", "[confirmations]") {
  Confirmations c(1);
  std::vector<Waiter> confirmed;
  start(c, {1, 0}, {0}, confirmed);
  c.acknowledged(0, 2, 1000000, confirmed);
  c.acknowledged(0, 0, 0, confirmed);
  c.acknowledged(0, 5, 3, confirmed);  // an empty range
  CHECK(confirmed.empty());
  CHECK(c.pending() == 1);
}

TEST_CASE("a link going down counts as its acknowledgement and restarts its ids",
          "[confirmations]") {
  Confirmations c(2);
  std::vector<Waiter> confirmed;
  start(c, {1, 0}, {0, 1}, confirmed);
  start(c, {1, 1}, {1}, confirmed);
  c.acknowledged(0, 1, 1, confirmed);
  CHECK(confirmed.empty());
  c.link_down(1, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 0}, {1, 1}});
  CHECK(c.pending() == 0);
  CHECK(start(c, {1, 2}, {1}, confirmed) == std::vector<std::uint64_t>{1});
}

TEST_CASE("the deadline confirms what the neighbors did not", "[confirmations]") {
  Confirmations c(1);
  std::vector<Waiter> confirmed;
  start(c, {1, 0}, {0}, confirmed, 0ms);
  start(c, {1, 1}, {0}, confirmed, 300ms);
  start(c, {2, 0}, {0}, confirmed, 600ms);
  CHECK(c.next_deadline() == t0 + 1s);
  c.acknowledged(0, 2, 2, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 1}});
  confirmed.clear();
  c.expire(t0 + 999ms, confirmed);
  CHECK(confirmed.empty());
  c.expire(t0 + 1s, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 0}});
  CHECK(c.next_deadline() == t0 + 1600ms);
  // A late acknowledgement for an update given up on confirms nothing twice.
  confirmed.clear();
  c.acknowledged(0, 1, 1, confirmed);
  CHECK(confirmed.empty());
  // The PUT still unacknowledged on the link is the oldest one not heard of.
  CHECK(c.oldest_unacknowledged(0) == t0 + 600ms);
  c.expire(t0 + 2s, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{2, 0}});
  CHECK_FALSE(c.next_deadline());
  CHECK(c.pending() == 0);
  CHECK(c.unacknowledged(0) == 1);  // the neighbor still owes it; the watchdog looks here
}
