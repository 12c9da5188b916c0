#include "herd.hpp"

#include <algorithm>
#include <random>

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
// A WHATSAT for a client not known while the store loads waits at most this long for it.
constexpr auto held_wait = 1s;
// A restarted server numbers its changes from this far past the last number in its file: a
// crash may have lost the last lines, whose numbers a neighbor may hold, and no server makes
// this many changes between its last line on disk and a crash.
constexpr std::uint64_t restart_gap = std::uint64_t(1) << 32;

std::uint64_t random_epoch() {
  std::random_device random;
  std::uint64_t epoch = 0;
  while (epoch == 0) epoch = std::uint64_t(random()) << 32 | random();
  return epoch;
}
}  // namespace

Herd::Herd(asio::io_context& io, const Config& config, const ServerConfig& self, Log& log,
           asio::ssl::context* tls)
    : self_(self),
      max_clock_skew_ms_(config.clients.max_clock_skew_ms),
      log_(log),
      tls_(tls),
      strand_(asio::make_strand(io)),
      resume_points_(self.neighbors.size()),
      confirmations_(self.neighbors.size(), patience),
      lagging_(self.neighbors.size(), false),
      deadline_timer_(strand_),
      loaded_signal_(strand_, asio::steady_timer::time_point::max()) {
  if (config.store.enabled()) open_store_file(config.store);
  epoch_ = file_ ? file_->epoch() : random_epoch();
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
    former_resume_points_[name] = resume_points_[(*link)->number()];
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
  // A neighbor linked with before (even at another address) sends only what changed since.
  auto former = former_resume_points_.find(neighbor.name);
  resume_points_.push_back(former != former_resume_points_.end() ? former->second : ResumePoint{});
  if (former != former_resume_points_.end()) former_resume_points_.erase(former);
  auto at = std::find_if(links_.begin(), links_.end(),
                         [&](const auto& l) { return l->name() > neighbor.name; });
  links_.insert(at, link);
  log_.event("peer " + neighbor.name, fmt::format("added by the config; linking with it at {}",
                                                  address_text(neighbor.host, neighbor.peer_port)));
  if (!stopped_ && !loading_) link->start();  // else once loaded
}

Herd::~Herd() = default;

void Herd::open_store_file(const StoreConfig& config) {
  fsync_ = config.fsync;
  compact_min_bytes_ = std::max<std::uint64_t>(std::uint64_t(config.compact_min_mb) << 20, 64 << 10);
  file_ = std::make_unique<StoreFile>(config.dir / self_.name, config.fsync, log_,
                                      [this](std::uint64_t record) {
                                        asio::post(strand_, [this, record] { synced(record); });
                                      });
  loading_ = true;
}

