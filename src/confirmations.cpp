#include "confirmations.hpp"

#include <algorithm>
#include <utility>

namespace herd {

Confirmations::Confirmations(std::size_t links) : Confirmations(links, Patience{}) {}

std::size_t Confirmations::add_link() {
  links_.emplace_back();
  return links_.size() - 1;
}

Confirmations::Update Confirmations::begin(Waiter waiter, Clock::time_point deadline) {
  updates_.push_back({waiter, deadline});
  ++pending_;
  return first_update_ + updates_.size() - 1;
}

std::uint64_t Confirmations::sent(Update update, std::size_t link, Clock::time_point now) {
  auto& l = links_[link];
  auto entry = find(update);
  bool waited = entry && !l.lagging;
  l.puts.push_back({update, now, waited});
  if (waited) ++entry->links;
  return l.first_id + l.puts.size() - 1;
}

bool Confirmations::sealed(Update update) {
  auto entry = find(update);
  if (!entry) return false;
  entry->sealed = true;
  if (entry->links > 0 || entry->done) return true;
  entry->done = true;  // nobody to wait for: the caller answers at once
  --pending_;
  drop_finished();
  return false;
}

void Confirmations::acknowledged(std::size_t link, std::uint64_t first, std::uint64_t last,
                                 Clock::time_point now, std::vector<Waiter>& confirmed) {
  auto& l = links_[link];
  auto end = l.first_id + l.puts.size();  // one past the last id sent
  first = std::max(first, l.first_id);
  last = std::min(last, end - 1);
  for (auto id = first; id <= last && id < end; ++id) {
    auto& put = l.puts[id - l.first_id];
    if (put.update == none) continue;
    auto update = std::exchange(put.update, none);
    if (std::exchange(put.waited, false)) heard(update, confirmed);
    timed(l, now - put.sent, now, confirmed);
    ack_latency_.observe(std::chrono::duration<double>(now - put.sent).count());
  }
  while (!l.puts.empty() && l.puts.front().update == none) {
    l.puts.pop_front();
    ++l.first_id;
  }
  if (l.lagging && keeps_up(l, now)) l.lagging = false;
  drop_finished();
}

void Confirmations::link_down(std::size_t link, std::vector<Waiter>& confirmed) {
  auto& l = links_[link];
  for (auto& put : l.puts)
    if (put.waited) heard(put.update, confirmed);
  auto lagging = l.lagging;
  l = Link{};
  l.lagging = lagging;
  drop_finished();
}

void Confirmations::expire(Clock::time_point now, std::vector<Waiter>& confirmed) {
  for (auto& entry : updates_) {
    if (entry.deadline > now) break;
    if (!entry.done) finish(entry, confirmed);
  }
  for (auto& l : links_)
    if (!l.lagging && !l.puts.empty() && now - l.puts.front().sent >= patience_.lagging_after)
      start_lagging(l, confirmed);
  drop_finished();
}

std::optional<Confirmations::Clock::time_point> Confirmations::next_deadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& entry : updates_) {
    if (!entry.done) {
      next = entry.deadline;
      break;
    }
  }
  for (const auto& l : links_) {
    if (l.lagging || l.puts.empty()) continue;
    auto lags_at = l.puts.front().sent + patience_.lagging_after;
    if (!next || lags_at < *next) next = lags_at;
  }
  return next;
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

void Confirmations::timed(Link& link, Clock::duration delay, Clock::time_point now,
                          std::vector<Waiter>& confirmed) {
  if (delay <= patience_.timely) {
    if (!link.timely_since) link.timely_since = now;
    return;
  }
  link.timely_since.reset();
  if (!link.lagging && delay >= patience_.lagging_after) start_lagging(link, confirmed);
}

// Nobody waits for the link any more, not even the updates already sent on it.
void Confirmations::start_lagging(Link& link, std::vector<Waiter>& confirmed) {
  link.lagging = true;
  link.timely_since.reset();
  for (auto& put : link.puts)
    if (std::exchange(put.waited, false)) heard(put.update, confirmed);
}

// Timely for long enough, with nothing older than a timely acknowledgement still owed.
bool Confirmations::keeps_up(const Link& link, Clock::time_point now) const {
  return link.timely_since && now - *link.timely_since >= patience_.keeping_up_for &&
         (link.puts.empty() || now - link.puts.front().sent <= patience_.timely);
}

void Confirmations::drop_finished() {
  while (!updates_.empty() && updates_.front().done) {
    updates_.pop_front();
    ++first_update_;
  }
}

}  // namespace herd
