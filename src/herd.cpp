#include "herd.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace herd {
namespace {
using namespace std::chrono_literals;

// A client waits at most this long for its update to be confirmed by the herd before it is
// answered anyway; a neighbor that stays silent much longer loses its link (see peer.cpp).
constexpr auto confirmation_wait = 1s;
// A neighbor that leaves a PUT unacknowledged for half of that is not waited for, until all its
// acknowledgements have come within 250 ms for a second: one slow neighbor would otherwise
// hold every reply for the whole second.
constexpr Confirmations::Patience patience{500ms, 250ms, 1s};
}  // namespace

Herd::Herd(asio::io_context& io, const Config& config, const ServerConfig& self, Log& log,
           asio::ssl::context* tls)
    : self_(self),
      max_clock_skew_ms_(config.clients.max_clock_skew_ms),
      log_(log),
      tls_(tls),
      strand_(asio::make_strand(io)),
      confirmations_(self.neighbors.size(), patience),
      lagging_(self.neighbors.size(), false),
      deadline_timer_(strand_) {
  PeerHost& host = *this;
  for (const auto& name : self.neighbors) {
    const auto& neighbor = config.server(name);
    links_.push_back(std::make_shared<PeerLink>(host, strand_, links_.size(), neighbor,
                                                self.name < neighbor.name));
  }
}

awaitable<void> Herd::relink(ReloadPlan plan) {
  co_await asio::co_spawn(strand_, change_links(std::move(plan)), asio::use_awaitable);
}

void Herd::reload_refused() {
  asio::dispatch(strand_, [this] { ++reloads_refused_; });
}

awaitable<void> Herd::change_links(ReloadPlan plan) {
  ++reloads_ok_;
  for (const auto& name : plan.removed) {
    auto link = std::find_if(links_.begin(), links_.end(),
                             [&](const auto& l) { return l->name() == name; });
    if (link == links_.end()) continue;
    bool moved = std::find(plan.moved.begin(), plan.moved.end(), name) != plan.moved.end();
    log_.event("peer " + name, moved ? "its address changed in the config; relinking"
                                     : "removed from the config; closing the link");
    (*link)->stop(moved ? "its address changed in the config" : "removed from the config");
    links_.erase(link);
  }
  for (const auto& neighbor : plan.added) add_link(neighbor);
  co_return;
}

// A neighbor added by a reload: dialed (or accepted) as at start, and caught up when linked.
void Herd::add_link(const ServerConfig& neighbor) {
  PeerHost& host = *this;
  auto link = std::make_shared<PeerLink>(host, strand_, confirmations_.add_link(), neighbor,
                                         self_.name < neighbor.name);
  lagging_.push_back(false);
  auto at = std::find_if(links_.begin(), links_.end(),
                         [&](const auto& l) { return l->name() > neighbor.name; });
  links_.insert(at, link);
  log_.event("peer " + neighbor.name, fmt::format("added by the config; linking with it at {}",
                                                  address_text(neighbor.host, neighbor.peer_port)));
  if (!stopped_) link->start();
}

Herd::~Herd() = default;

void Herd::start() {
  asio::dispatch(strand_, [this] {
    for (auto& link : links_) link->start();
  });
}

void Herd::stop() {
  asio::dispatch(strand_, [this] {
    stopped_ = true;
    for (auto& link : links_) link->stop();
    for (auto& [number, client] : clients_)
      if (auto listener = client.lock()) listener->stop();
  });
}

bool Herd::is_neighbor(std::string_view server) const {
  return std::any_of(links_.begin(), links_.end(),
                     [server](const auto& link) { return link->name() == server; });
}

void Herd::join(std::uint64_t client, std::weak_ptr<ConfirmationListener> listener) {
  asio::dispatch(strand_, [this, client, listener = std::move(listener)]() mutable {
    clients_.emplace(client, std::move(listener));
  });
}

void Herd::leave(std::uint64_t client) {
  asio::dispatch(strand_, [this, client] { clients_.erase(client); });
}

PeerLink* Herd::link_named(std::string_view server) const {
  auto link = std::find_if(links_.begin(), links_.end(),
                           [&](const auto& l) { return l->name() == server; });
  return link == links_.end() ? nullptr : link->get();
}

void Herd::attach_peer(const std::string& server, tcp::socket socket, std::string buffered) {
  if (auto link = link_named(server)) link->accept(std::move(socket), std::move(buffered));
}

void Herd::attach_peer(const std::string& server, TlsStream stream, std::string buffered) {
  if (auto link = link_named(server)) link->accept(std::move(stream), std::move(buffered));
}

void Herd::apply(std::vector<StoreOp>& ops, std::uint64_t client) {
  auto now = Clock::now();
  for (auto& op : ops) {
    if (op.kind == StoreOp::Kind::lookup) {
      if (auto found = store_.find(op.client, op.client_hash)) {
        op.location = *found;
        op.found = true;
      }
      continue;
    }
    auto [outcome, kept] = store_.apply(std::move(op.location), op.client_hash);
    if (outcome != Store::Outcome::unchanged)
      op.waiting = flood(kept, nullptr, Confirmations::Waiter{client, op.reply}, now);
  }
  deliver();
}

