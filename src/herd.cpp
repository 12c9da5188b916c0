#include "herd.hpp"

#include "peer.hpp"

namespace herd {
namespace {
// A client waits at most this long for its update to be confirmed by the herd before it is
// answered anyway; a neighbor that stays silent much longer loses its link (see peer.cpp).
constexpr auto confirmation_wait = std::chrono::seconds(1);
}  // namespace

Herd::Herd(asio::io_context& io, const Config& config, const ServerConfig& self, Log& log,
           bool one_thread)
    : self_(self),
      log_(log),
      one_thread_(one_thread),
      strand_(one_thread ? Strand(io.get_executor()) : Strand(asio::make_strand(io))),
      unconfirmed_timer_(strand_) {
  for (const auto& name : self.neighbors) {
    const auto& neighbor = config.server(name);
    links_.emplace(name, std::make_shared<PeerLink>(*this, neighbor, self.name < neighbor.name));
  }
}

Herd::~Herd() = default;

void Herd::start() {
  asio::dispatch(strand_, [this] {
    for (auto& [name, link] : links_) link->start();
  });
}

void Herd::stop() {
  asio::dispatch(strand_, [this] {
    for (auto& [name, link] : links_) link->stop();
  });
}

bool Herd::is_neighbor(std::string_view server) const {
  return links_.contains(server);
}

void Herd::attach_peer(std::string server, tcp::socket socket, std::string buffered) {
  asio::dispatch(strand_, [this, server = std::move(server), socket = std::move(socket),
                           buffered = std::move(buffered)]() mutable {
    if (auto link = links_.find(server); link != links_.end())
      link->second->accept(std::move(socket), std::move(buffered));
  });
}

bool Herd::update(Location location, PeerLink* from,
                  const std::shared_ptr<Propagation>& propagation) {
  auto hash = Store::hash_of(location.client());
  return update(std::move(location), hash, from, propagation);
}

bool Herd::update(Location location, std::uint32_t client_hash, PeerLink* from,
                  const std::shared_ptr<Propagation>& propagation) {
  auto [outcome, kept] = store_.apply(std::move(location), client_hash);
  if (outcome == Store::Outcome::unchanged) return false;
  for (auto& [name, link] : links_)
    if (link.get() != from) link->send(kept, propagation);
  return true;
}

void Herd::apply(std::vector<StoreOp>& ops, const std::shared_ptr<PropagationListener>& listener) {
  if (!one_thread_)  // with one thread the session prefetched as it parsed
    for (auto& op : ops) store_.prefetch(op.client_hash);
  for (auto& op : ops) apply(op, listener);
}

void Herd::apply(StoreOp& op, const std::shared_ptr<PropagationListener>& listener) {
  if (op.kind == StoreOp::Kind::lookup) {
    if (auto found = store_.find(op.client, op.client_hash)) {
      op.location = *found;
      op.found = true;
    }
    return;
  }
  std::shared_ptr<Propagation> propagation;
  bool any_up = std::any_of(links_.begin(), links_.end(), [](auto& l) { return l.second->up(); });
  if (any_up)
    propagation = std::make_shared<Propagation>(
        [listener, reply = op.reply] { listener->propagated(reply); });
  update(std::move(op.location), op.client_hash, nullptr, propagation);
  op.propagating = propagation && propagation.use_count() > 1;
  if (!op.propagating) return;
  unconfirmed_.emplace_back(std::chrono::steady_clock::now() + confirmation_wait, propagation);
  if (unconfirmed_.size() == 1)
    asio::co_spawn(strand_, give_up_slow_propagations(), asio::detached);
}

awaitable<void> Herd::give_up_slow_propagations() {
  while (!unconfirmed_.empty()) {
    unconfirmed_timer_.expires_at(unconfirmed_.front().first);
    co_await unconfirmed_timer_.async_wait(as_result);
    auto now = std::chrono::steady_clock::now();
    while (!unconfirmed_.empty() &&
           (unconfirmed_.front().first <= now || unconfirmed_.front().second.expired())) {
      if (auto propagation = unconfirmed_.front().second.lock()) propagation->finish();
      unconfirmed_.pop_front();
    }
  }
}

}  // namespace herd
