// The location store and the links to neighboring servers, all behind one strand.
// Sessions hand it batches of store operations; links flood what changed.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "log.hpp"
#include "net.hpp"
#include "store.hpp"

namespace herd {

class PeerLink;

// Told, on any thread, when an update has reached every neighbor that was up.
class PropagationListener {
 public:
  virtual ~PropagationListener() = default;
  virtual void propagated(std::uint64_t reply) = 0;
};

// Calls `done` when the last link holding it lets go (every neighbor acknowledged or
// dropped), or earlier if someone gives up waiting.
class Propagation {
 public:
  explicit Propagation(std::function<void()> done) : done_(std::move(done)) {}
  Propagation(const Propagation&) = delete;
  Propagation& operator=(const Propagation&) = delete;
  ~Propagation() { finish(); }

  void finish() {
    if (auto done = std::exchange(done_, nullptr)) done();
  }

 private:
  std::function<void()> done_;
};

// One step of a client's batch, answered in place on the store's strand.
struct StoreOp {
  enum class Kind { publish, lookup };
  Kind kind;
  std::string_view client;        // lookup: valid until the batch completes
  Location location;              // publish: the new record; lookup: the record found
  std::uint32_t client_hash = 0;  // Store::hash_of the client
  std::uint64_t reply = 0;        // the session's reply slot, for the propagation listener
  bool found = false;             // lookup: whether the client is known
  bool propagating = false;       // publish: the listener will be told when neighbors have it
};

class Herd {
 public:
  // With `one_thread`, the loop runs on a single thread and is the store's strand itself.
  Herd(asio::io_context& io, const Config& config, const ServerConfig& self, Log& log,
       bool one_thread);
  ~Herd();

  void start();  // starts dialing the neighbors this server dials
  void stop();   // closes every link

  const std::string& name() const { return self_.name; }
  bool is_neighbor(std::string_view server) const;
  Log& log() { return log_; }
  Store& store() { return store_; }
  const Strand& strand() const { return strand_; }

  // Runs the operations in order on the strand, then `done` on `caller`. With one thread the
  // caller is already on the loop, the store's strand: both run before this returns, and the
  // caller need not suspend.
  template <typename Executor, typename Done>
  void apply(std::vector<StoreOp>& ops, const std::shared_ptr<PropagationListener>& listener,
             const Executor& caller, Done done) {
    if (one_thread_) {
      apply(ops, listener);
      return done();
    }
    asio::dispatch(strand_, [this, &ops, listener, caller, done = std::move(done)]() mutable {
      apply(ops, listener);
      asio::dispatch(caller, std::move(done));
    });
  }

  // Starts loading the client's place in the store into the cache, so that the miss overlaps
  // the caller's formatting. Only with one thread: otherwise the store may be changing, and
  // apply() prefetches the batch itself.
  void prefetch(std::uint32_t client_hash) const {
    if (one_thread_) store_.prefetch(client_hash);
  }

  // A connection whose first line was "PEER <server>" from a neighbor becomes its link.
  void attach_peer(std::string server, tcp::socket socket, std::string buffered);

  // On the strand: keeps the record if it is news and floods it to every link but `from`.
  // Returns whether the store changed.
  bool update(Location location, PeerLink* from, const std::shared_ptr<Propagation>& propagation);
  bool update(Location location, std::uint32_t client_hash, PeerLink* from,
              const std::shared_ptr<Propagation>& propagation);

 private:
  void apply(std::vector<StoreOp>& ops, const std::shared_ptr<PropagationListener>& listener);
  void apply(StoreOp& op, const std::shared_ptr<PropagationListener>& listener);
  awaitable<void> give_up_slow_propagations();

  const ServerConfig& self_;
  Log& log_;
  bool one_thread_;
  Strand strand_;
  Store store_;
  std::map<std::string, std::shared_ptr<PeerLink>, std::less<>> links_;
  // Clients' updates still waiting for acknowledgements, oldest first.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::weak_ptr<Propagation>>>
      unconfirmed_;
  asio::steady_timer unconfirmed_timer_;
};

}  // namespace herd