// Reads the file into a store of its own, off the strand: clients are served meanwhile, and
// what they and the neighbors tell the server is kept. Records are last-writer-wins, so the two
// stores merge in any order.
void Herd::load_store_file() {
  auto started = std::chrono::steady_clock::now();
  auto records = std::make_unique<Store>();
  ResumePoints resume_points;
  std::size_t count = 0;  // records, not resume points
  struct Abandoned {};
  try {
    file_->load([&](std::string_view payload) {
      if (stop_loading_.load(std::memory_order_relaxed)) throw Abandoned{};
      auto stored = parse_stored(payload);
      if (auto point = std::get_if<StoredResumePoint>(&stored)) {
        resume_points[std::string(point->neighbor)] = {point->epoch, point->seq};  // the last wins
        return true;
      }
      auto record = std::get_if<StoredRecord>(&stored);
      if (!record) return false;
      auto message = parse_peer_line(record->at_line);
      auto at = std::get_if<At>(&message);
      if (!at) return false;
      auto location = location_of(*at);
      if (location.at_line.size() > max_at_line_bytes) return false;  // never written so
      location.changed = record->changed;
      records->restore(location);
      ++count;
      return true;
    });
  } catch (const Abandoned&) {
    return;  // the server stops: what it appended meanwhile is written all the same
  } catch (const std::exception& e) {
    // A corrupt file: the operator decides what to keep (README, "The store on disk").
    log_.warning("store", std::string(e.what()) + "; stopping");
    log_.flush();
    fmt::print(stderr, "herd-server: {}\n", e.what());
    std::_Exit(1);
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  asio::post(strand_, [this, records = std::move(records), resume_points = std::move(resume_points),
                        count, took]() mutable {
    loaded(std::move(records), std::move(resume_points), count, took);
  });
}

void Herd::loaded(std::unique_ptr<Store> records, ResumePoints resume_points, std::size_t count,
                  std::chrono::milliseconds took) {
  auto told = store_.size();
  if (!file_->new_epoch()) records->skip_changes_to(records->changes() + restart_gap);
  // What clients told meanwhile is numbered after the file's changes, and written again with
  // its number: a catch-up to a neighbor that holds the file's changes sends it.
  store_.merge_into(*records, [this](const Record& record) { persist(record); });
  for (auto& link : links_)
    if (auto point = resume_points.find(link->name()); point != resume_points.end()) {
      resume_points_[link->number()] = point->second;
      resume_points.erase(point);
    }
  former_resume_points_.merge(resume_points);  // neighbors no longer in the config
  log_.event("store", fmt::format("loaded {} records ({} clients) from {} in {} ms; clients "
                                  "told meanwhile: {}; epoch {}, changes from {}",
                                  count, store_.size(), file_->path().string(), took.count(),
                                  told, format_epoch(epoch_), store_.changes()));
  loading_ = false;
  loaded_signal_.cancel();
  if (!stopped_)
    for (auto& link : links_) link->start();
  release_held(!records_coming());
}

awaitable<void> Herd::until_loaded() {
  if (loading_) co_await loaded_signal_.async_wait(as_result);
}

bool Herd::records_coming() const {
  return loading_ ||
         std::any_of(links_.begin(), links_.end(), [](const auto& l) { return l->catching_up(); });
}

void Herd::look_up(StoreOp& op) const {
  if (auto found = store_.find(op.client, op.client_hash)) {
    op.location = found->copy();
    op.found = true;
  }
}

bool Herd::missed_lookup(const std::vector<StoreOp>& ops) {
  return std::any_of(ops.begin(), ops.end(), [](const StoreOp& op) {
    return op.kind == StoreOp::Kind::lookup && !op.found;
  });
}

void Herd::hold(std::vector<StoreOp>& ops, std::function<void()> resume) {
  held_.push_back({&ops, std::move(resume), Clock::now() + held_wait});
  if (!releasing_held_) {
    releasing_held_ = true;
    asio::co_spawn(strand_, release_held_in_time(), asio::detached);
  }
}

// Looks the held batches' missing clients up again and lets their sessions go on: all of them
// once the store is loaded, otherwise those that waited held_wait.
void Herd::release_held(bool all) {
  auto now = Clock::now();
  while (!held_.empty() && (all || held_.front().until <= now)) {
    auto held = std::move(held_.front());
    held_.pop_front();
    for (auto& op : *held.ops)
      if (op.kind == StoreOp::Kind::lookup && !op.found) look_up(op);
    held.resume();
  }
}

awaitable<void> Herd::release_held_in_time() {
  asio::steady_timer timer(strand_);
  while (!held_.empty()) {
    timer.expires_at(held_.front().until);
    co_await timer.async_wait(as_result);
    release_held(false);
  }
  releasing_held_ = false;
}

void Herd::start() {
  if (file_) {  // the links start dialing once it is loaded (loaded())
    loader_ = std::jthread([this] { load_store_file(); });
    return;
  }
  asio::dispatch(strand_, [this] {
    for (auto& link : links_) link->start();
  });
}

void Herd::stop() {
  stop_loading_ = true;
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

PeerSince Herd::resume_point(const PeerLink& link) const {
  const auto& point = resume_points_[link.number()];
  return {point.epoch, point.seq};
}

void Herd::synced(PeerLink& link, PeerSynced marker) {
  auto& point = resume_points_[link.number()];
  if (point.epoch == marker.epoch && point.seq == marker.seq) return;
  point = {marker.epoch, marker.seq};
  if (file_) file_->append_resume_point(link.name(), marker.epoch, marker.seq);
  if (!held_.empty() && !records_coming()) release_held(true);
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
      look_up(op);
      continue;
    }
    auto [outcome, kept] = store_.apply(op.location, op.client_hash);
    if (outcome != Store::Outcome::unchanged) {
      persist(kept);
      op.waiting = flood(kept, nullptr, Confirmations::Waiter{client, op.reply}, now);
    }
    // Even a record the store had may not be on disk yet.
    if (!op.waiting && unsynced()) {
      op.waiting = true;
      wait_for_disk({client, op.reply});
    }
  }
  deliver();
}

