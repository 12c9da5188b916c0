#include "store.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <utility>

namespace herd {

Location make_location(std::string_view origin, std::string_view diff, std::string_view client,
                       std::string_view coords, std::string_view time, Timestamp client_time) {
  auto client_at = static_cast<std::uint32_t>(5 + origin.size() + diff.size());  // "AT o d "
  return Location{format_at(origin, diff, client, coords, time), client_time, client_at,
                  static_cast<std::uint32_t>(client.size())};
}

namespace {

// "AT origin diff client coords time": the coordinates follow the client.
Coordinates coordinates_after(std::string_view at_line, std::size_t client_end) {
  auto rest = at_line.substr(client_end + 1);
  return parse_coordinates(rest.substr(0, rest.find(' '))).value_or(Coordinates{});
}

}  // namespace

Coordinates Location::where() const { return coordinates_after(at_line, client_at + client_size); }

Coordinates Record::where() const { return coordinates_after(at_line, client_at + client_size); }

Timestamp Record::client_time() const {
  return parse_time(at_line.substr(at_line.rfind(' ') + 1)).value_or(Timestamp{});
}

Location Record::copy() const {
  return Location{std::string(at_line), client_time(), client_at, client_size, changed};
}

bool supersedes(const Location& candidate, const Record& current) {
  auto current_time = current.client_time();
  if (candidate.client_time != current_time) return candidate.client_time > current_time;
  return candidate.at_line > current.at_line;
}

Location location_of(const At& at) {
  return make_location(at.server, at.diff, at.client, at.coords, at.time, at.client_time);
}

std::size_t Store::Records::room_for(std::size_t line_bytes) {
  return (sizeof(Header) + line_bytes + 3) & ~std::size_t{3};
}

char* Store::Records::address(Place place) const {
  return chunks_[place / units_per_chunk].get() + std::size_t{place % units_per_chunk} * 4;
}

Store::Records::Header Store::Records::header(Place place) const {
  Header h;
  std::memcpy(&h, address(place), sizeof h);
  return h;
}

Record Store::Records::view(Place place) const {
  auto h = header(place);
  return Record{std::string_view(address(place) + sizeof(Header), h.size),
                std::uint64_t{h.changed_high} << 32 | h.changed_low, h.client_at, h.client_size};
}

void Store::Records::write(Place place, const Location& record, std::uint64_t changed,
                           std::size_t room) {
  Header h{static_cast<std::uint32_t>(changed), static_cast<std::uint32_t>(changed >> 32),
           static_cast<std::uint16_t>(record.at_line.size()),
           static_cast<std::uint16_t>(room - sizeof(Header)),
           static_cast<std::uint16_t>(record.client_at),
           static_cast<std::uint16_t>(record.client_size)};
  char* at = address(place);
  std::memcpy(at, &h, sizeof h);
  std::memcpy(at + sizeof h, record.at_line.data(), record.at_line.size());
}

Store::Records::Place Store::Records::reserve(std::size_t room) {
  if (fill_ + room > chunk_bytes) {
    if (chunks_.size() == std::size_t{UINT32_MAX} / units_per_chunk)
      throw std::length_error("the store's records fill 16 GiB");
    chunks_.emplace_back(new char[chunk_bytes]);  // not zeroed: pages are touched as filled
    dead_ += chunk_bytes - fill_;                 // the end of the last chunk stays unused
    used_ += chunk_bytes - fill_;
    fill_ = 0;
  }
  auto place = static_cast<Place>((chunks_.size() - 1) * units_per_chunk + fill_ / 4);
  fill_ += room;
  used_ += room;
  return place;
}

Store::Records::Place Store::Records::add(const Location& record, std::uint64_t changed) {
  auto room = room_for(record.at_line.size());
  auto place = reserve(room);
  write(place, record, changed, room);
  return place;
}

Store::Records::Place Store::Records::replace(Place place, const Location& record,
                                              std::uint64_t changed) {
  auto h = header(place);
  if (record.at_line.size() <= h.room) {
    write(place, record, changed, sizeof(Header) + h.room);
    dead_ = dead_ + room_for(h.size) - room_for(record.at_line.size());  // room left unused
    return place;
  }
  auto moved = add(record, changed);
  dead_ += room_for(h.size);  // with its unused room, counted already: all of it
  return moved;
}

void Store::Records::set_changed(Place place, std::uint64_t changed) {
  auto h = header(place);
  h.changed_low = static_cast<std::uint32_t>(changed);
  h.changed_high = static_cast<std::uint32_t>(changed >> 32);
  std::memcpy(address(place), &h, sizeof h);
}

void Store::Records::compact(std::deque<Place>& places) {
  Records fresh;
  std::vector<Place> moved;
  moved.reserve(places.size());
  for (auto place : places) {
    auto h = header(place);
    auto room = room_for(h.size);
    auto to = fresh.reserve(room);
    h.room = static_cast<std::uint16_t>(room - sizeof(Header));
    std::memcpy(fresh.address(to), &h, sizeof h);
    std::memcpy(fresh.address(to) + sizeof h, address(place) + sizeof h, h.size);
    moved.push_back(to);
  }
  // Nothing changed until every record was copied: running out of memory midway leaves the
  // records as they were.
  std::copy(moved.begin(), moved.end(), places.begin());
  *this = std::move(fresh);
}

std::uint32_t Store::hash_of(std::string_view client) {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(client));
}

