#include "confirmations.hpp"

#include <algorithm>
#include <utility>

namespace herd {

Confirmations::Update Confirmations::begin(Waiter waiter, Clock::time_point deadline) {
  updates_.push_back({waiter, deadline});
  ++pending_;
  return first_update_ + updates_.size() - 1;
}

std::uint64_t Confirmations::sent(Update update, std::size_t link, Clock::time_point now) {
  auto& l = links_[link];
  l.puts.push_back({update, now});
  if (auto entry = find(update)) ++entry->links;
  return l.first_id + l.puts.size() - 1;
}

void Confirmations::sealed(Update update, std::vector<Waiter>& confirmed) {
  auto entry = find(update);
  if (!entry) return;
  entry->sealed = true;
  if (entry->links == 0) finish(*entry, confirmed);
  drop_finished();
}

void Confirmations::acknowledged(std::size_t link, std::uint64_t first, std::uint64_t last,
                                 std::vector<Waiter>& confirmed) {
  auto& l = links_[link];
  auto end = l.first_id + l.puts.size();  // one past the last id sent
  first = std::max(first, l.first_id);
  last = std::min(last, end - 1);
  for (auto id = first; id <= last && id < end; ++id) {
    auto& put = l.puts[id - l.first_id];
    heard(std::exchange(put.update, none), confirmed);
  }
  while (!l.puts.empty() && l.puts.front().update == none) {
    l.puts.pop_front();
    ++l.first_id;
  }
  drop_finished();
}

void Confirmations::link_down(std::size_t link, std::vector<Waiter>& confirmed) {
  auto& l = links_[link];
  for (auto& put : l.puts) heard(put.update, confirmed);
  l = Link{};
  drop_finished();
}

void Confirmations::expire(Clock::time_point now, std::vector<Waiter>& confirmed) {
  for (auto& entry : updates_) {
    if (entry.deadline > now) break;
    if (!entry.done) finish(entry, confirmed);
  }
  drop_finished();
}

std::optional<Confirmations::Clock::time_point> Confirmations::next_deadline() const {
  for (const auto& entry : updates_)
    if (!entry.done) return entry.deadline;
  return std::nullopt;
}

std::optional<Confirmations::Clock::time_point> Confirmations::oldest_unacknowledged(
    std::size_t link) const {
  const auto& puts = links_[link].puts;
  if (puts.empty()) return std::nullopt;
  return puts.front().sent;
}

std::size_t Confirmations::unacknowledged(std::size_t link) const {
  const auto& puts = links_[link].puts;
  return static_cast<std::size_t>(
      std::count_if(puts.begin(), puts.end(), [](const Put& p) { return p.update != none; }));
}

Confirmations::Entry* Confirmations::find(Update update) {
  if (update == none || update < first_update_ || update - first_update_ >= updates_.size())
    return nullptr;
  return &updates_[update - first_update_];
}

// One of the links an update went out on is done with it.
void Confirmations::heard(Update update, std::vector<Waiter>& confirmed) {
  auto entry = find(update);
  if (!entry || entry->done) return;
  if (--entry->links == 0 && entry->sealed) finish(*entry, confirmed);
}

void Confirmations::finish(Entry& entry, std::vector<Waiter>& confirmed) {
  entry.done = true;
  --pending_;
  confirmed.push_back(entry.waiter);
}

void Confirmations::drop_finished() {
  while (!updates_.empty() && updates_.front().done) {
    updates_.pop_front();
    ++first_update_;
  }
}

}  // namespace herd