bool Herd::flood(const Record& record, const PeerLink* from,
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
  auto [outcome, kept] = store_.apply(record);
  bool waiting = false;
  if (outcome != Store::Outcome::unchanged) {
    persist(kept);
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
  if (!held_.empty() && !records_coming()) release_held(true);
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
  s.loading = loading_;
  s.records = store_.size();
  s.clients = clients_.size();
  for (const auto& link : links_) {
    const auto& totals = link->catch_up_totals();
    s.links.push_back({link->name(), link->up(), totals.records_sent, totals.bytes_sent,
                       totals.records_received, totals.bytes_received});
  }
  s.puts_sent = puts_sent_;
  s.acks_received = acks_received_;
  s.ack_latency = confirmations_.ack_latency();
  s.reloads_ok = reloads_ok_;
  s.reloads_refused = reloads_refused_;
  co_return s;
}

void Herd::deliver() {
  if (unsynced()) {
    // A client's reply waits for its record on disk too; a neighbor's ACK does not: the
    // record is on the disk of the server that answered its client.
    auto for_client = [this](const auto& waiter) { return waiter.owner < first_link_owner; };
    for (const auto& waiter : confirmed_)
      if (for_client(waiter)) wait_for_disk(waiter);
    std::erase_if(confirmed_, for_client);
  }
  hand_out(confirmed_);
  log_lagging_links();
  for (auto& link : links_) link->flush();
}

void Herd::hand_out(std::vector<Confirmations::Waiter>& confirmed) {
  // Grouped by who waits, so that each client session is woken once for all of its replies.
  std::sort(confirmed.begin(), confirmed.end(),
            [](const auto& a, const auto& b) { return a.owner < b.owner; });
  for (std::size_t i = 0; i < confirmed.size();) {
    auto owner = confirmed[i].owner;
    auto end = i;
    while (end < confirmed.size() && confirmed[end].owner == owner) ++end;
    auto link = std::find_if(links_.begin(), links_.end(),
                             [owner](const auto& l) { return l->owner() == owner; });
    if (link != links_.end()) {
      for (auto k = i; k < end; ++k) (*link)->confirm(confirmed[k].tag);
    } else if (auto client = clients_.find(owner); client != clients_.end()) {
      if (auto listener = client->second.lock()) {
        std::vector<std::uint64_t> replies;
        replies.reserve(end - i);
        for (auto k = i; k < end; ++k) replies.push_back(confirmed[k].tag);
        listener->confirmed(std::move(replies));
      }
    }
    i = end;
  }
  confirmed.clear();
}

void Herd::persist(const Record& record) {
  if (!file_) return;
  file_->append(record.changed, record.at_line);
  if (!compacting_ && !loading_ && file_too_large()) {
    compacting_ = true;
    asio::co_spawn(strand_, compact(), asio::detached);
  }
}

bool Herd::file_too_large() const {
  auto live = store_.at_line_bytes() + record_bytes("") * store_.size();
  auto bytes = file_->file_bytes();
  return bytes > compact_min_bytes_ && bytes > 2 * live;
}

void Herd::wait_for_disk(Confirmations::Waiter waiter) {
  unsynced_replies_.emplace_back(file_->appended(), waiter);
}

void Herd::synced(std::uint64_t record) {
  synced_ = std::max(synced_, record);
  std::vector<Confirmations::Waiter> ready;
  while (!unsynced_replies_.empty() && unsynced_replies_.front().first <= synced_) {
    ready.push_back(unsynced_replies_.front().second);
    unsynced_replies_.pop_front();
  }
  hand_out(ready);
}

// Writes every live record once to a new file, a chunk per turn of the strand, while appends
// go on to both files; the writer thread swaps the files when the last chunk is down. Again if
// what was appended meanwhile makes the new file too large already.
awaitable<void> Herd::compact() {
  asio::steady_timer poll(strand_);
  while (file_too_large()) {
    file_->begin_rewrite();
    auto records = store_.size();
    std::string chunk;
    for (std::size_t i = 0; i < records; ++i) {
      append_record(chunk, store_.at(i).changed, store_.at(i).at_line);
      if (chunk.size() >= (1 << 20)) {
        file_->rewrite(std::move(chunk));
        chunk = {};
        co_await asio::post(strand_, asio::use_awaitable);
      }
    }
    // The resume points come after every record: the new file is synced whole before it is
    // used, so none can claim records it lacks.
    for (auto& link : links_)
      if (auto point = resume_points_[link->number()]; point.epoch != 0)
        append_resume_point(chunk, link->name(), point.epoch, point.seq);
    file_->rewrite(std::move(chunk));
    file_->end_rewrite();
    while (file_->rewriting()) {
      poll.expires_after(std::chrono::milliseconds(10));
      co_await poll.async_wait(as_result);
    }
  }
  compacting_ = false;
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
