// The location records of every client the herd has heard of. Not synchronized itself:
// the server touches it only from one strand, but for prefetch_from_anywhere().
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.hpp"

namespace herd {

struct Location {
  std::string at_line;  // "AT <origin> <diff> <client> <coords> <time>", exactly as first told
  Timestamp client_time;
  std::uint32_t client_at = 0, client_size = 0;  // where the client's name is in at_line

  std::string_view client() const {
    return std::string_view(at_line).substr(client_at, client_size);
  }
  Coordinates where() const;  // parsed when asked: only WHATSAT needs it
};

Location make_location(std::string_view origin, std::string_view diff, std::string_view client,
                       std::string_view coords, std::string_view time, Timestamp client_time);

// The record a client's newer message makes: a later client time wins; equal times are
// broken by the bytes of the AT line, so every server picks the same winner.
bool supersedes(const Location& candidate, const Location& current);

// Builds a Location from a parsed AT message.
Location location_of(const At& at);

class Store {
 public:
  enum class Outcome { inserted, replaced, unchanged };
  struct Applied {
    Outcome outcome;
    const Location& record;  // what the store now holds for the client
  };

  // The hash that places a client; callers that prefetch compute it once and pass it on.
  static std::uint32_t hash_of(std::string_view client);

  // Keeps `candidate` when it is new or supersedes what is held.
  Applied apply(Location candidate);
  Applied apply(Location candidate, std::uint32_t hash);

  const Location* find(std::string_view client) const { return find(client, hash_of(client)); }
  const Location* find(std::string_view client, std::uint32_t hash) const;

  // Starts loading the client's slot into the cache, so that a large table's miss overlaps
  // other work. Safe to call from any thread while the store changes on another: a client
  // session calls it as it parses, long before its batch reaches the store's strand. It reads
  // only atomics, and a prefetch never faults, even on a table that has just been replaced.
  void prefetch_from_anywhere(std::uint32_t hash) const;

  // Moves every record of this store into `other` (kept where it supersedes what `other`
  // holds), then takes `other`'s records as its own.
  void merge_into(Store& other);

  // Records in insertion order; indices are stable, so a catch-up can walk them in steps.
  std::size_t size() const { return records_.size(); }
  const Location& at(std::size_t index) const { return records_[index]; }
  // The bytes of the records' AT lines together.
  std::size_t at_line_bytes() const { return at_line_bytes_; }

 private:
  // Open addressing over (hash, record index): a probe touches one small array, and the
  // record itself only when the hashes match. Millions of clients stay cache-friendly. The
  // low 32 bits of the hash place a slot (tables stay far below 2^32 slots) and filter probes.
  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t record = empty;
  };
  static constexpr std::uint32_t empty = UINT32_MAX;

  Slot* slot_for(std::string_view client, std::uint32_t hash);
  const Slot* slot_for(std::string_view client, std::uint32_t hash) const;
  void grow();

  void publish_table();  // for prefetch_from_anywhere()

  std::vector<Slot> slots_ = std::vector<Slot>(1024);
  std::atomic<std::uintptr_t> table_address_{reinterpret_cast<std::uintptr_t>(slots_.data())};
  std::atomic<std::size_t> table_mask_{slots_.size() - 1};
  std::deque<Location> records_;
  std::size_t at_line_bytes_ = 0;
};

}  // namespace herd