bool Herd::flood(const Location& record, const PeerLink* from,
                 std::optional<Confirmations::Waiter> waiter, Clock::time_point now) {
  if (!waiter) {
    for (auto& link : links_)
      if (link.get() != from) link->at(record);
    return false;
  }
  auto goes_out = [from](const auto& link) { return link.get() != from && link->up(); };
  if (std::none_of(links_.begin(), links_.end(), goes_out)) return false;
  auto update = confirmations_.begin(*waiter, now + confirmation_wait);
  for (auto& link : links_)
    if (goes_out(link)) {
      link->put(confirmations_.sent(update, link->number(), now), record);
      ++puts_sent_;
    }
  // PUTs go to lagging neighbors too: their acknowledgements show when they keep up again.
  auto waits = confirmations_.sealed(update);
  if (!deadline_watch_running_) {
    deadline_watch_running_ = true;
    asio::co_spawn(strand_, give_up_late_confirmations(), asio::detached);
  }
  return waits;
}

bool Herd::received(PeerLink& link, Location record, std::optional<std::uint64_t> put_id,
                    Timestamp at) {
  if (too_far_ahead(record.client_time, at, max_clock_skew_ms_)) {
    // Acknowledged all the same: the neighbor need not wait for what will never be stored.
    log_.warning("peer " + link.name(),
                 fmt::format("refused a record more than {} ms ahead of this server's clock: {}",
                             max_clock_skew_ms_, record.at_line));
    if (put_id) link.confirm(*put_id);
    return false;
  }
  auto [outcome, kept] = store_.apply(std::move(record));
  bool waiting = false;
  if (outcome != Store::Outcome::unchanged) {
    std::optional<Confirmations::Waiter> waiter;
    if (put_id) waiter = Confirmations::Waiter{link.owner(), *put_id};
    waiting = flood(kept, &link, waiter, Clock::now());
  }
  if (put_id && !waiting) link.confirm(*put_id);
  return outcome != Store::Outcome::unchanged;
}

void Herd::acknowledged(PeerLink& link, std::uint64_t first, std::uint64_t last) {
  ++acks_received_;
  confirmations_.acknowledged(link.number(), first, last, Clock::now(), confirmed_);
}

void Herd::link_down(PeerLink& link) {
  confirmations_.link_down(link.number(), confirmed_);
  deliver();
}

std::optional<Herd::Clock::time_point> Herd::oldest_unacknowledged(const PeerLink& link) const {
  return confirmations_.oldest_unacknowledged(link.number());
}

awaitable<HerdSnapshot> Herd::snapshot() {
  co_return co_await asio::co_spawn(strand_, gather_snapshot(), asio::use_awaitable);
}

awaitable<HerdSnapshot> Herd::gather_snapshot() {
  HerdSnapshot s;
  s.records = store_.size();
  s.clients = clients_.size();
  for (const auto& link : links_)
    s.links.push_back({link->name(), link->up(), link->catch_up_records_sent()});
  s.puts_sent = puts_sent_;
  s.acks_received = acks_received_;
  s.ack_latency = confirmations_.ack_latency();
  s.reloads_ok = reloads_ok_;
  s.reloads_refused = reloads_refused_;
  co_return s;
}

void Herd::deliver() {
  // Grouped by who waits, so that each client session is woken once for all of its replies.
  std::sort(confirmed_.begin(), confirmed_.end(),
            [](const auto& a, const auto& b) { return a.owner < b.owner; });
  for (std::size_t i = 0; i < confirmed_.size();) {
    auto owner = confirmed_[i].owner;
    auto end = i;
    while (end < confirmed_.size() && confirmed_[end].owner == owner) ++end;
    auto link = std::find_if(links_.begin(), links_.end(),
                             [owner](const auto& l) { return l->owner() == owner; });
    if (link != links_.end()) {
      for (auto k = i; k < end; ++k) (*link)->confirm(confirmed_[k].tag);
    } else if (auto client = clients_.find(owner); client != clients_.end()) {
      if (auto listener = client->second.lock()) {
        std::vector<std::uint64_t> replies;
        replies.reserve(end - i);
        for (auto k = i; k < end; ++k) replies.push_back(confirmed_[k].tag);
        listener->confirmed(std::move(replies));
      }
    }
    i = end;
  }
  confirmed_.clear();
  log_lagging_links();
  for (auto& link : links_) link->flush();
}

void Herd::log_lagging_links() {
  for (auto& link : links_) {
    bool lagging = confirmations_.lagging(link->number());
    if (lagging == lagging_[link->number()]) continue;
    lagging_[link->number()] = lagging;
    auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(patience.lagging_after);
    log_.event("peer " + link->name(),
               lagging ? fmt::format("lagging: a PUT unacknowledged for {} ms; replies no longer "
                                     "wait for this neighbor",
                                     limit.count())
                       : std::string("keeps up again: replies wait for this neighbor"));
  }
}

awaitable<void> Herd::give_up_late_confirmations() {
  while (auto deadline = confirmations_.next_deadline()) {
    deadline_timer_.expires_at(*deadline);
    co_await deadline_timer_.async_wait(as_result);
    confirmations_.expire(Clock::now(), confirmed_);
    deliver();
  }
  deadline_watch_running_ = false;
}

}  // namespace herd
