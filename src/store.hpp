// The location records of every client the herd has heard of. Not synchronized itself:
// the server touches it only from one strand, but for prefetch_from_anywhere().
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.hpp"

namespace herd {

struct Location {
  std::string at_line;  // "AT <origin> <diff> <client> <coords> <time>", exactly as first told
  Timestamp client_time;
  std::uint32_t client_at = 0, client_size = 0;  // where the client's name is in at_line
  // The number of the change that stored it on this server: its catch-ups send the records
  // changed after the number a neighbor says it holds (docs/protocol.md, Catch-up).
  std::uint64_t changed = 0;

  std::string_view client() const {
    return std::string_view(at_line).substr(client_at, client_size);
  }
  Coordinates where() const;  // parsed when asked: only WHATSAT needs it
};

// A record as the store holds it, seen in place: valid until the store next changes.
struct Record {
  std::string_view at_line;
  std::uint64_t changed = 0;
  std::uint16_t client_at = 0, client_size = 0;

  std::string_view client() const { return at_line.substr(client_at, client_size); }
  Coordinates where() const;
  Timestamp client_time() const;  // parsed from the line: only a replacement needs it
  Location copy() const;
};

Location make_location(std::string_view origin, std::string_view diff, std::string_view client,
                       std::string_view coords, std::string_view time, Timestamp client_time);

// The record a client's newer message makes: a later client time wins; equal times are
// broken by the bytes of the AT line, so every server picks the same winner.
bool supersedes(const Location& candidate, const Record& current);

// Builds a Location from a parsed AT message.
Location location_of(const At& at);

class Store {
 public:
  enum class Outcome { inserted, replaced, unchanged };
  struct Applied {
    Outcome outcome;
    Record record;  // what the store now holds for the client
  };

  // The hash that places a client; callers that prefetch compute it once and pass it on.
  static std::uint32_t hash_of(std::string_view client);

  // Keeps `candidate` when it is new or supersedes what is held, numbering the change: the
  // record's `changed` becomes changes() + 1, and so does changes().
  Applied apply(const Location& candidate);
  Applied apply(const Location& candidate, std::uint32_t hash);
  // A record read back from the file, with the number it was stored with; the same record
  // read twice keeps the greater number. changes() becomes at least that number.
  void restore(const Location& candidate);
  std::uint64_t changes() const { return changes_; }
  // The next change is numbered after `last` at least.
  void skip_changes_to(std::uint64_t last) { changes_ = std::max(changes_, last); }

  std::optional<Record> find(std::string_view client) const { return find(client, hash_of(client)); }
  std::optional<Record> find(std::string_view client, std::uint32_t hash) const;

  // Starts loading the client's slot into the cache, so that a large table's miss overlaps
  // other work. Safe to call from any thread while the store changes on another: a client
  // session calls it as it parses, long before its batch reaches the store's strand. It reads
  // only atomics, and a prefetch never faults, even on a table that has just been replaced.
  void prefetch_from_anywhere(std::uint32_t hash) const;

  // Moves every record of this store into `other` (kept where it supersedes what `other`
  // holds, numbered as a change of `other`'s, and handed to `kept`), then takes `other`'s
  // records and change numbers as its own.
  void merge_into(Store& other, const std::function<void(const Record&)>& kept = {});

  // Records in insertion order; indices are stable, so a catch-up can walk them in steps.
  std::size_t size() const { return places_.size(); }
  Record at(std::size_t index) const { return records_.view(places_[index]); }
  // The bytes of the records' AT lines together.
  std::size_t at_line_bytes() const { return at_line_bytes_; }
  // Bytes the records take in memory, and how many of those are unused: left by records that
  // moved, or room a record's shorter line leaves.
  std::size_t record_bytes() const { return records_.used(); }
  std::size_t dead_bytes() const { return records_.dead(); }

 private:
  // Open addressing over (hash, record index): a probe touches one small array, and the
  // record itself only when the hashes match. Millions of clients stay cache-friendly. The
  // low 32 bits of the hash place a slot (tables stay far below 2^32 slots) and filter probes.
  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t record = empty;
  };
  static constexpr std::uint32_t empty = UINT32_MAX;

  // The records themselves, packed one after another in large chunks: a small header, then
  // the AT line, with room to spare up to the next 4 bytes. A record replaced by a longer one
  // than its room moves to the end; once a quarter of the bytes are left unused so (or by
  // shorter lines in a record's room), the live records are copied to fresh chunks. About 16 bytes a record besides its line, where a
  // std::string per record cost a 32-byte string plus a heap block rounded up to its size class.
  class Records {
   public:
    using Place = std::uint32_t;  // in 4-byte units: chunk number, then the offset within it

    Place add(const Location& record, std::uint64_t changed);
    // Writes `record` over the one at `place` when it fits there, else moves it to the end.
    Place replace(Place place, const Location& record, std::uint64_t changed);
    void set_changed(Place place, std::uint64_t changed);
    Record view(Place place) const;
    // Copies the records of `places` to fresh chunks, in that order, updating `places`.
    void compact(std::deque<Place>& places);
    bool wants_compacting() const { return dead_ > used_ / 4 && dead_ > chunk_bytes; }
    std::size_t used() const { return used_; }
    std::size_t dead() const { return dead_; }

   private:
    struct Header {
      std::uint32_t changed_low, changed_high;
      std::uint16_t size, room, client_at, client_size;
    };
    static constexpr std::size_t chunk_bytes = std::size_t{4} << 20;
    static constexpr std::size_t units_per_chunk = chunk_bytes / 4;
    static std::size_t room_for(std::size_t line_bytes);  // header included, in bytes
    Place reserve(std::size_t room);
    char* address(Place place) const;
    Header header(Place place) const;
    void write(Place place, const Location& record, std::uint64_t changed, std::size_t room);

    std::vector<std::unique_ptr<char[]>> chunks_;
    std::size_t fill_ = chunk_bytes;  // bytes used in the last chunk
    std::size_t used_ = 0, dead_ = 0;
  };

  Slot* slot_for(std::string_view client, std::uint32_t hash);
  const Slot* slot_for(std::string_view client, std::uint32_t hash) const;
  // Puts `candidate` in the slot's record, new or over what it holds, numbered `changed`;
  // returns its index. The counts change only once it is in place: should adding it throw
  // (out of memory, or the records filling 16 GiB), the store is as it was.
  std::size_t keep(Slot* slot, std::uint32_t hash, const Location& candidate,
                   std::uint64_t changed);
  void grow();

  void publish_table();  // for prefetch_from_anywhere()

  std::vector<Slot> slots_ = std::vector<Slot>(1024);
  std::atomic<std::uintptr_t> table_address_{reinterpret_cast<std::uintptr_t>(slots_.data())};
  std::atomic<std::size_t> table_mask_{slots_.size() - 1};
  Records records_;
  std::deque<Records::Place> places_;  // record index -> where it is
  std::size_t at_line_bytes_ = 0;
  std::uint64_t changes_ = 0;
};

}  // namespace herd
