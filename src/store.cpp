#include "store.hpp"

#include <algorithm>
#include <functional>
#include <utility>

namespace herd {

Location make_location(std::string_view origin, std::string_view diff, std::string_view client,
                       std::string_view coords, std::string_view time, Timestamp client_time) {
  auto client_at = static_cast<std::uint32_t>(5 + origin.size() + diff.size());  // "AT o d "
  return Location{format_at(origin, diff, client, coords, time), client_time, client_at,
                  static_cast<std::uint32_t>(client.size())};
}

Coordinates Location::where() const {
  // "AT origin diff client coords time": the coordinates follow the client.
  auto rest = std::string_view(at_line).substr(client_at + client_size + 1);
  return parse_coordinates(rest.substr(0, rest.find(' '))).value_or(Coordinates{});
}

bool supersedes(const Location& candidate, const Location& current) {
  if (candidate.client_time != current.client_time)
    return candidate.client_time > current.client_time;
  return candidate.at_line > current.at_line;
}

Location location_of(const At& at) {
  return make_location(at.server, at.diff, at.client, at.coords, at.time, at.client_time);
}

std::uint32_t Store::hash_of(std::string_view client) {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(client));
}

const Store::Slot* Store::slot_for(std::string_view client, std::uint32_t hash) const {
  std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.record == empty) return &slot;
    if (slot.hash == hash && records_[slot.record].client() == client) return &slot;
  }
}

Store::Slot* Store::slot_for(std::string_view client, std::uint32_t hash) {
  return const_cast<Slot*>(std::as_const(*this).slot_for(client, hash));
}

// Doubles the table; kept at most half full so that probes stay short.
void Store::grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  std::size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.record == empty) continue;
    std::size_t i = slot.hash & mask;
    while (slots_[i].record != empty) i = (i + 1) & mask;
    slots_[i] = slot;
  }
  publish_table();
}

Store::Applied Store::apply(Location candidate) {
  auto hash = hash_of(candidate.client());  // before the move
  return apply(std::move(candidate), hash);
}

Store::Applied Store::apply(Location candidate, std::uint32_t hash) {
  auto client = candidate.client();
  Slot* slot = slot_for(client, hash);
  if (slot->record != empty) {
    Location& current = records_[slot->record];
    if (!supersedes(candidate, current)) return {Outcome::unchanged, current};
    at_line_bytes_ += candidate.at_line.size() - current.at_line.size();  // modulo 2^64
    current = std::move(candidate);
    return {Outcome::replaced, current};
  }
  *slot = {hash, static_cast<std::uint32_t>(records_.size())};
  at_line_bytes_ += candidate.at_line.size();
  records_.push_back(std::move(candidate));
  if (records_.size() * 2 > slots_.size()) grow();
  return {Outcome::inserted, records_.back()};
}

void Store::prefetch_from_anywhere(std::uint32_t hash) const {
  // The address and the mask may come from two different tables while one grows: the
  // address computed is then merely useless, never dereferenced.
  auto table = table_address_.load(std::memory_order_relaxed);
  auto mask = table_mask_.load(std::memory_order_relaxed);
  __builtin_prefetch(reinterpret_cast<const void*>(table + (hash & mask) * sizeof(Slot)));
}

void Store::publish_table() {
  table_address_.store(reinterpret_cast<std::uintptr_t>(slots_.data()), std::memory_order_relaxed);
  table_mask_.store(slots_.size() - 1, std::memory_order_relaxed);
}

const Location* Store::find(std::string_view client, std::uint32_t hash) const {
  const Slot* slot = slot_for(client, hash);
  return slot->record == empty ? nullptr : &records_[slot->record];
}

void Store::merge_into(Store& other) {
  for (auto& record : records_) other.apply(std::move(record));
  slots_.swap(other.slots_);
  records_.swap(other.records_);
  std::swap(at_line_bytes_, other.at_line_bytes_);
  publish_table();
  other.publish_table();
}

}  // namespace herd
