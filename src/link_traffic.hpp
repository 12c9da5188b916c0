// What crossed a link to a neighbor, summed up for the log: bulk traffic between servers (a
// catch-up of a million records, a flood of PUTs and ACKs) is a line every few seconds per
// link, not a line per record. No I/O, no clock of its own: the time is an argument.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace herd {

struct TrafficCount {
  std::uint64_t records = 0;  // ATs and PUTs
  std::uint64_t puts = 0;     // of the records
  std::uint64_t acks = 0;     // ACK lines
  std::uint64_t bytes = 0;
};

class LinkTraffic {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr auto interval = std::chrono::seconds(5);

  explicit LinkTraffic(Clock::time_point now) : since_(now) {}

  TrafficCount in, out;
  std::uint64_t changed = 0;  // records received that changed the store
  std::uint64_t refused = 0;  // lines and records received that were refused

  // One line for what was counted since the last summary, once `interval` has passed since
  // then (or at once, with `final`), and only when something was; counting starts afresh.
  std::optional<std::string> summary(Clock::time_point now, bool final = false);

 private:
  Clock::time_point since_;
};

}  // namespace herd
