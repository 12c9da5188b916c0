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
  if (!c.sealed(update)) confirmed.push_back(waiter);
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
  c.acknowledged(0, 1, 1, t0, confirmed);
  c.acknowledged(2, 1, 1, t0, confirmed);
  CHECK(confirmed.empty());
  c.acknowledged(1, 1, 1, t0, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{7, 1}});
  CHECK(c.pending() == 0);
}

TEST_CASE("an update that went out on no link waits for nothing", "[confirmations]") {
  Confirmations c(2);
  auto update = c.begin({1, 9}, t0 + 1s);
  CHECK_FALSE(c.sealed(update));  // the caller answers at once; nothing is handed back
  CHECK(c.pending() == 0);
  CHECK_FALSE(c.next_deadline());
}

TEST_CASE("one ranged acknowledgement confirms many updates, in any order", "[confirmations]") {
  Confirmations c(2);
  std::vector<Waiter> confirmed;
  for (std::uint64_t reply = 0; reply < 10; ++reply) start(c, {1, reply}, {0}, confirmed);
  c.acknowledged(0, 4, 6, t0, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 3}, {1, 4}, {1, 5}});
  CHECK(c.oldest_unacknowledged(0) == t0);
  confirmed.clear();
  c.acknowledged(0, 1, 3, t0, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 0}, {1, 1}, {1, 2}});
  CHECK(c.unacknowledged(0) == 4);
  confirmed.clear();
  c.acknowledged(0, 5, 12, t0, confirmed);  // overlaps what was heard, runs past what was sent
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
  c.acknowledged(0, 2, 1000000, t0, confirmed);
  c.acknowledged(0, 0, 0, t0, confirmed);
  c.acknowledged(0, 5, 3, t0, confirmed);  // an empty range
  CHECK(confirmed.empty());
  CHECK(c.pending() == 1);
}

TEST_CASE("a link going down counts as its acknowledgement and restarts its ids",
          "[confirmations]") {
  Confirmations c(2);
  std::vector<Waiter> confirmed;
  start(c, {1, 0}, {0, 1}, confirmed);
  start(c, {1, 1}, {1}, confirmed);
  c.acknowledged(0, 1, 1, t0, confirmed);
  CHECK(confirmed.empty());
  c.link_down(1, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 0}, {1, 1}});
  CHECK(c.pending() == 0);
  CHECK(start(c, {1, 2}, {1}, confirmed) == std::vector<std::uint64_t>{1});
}

TEST_CASE("the deadline confirms what the neighbors did not", "[confirmations]") {
  Confirmations c(1, {.lagging_after = 1h});  // only the deadlines count here
  std::vector<Waiter> confirmed;
  start(c, {1, 0}, {0}, confirmed, 0ms);
  start(c, {1, 1}, {0}, confirmed, 300ms);
  start(c, {2, 0}, {0}, confirmed, 600ms);
  CHECK(c.next_deadline() == t0 + 1s);
  c.acknowledged(0, 2, 2, t0 + 700ms, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 1}});
  confirmed.clear();
  c.expire(t0 + 999ms, confirmed);
  CHECK(confirmed.empty());
  c.expire(t0 + 1s, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{1, 0}});
  CHECK(c.next_deadline() == t0 + 1600ms);
  // A late acknowledgement for an update given up on confirms nothing twice.
  confirmed.clear();
  c.acknowledged(0, 1, 1, t0 + 1100ms, confirmed);
  CHECK(confirmed.empty());
  // The PUT still unacknowledged on the link is the oldest one not heard of.
  CHECK(c.oldest_unacknowledged(0) == t0 + 600ms);
  c.expire(t0 + 2s, confirmed);
  CHECK(confirmed == std::vector<Waiter>{{2, 0}});
  CHECK(c.next_deadline() == t0 + 600ms + 1h);  // when that PUT would make its link lag
  CHECK(c.pending() == 0);
  CHECK(c.unacknowledged(0) == 1);  // the neighbor still owes it; the watchdog looks here
}

