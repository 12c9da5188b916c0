// Which updates wait for which neighbors. An update (a client's IAMAT, or a PUT a neighbor
// sent) is confirmed once every link it went out on has acknowledged it or gone down, or when
// its deadline passes; whoever waits for it is then handed back to the caller. A link whose
// acknowledgements lag is sent PUTs all the same but waited for by nobody until it keeps up
// again, so that one slow neighbor cannot hold up every reply. No I/O, no clock of its own: the
// core feeds it events and acts on what comes back.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "metrics.hpp"

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

  // When a link lags, and when it is waited for again. The two limits differ (hysteresis), and
  // it takes a while of keeping up, so that a link near the limit does not flap.
  struct Patience {
    // A PUT unacknowledged this long makes its link lag: nobody waits for it any more.
    Clock::duration lagging_after = std::chrono::milliseconds(500);
    // An acknowledgement within this of its PUT is timely.
    Clock::duration timely = std::chrono::milliseconds(250);
    // A lagging link whose acknowledgements were all timely for this long is waited for again.
    Clock::duration keeping_up_for = std::chrono::seconds(1);
  };

  explicit Confirmations(std::size_t links);  // with the default Patience
  Confirmations(std::size_t links, Patience patience) : patience_(patience), links_(links) {}

  // One more link (a neighbor added by a config reload); returns its number. Numbers are never
  // reused: a removed link's number stays with it until its last event has been handled.
  std::size_t add_link();
  std::size_t links() const { return links_.size(); }

  // Starts an update for `waiter`, given up on at `deadline`. Follow with sent() for each link
  // it goes out on, then sealed().
  Update begin(Waiter waiter, Clock::time_point deadline);
  // The update goes out on `link` (0..links-1) as that link's next PUT; returns the PUT's id.
  // It waits for that link's acknowledgement unless the link lags.
  std::uint64_t sent(Update update, std::size_t link, Clock::time_point now);
  // No more links will be added. Returns whether the update waits for an acknowledgement; one
  // that went out on no link it waits for is done at once, and its waiter is not handed back.
  bool sealed(Update update);

  // The neighbor on `link` acknowledged its PUTs `first`..`last` at `now`.
  void acknowledged(std::size_t link, std::uint64_t first, std::uint64_t last,
                    Clock::time_point now, std::vector<Waiter>& confirmed);
  // The link went down: nothing it was sent will be acknowledged; its next PUT id is 1 again.
  // A lagging link still lags: the neighbor has to show it keeps up on the next connection.
  void link_down(std::size_t link, std::vector<Waiter>& confirmed);
  // Gives up on the updates whose deadline is `now` or past, and on the links that left a PUT
  // unacknowledged for Patience::lagging_after.
  void expire(Clock::time_point now, std::vector<Waiter>& confirmed);

  // When expire() has something to do next: the earliest deadline still pending, or the
  // moment a link would start lagging.
  std::optional<Clock::time_point> next_deadline() const;
  // When the oldest PUT on `link` still unacknowledged was sent.
  std::optional<Clock::time_point> oldest_unacknowledged(std::size_t link) const;
  // Updates still waiting.
  std::size_t pending() const { return pending_; }
  // PUTs sent on `link` and not yet acknowledged.
  std::size_t unacknowledged(std::size_t link) const;
  // Whether nobody waits for `link` now.
  bool lagging(std::size_t link) const { return links_[link].lagging; }
  // The time from each PUT to its acknowledgement, for the metrics.
  const Histogram& ack_latency() const { return ack_latency_; }

 private:
  static constexpr Update none = UINT64_MAX;

  struct Entry {
    Waiter waiter;
    Clock::time_point deadline;
    std::uint32_t links = 0;  // links it waits for, not yet heard from
    bool sealed = false;
    bool done = false;
  };
  struct Put {
    Update update = none;  // none once acknowledged
    Clock::time_point sent;
    bool waited = false;  // its update waits for this acknowledgement
  };
  struct Link {
    std::uint64_t first_id = 1;  // the id of puts.front()
    std::deque<Put> puts;        // from the oldest unacknowledged PUT
    bool lagging = false;
    std::optional<Clock::time_point> timely_since;  // every acknowledgement since was timely
  };

  Entry* find(Update update);
  void heard(Update update, std::vector<Waiter>& confirmed);
  void finish(Entry& entry, std::vector<Waiter>& confirmed);
  void drop_finished();
  // What an acknowledgement `delay` after its PUT says about the link.
  void timed(Link& link, Clock::duration delay, Clock::time_point now,
             std::vector<Waiter>& confirmed);
  void start_lagging(Link& link, std::vector<Waiter>& confirmed);
  bool keeps_up(const Link& link, Clock::time_point now) const;

  Patience patience_;
  std::deque<Entry> updates_;  // in order of begin(), so in order of deadline
  Update first_update_ = 0;    // the number of updates_.front()
  std::size_t pending_ = 0;
  std::vector<Link> links_;
  Histogram ack_latency_;
};

}  // namespace herd
