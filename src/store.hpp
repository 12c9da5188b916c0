// The location records of every client the herd has heard of. Not synchronized itself:
// the server touches it only from one strand.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "protocol.hpp"

namespace herd {

struct Location {
  std::string at_line;  // "AT <origin> <diff> <client> <coords> <time>", exactly as first told
  Timestamp client_time;
  Coordinates where;
};

// The record a client's newer message makes: a later client time wins; equal times are
// broken by the bytes of the AT line, so every server picks the same winner.
bool supersedes(const Location& candidate, const Location& current);

// Builds a Location from a parsed AT message.
Location location_of(const At& at);

class Store {
 public:
  enum class Outcome { inserted, replaced, unchanged };

  // Keeps `candidate` when it is new or supersedes what is held.
  Outcome apply(std::string_view client, Location candidate);

  const Location* find(std::string_view client) const;

  // Records in insertion order; indices are stable, so a catch-up can walk them in steps.
  std::size_t size() const { return records_.size(); }
  const Location& at(std::size_t index) const { return records_[index]; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> index_;
  std::deque<Location> records_;
};

}  // namespace herd