namespace {

constexpr int never = -1;

// Sends an update every `every` on links 0 and 1, from t0 on. Link 1 acknowledges each after
// 5 ms; link 0 after ack_ms[i] (or never). Runs expire() whenever next_deadline() says, as the
// herd does, in steps of 1 ms. Returns how long each update waited for its confirmation.
std::vector<int> waits(const std::vector<int>& ack_ms, std::chrono::milliseconds every = 150ms) {
  Confirmations c(2);
  std::vector<Waiter> confirmed;
  std::vector<int> waited(ack_ms.size(), never);
  std::vector<std::uint64_t> ids[2];
  auto puts = static_cast<int>(ack_ms.size());
  auto sent_at = [&](int i) { return static_cast<int>(i * every.count()); };
  for (int t = 0; t <= sent_at(puts) + 3000; ++t) {
    auto now = t0 + std::chrono::milliseconds(t);
    for (int i = 0; i < static_cast<int>(ids[0].size()); ++i) {
      if (sent_at(i) + 5 == t) c.acknowledged(1, ids[1][i], ids[1][i], now, confirmed);
      if (ack_ms[i] != never && sent_at(i) + ack_ms[i] == t)
        c.acknowledged(0, ids[0][i], ids[0][i], now, confirmed);
    }
    if (auto deadline = c.next_deadline(); deadline && *deadline <= now) c.expire(now, confirmed);
    if (t % every.count() == 0 && t / every.count() < puts) {
      auto i = static_cast<std::uint64_t>(t / every.count());
      auto update = c.begin({1, i}, now + 1s);
      ids[0].push_back(c.sent(update, 0, now));
      ids[1].push_back(c.sent(update, 1, now));
      if (!c.sealed(update)) confirmed.push_back({1, i});
    }
    for (auto waiter : confirmed) waited[waiter.tag] = t - sent_at(static_cast<int>(waiter.tag));
    confirmed.clear();
  }
  return waited;
}

}  // namespace

TEST_CASE("a neighbor whose acknowledgements lag is not waited for until it keeps up",
          "[confirmations]") {
  // One update every 150 ms; the other neighbor acknowledges in 5 ms, so an update that does
  // not wait for the lagging one waits 5 ms. A PUT unacknowledged for 500 ms makes its link
  // lag; it is waited for again once all its acknowledgements were within 250 ms for 1 s.
  struct Row {
    const char* what;
    std::vector<int> ack_ms;  // when the neighbor acknowledges each update's PUT
    std::vector<int> waited;  // how long each update waits
  };
  std::vector<Row> rows = {
      {"keeps up", {20, 20, 20, 20}, {20, 20, 20, 20}},
      {"slow but under the limit", {450, 450, 450, 450}, {450, 450, 450, 450}},
      {"2.5 s behind: waited for until a PUT is 500 ms old, then not",
       {2500, 2500, 2500, 2500, 2500, 2500},
       {500, 350, 200, 50, 5, 5}},
      {"hung", {never, never, never, never, never}, {500, 350, 200, 50, 5}},
      {"one late acknowledgement, then timely ones for 1 s before it is waited for again",
       {600, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20},
       // the first timely one after the late one (at 600 ms) comes at 620 ms: lagging until
       // an acknowledgement at 1,620 ms or later, the one at 1,670 ms
       {500, 20, 20, 20, 5, 5, 5, 5, 5, 5, 5, 5, 20, 20}},
      {"lagging, then 300 ms behind: not timely, so still not waited for",
       {600, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300},
       {500, 300, 200, 50, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    CHECK(waits(row.ack_ms) == row.waited);
  }
}

TEST_CASE("a lagging neighbor still lags on its next connection", "[confirmations]") {
  Confirmations c(1);
  std::vector<Waiter> confirmed;
  start(c, {1, 0}, {0}, confirmed);
  c.expire(t0 + 500ms, confirmed);
  CHECK(c.lagging(0));
  CHECK(confirmed == std::vector<Waiter>{{1, 0}});
  confirmed.clear();
  c.link_down(0, confirmed);
  CHECK(confirmed.empty());  // handed back already
  CHECK(c.lagging(0));
  // Its PUTs are numbered from 1 again, and nobody waits for them...
  CHECK(start(c, {1, 1}, {0}, confirmed, 1s) == std::vector<std::uint64_t>{1});
  CHECK(confirmed == std::vector<Waiter>{{1, 1}});
  CHECK_FALSE(c.next_deadline());
  // ...until they have been acknowledged in time for a second.
  start(c, {1, 2}, {0}, confirmed, 2s);
  c.acknowledged(0, 1, 1, t0 + 1s + 10ms, confirmed);
  c.acknowledged(0, 2, 2, t0 + 2s + 10ms, confirmed);
  CHECK_FALSE(c.lagging(0));
  confirmed.clear();
  start(c, {1, 3}, {0}, confirmed, 3s);
  CHECK(confirmed.empty());
  CHECK(c.pending() == 1);
}

TEST_CASE("a link added later gets the next number and waits like the others", "[confirmations]") {
  Confirmations c(1);
  std::vector<Waiter> confirmed;
  CHECK(c.add_link() == 1);
  CHECK(c.links() == 2);
  auto ids = start(c, {7, 1}, {0, 1}, confirmed);
  CHECK(ids == std::vector<std::uint64_t>{1, 1});
  c.acknowledged(0, 1, 1, t0, confirmed);
  CHECK(confirmed.empty());
  c.link_down(1, confirmed);  // a removed neighbor's link goes down: nobody waits for it
  CHECK(confirmed == std::vector<Waiter>{{7, 1}});
}