const Store::Slot* Store::slot_for(std::string_view client, std::uint32_t hash) const {
  std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.record == empty) return &slot;
    if (slot.hash == hash && at(slot.record).client() == client) return &slot;
  }
}

Store::Slot* Store::slot_for(std::string_view client, std::uint32_t hash) {
  return const_cast<Slot*>(std::as_const(*this).slot_for(client, hash));
}

// Doubles the table once it is three quarters full: probes stay short (mostly within the
// cache line of the first slot), and the table costs 11 to 21 bytes a record.
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

namespace {

// The packed records keep a line's length in 16 bits; every way in refuses longer lines first.
void check_length(const Location& candidate) {
  if (candidate.at_line.size() > max_at_line_bytes)
    throw std::length_error("an AT line longer than max_at_line_bytes reached the store");
}

}  // namespace

std::size_t Store::keep(Slot* slot, std::uint32_t hash, const Location& candidate,
                        std::uint64_t changed) {
  if (slot->record == empty) {
    if ((places_.size() + 1) * 4 > slots_.size() * 3) {
      grow();
      slot = slot_for(candidate.client(), hash);
    }
    auto place = records_.add(candidate, changed);
    places_.push_back(place);  // should this throw, the record's bytes merely go unused
    *slot = {hash, static_cast<std::uint32_t>(places_.size() - 1)};
    at_line_bytes_ += candidate.at_line.size();
    return places_.size() - 1;
  }
  auto& place = places_[slot->record];
  auto replaced_bytes = records_.view(place).at_line.size();
  place = records_.replace(place, candidate, changed);
  at_line_bytes_ += candidate.at_line.size() - replaced_bytes;  // modulo 2^64
  if (records_.wants_compacting()) {
    try {
      records_.compact(places_);
    } catch (const std::bad_alloc&) {
      // Compacting is only a saving: the records stay where they are.
    }
  }
  return slot->record;
}

Store::Applied Store::apply(const Location& candidate) {
  return apply(candidate, hash_of(candidate.client()));
}

Store::Applied Store::apply(const Location& candidate, std::uint32_t hash) {
  check_length(candidate);
  Slot* slot = slot_for(candidate.client(), hash);
  auto outcome = Outcome::inserted;
  if (slot->record != empty) {
    auto current = at(slot->record);
    if (!supersedes(candidate, current)) return {Outcome::unchanged, current};
    outcome = Outcome::replaced;
  }
  auto index = keep(slot, hash, candidate, changes_ + 1);
  ++changes_;
  return {outcome, at(index)};
}

void Store::restore(const Location& candidate) {
  check_length(candidate);
  auto hash = hash_of(candidate.client());
  Slot* slot = slot_for(candidate.client(), hash);
  auto current = slot->record == empty ? std::optional<Record>() : at(slot->record);
  if (!current || supersedes(candidate, *current))
    keep(slot, hash, candidate, candidate.changed);
  else if (candidate.at_line == current->at_line && candidate.changed > current->changed)
    records_.set_changed(places_[slot->record], candidate.changed);
  changes_ = std::max(changes_, candidate.changed);
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

std::optional<Record> Store::find(std::string_view client, std::uint32_t hash) const {
  const Slot* slot = slot_for(client, hash);
  if (slot->record == empty) return std::nullopt;
  return at(slot->record);
}

void Store::merge_into(Store& other, const std::function<void(const Record&)>& kept) {
  for (std::size_t i = 0; i < size(); ++i) {
    auto [outcome, stored] = other.apply(at(i).copy());
    if (outcome != Outcome::unchanged && kept) kept(stored);
  }
  slots_.swap(other.slots_);
  std::swap(records_, other.records_);
  places_.swap(other.places_);
  std::swap(at_line_bytes_, other.at_line_bytes_);
  std::swap(changes_, other.changes_);
  publish_table();
  other.publish_table();
}

}  // namespace herd
