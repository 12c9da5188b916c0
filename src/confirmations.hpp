// Which updates wait for which neighbors. An update (a client's IAMAT, or a PUT a neighbor
// sent) is confirmed once every link it went out on has acknowledged it or gone down, or when
// its deadline passes; whoever waits for it is then handed back to the caller. No I/O, no
// clock of its own: the core feeds it events and acts on what comes back.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace herd {

class Confirmations {
 public:
  using Clock = std::chrono::steady_clock;
  using Update = std::uint64_t;

  // Who waits: a connection (its owner number, given by the caller) and what it waits on
  // there (a client's reply number, or the id of a neighbor's PUT to acknowledge).
  struct Waiter {
    std::uint64_t owner = 0;
    std::uint64_t tag = 0;
    bool operator==(const Waiter&) const = default;
  };

  explicit Confirmations(std::size_t links) : links_(links) {}

  // Starts an update for `waiter`, given up on at `deadline`. Follow with sent() for each link
  // it goes out on, then sealed().
  Update begin(Waiter waiter, Clock::time_point deadline);
  // The update goes out on `link` (0..links-1) as that link's next PUT; returns the PUT's id.
  std::uint64_t sent(Update update, std::size_t link, Clock::time_point now);
  // No more links will be added; an update that went out nowhere is confirmed at once.
  void sealed(Update update, std::vector<Waiter>& confirmed);

  // The neighbor on `link` acknowledged its PUTs `first`..`last`.
  void acknowledged(std::size_t link, std::uint64_t first, std::uint64_t last,
                    std::vector<Waiter>& confirmed);
  // The link went down: nothing it was sent will be acknowledged; its next PUT id is 1 again.
  void link_down(std::size_t link, std::vector<Waiter>& confirmed);
  // Gives up on the updates whose deadline is `now` or past.
  void expire(Clock::time_point now, std::vector<Waiter>& confirmed);

  // The earliest deadline still pending.
  std::optional<Clock::time_point> next_deadline() const;
  // When the oldest PUT on `link` still unacknowledged was sent.
  std::optional<Clock::time_point> oldest_unacknowledged(std::size_t link) const;
  // Updates still waiting.
  std::size_t pending() const { return pending_; }
  // PUTs sent on `link` and not yet acknowledged.
  std::size_t unacknowledged(std::size_t link) const;

 private:
  static constexpr Update none = UINT64_MAX;

  struct Entry {
    Waiter waiter;
    Clock::time_point deadline;
    std::uint32_t links = 0;  // links it went out on, not yet heard from
    bool sealed = false;
    bool done = false;
  };
  struct Put {
    Update update = none;  // none once acknowledged
    Clock::time_point sent;
  };
  struct Link {
    std::uint64_t first_id = 1;  // the id of puts.front()
    std::deque<Put> puts;        // from the oldest unacknowledged PUT
  };

  Entry* find(Update update);
  void heard(Update update, std::vector<Waiter>& confirmed);
  void finish(Entry& entry, std::vector<Waiter>& confirmed);
  void drop_finished();

  std::deque<Entry> updates_;  // in order of begin(), so in order of deadline
  Update first_update_ = 0;    // the number of updates_.front()
  std::size_t pending_ = 0;
  std::vector<Link> links_;
};

}  // namespace herd
