// The herd as this server sees it: the location store, the links to the neighbors, and the
// updates waiting for the neighbors' acknowledgements. Everything here runs on one strand,
// whatever the number of threads; client sessions reach it only through submit().
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "confirmations.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "net.hpp"
#include "peer.hpp"
#include "reload.hpp"
#include "store.hpp"
#include "store_file.hpp"

namespace herd {

// A client connection waiting for its updates to be confirmed.
class ConfirmationListener {
 public:
  virtual ~ConfirmationListener() = default;
  // Called on the herd's strand; the replies are the numbers given in StoreOp::reply.
  virtual void confirmed(std::vector<std::uint64_t> replies) = 0;
  virtual void stop() = 0;  // the server stops: answer what was read, then close
};

// One step of a client's batch, answered in place on the herd's strand.
struct StoreOp {
  enum class Kind { publish, lookup };
  Kind kind;
  std::string_view client;        // lookup: valid until the batch completes
  Location location;              // publish: the new record; lookup: the record found
  std::uint32_t client_hash = 0;  // Store::hash_of the client
  std::uint64_t reply = 0;        // the session's reply number
  bool found = false;             // lookup: whether the client is known
  bool waiting = false;           // publish: the reply waits for confirmed()
};

class Herd : private PeerHost {
 public:
  // `tls`: mutual TLS for the links, or null for plaintext. With [store], opens (and locks)
  // the server's file; throws std::runtime_error when it cannot. The file is read by start().
  Herd(asio::io_context& io, const Config& config, const ServerConfig& self, Log& log,
       asio::ssl::context* tls);
  ~Herd();

  // Starts dialing the neighbors, and loading the store's file on a thread of its own. Until
  // it is loaded, clients are served (a WHATSAT for a client not yet known waits for the load,
  // at most a second, as it does for the links' incoming catch-ups) and links wait before
  // their catch-up.
  void start();
  void stop();   // closes every link and stops every client session

  const std::string& name() const { return self_.name; }
  // Only on the strand: a config reload changes the neighbors.
  bool is_neighbor(std::string_view server) const;
  Log& log() { return log_; }
  const CoreStrand& strand() const { return strand_; }

  // Client sessions, by a number unique to each. From any executor.
  void join(std::uint64_t client, std::weak_ptr<ConfirmationListener> listener);
  void leave(std::uint64_t client);
  // Only on the strand: the sessions still open.
  std::size_t clients() const { return clients_.size(); }

  // Runs a client's operations in order on the strand, then `done` on `caller`. A publish
  // that changed the store goes to the neighbors, and its reply waits for confirmed().
  template <typename Executor, typename Done>
  void submit(std::vector<StoreOp>& ops, std::uint64_t client, const Executor& caller, Done done) {
    asio::dispatch(strand_, [this, &ops, client, caller, done = std::move(done)]() mutable {
      apply(ops, client);
      if (records_coming() && missed_lookup(ops))
        hold(ops, [caller, done = std::move(done)]() mutable {
          asio::dispatch(caller, std::move(done));
        });
      else
        asio::dispatch(caller, std::move(done));
    });
  }

  // A config reload that may go ahead: links to the removed neighbors close (and their
  // connections are refused from then on), the added ones are dialed and caught up as at
  // start. From any executor; done once the links have changed.
  awaitable<void> relink(ReloadPlan plan);
  void reload_refused();  // counted for the metrics; from any thread

  // Counted by the client sessions, from any thread.
  ClientCounters& client_counters() { return client_counters_; }
  PlacesCounters& places_counters() { return places_counters_; }
  // The herd's part of a scrape, gathered on the strand; from any executor.
  awaitable<HerdSnapshot> snapshot();

  // Starts loading a client's place in the store into the cache, from any thread, so that
  // the miss overlaps the caller's parsing and formatting instead of stalling the strand.
  void prefetch(std::uint32_t client_hash) const { store_.prefetch_from_anywhere(client_hash); }

  // Returns once the store holds what the server kept on disk (at once without [store]): the
  // peer port hands a neighbor's connection to its link only then, since a catch-up sends the
  // whole store. On the strand.
  awaitable<void> until_loaded();

  // Only on the strand: a connection to the peer port that proved it is the neighbor `server`
  // (PeerPort) becomes its link, if the link takes it.
  void attach_peer(const std::string& server, tcp::socket socket, std::string buffered);
  void attach_peer(const std::string& server, TlsStream stream, std::string buffered);

 private:
  using Clock = Confirmations::Clock;

  void apply(std::vector<StoreOp>& ops, std::uint64_t client);
  // Sends a record that changed the store to every link but `from`: as PUTs that `waiter`
  // waits for, or as plain ATs when nobody does. Returns whether `waiter` has to wait.
  bool flood(const Record& record, const PeerLink* from,
             std::optional<Confirmations::Waiter> waiter, Clock::time_point now);
  // Hands the confirmed updates to whoever waits, and sends what all this queued on the links.
  void deliver();
  void hand_out(std::vector<Confirmations::Waiter>& confirmed);
  awaitable<HerdSnapshot> gather_snapshot();      // on the strand
  awaitable<void> change_links(ReloadPlan plan);  // on the strand
  void add_link(const ServerConfig& neighbor);
  void log_lagging_links();  // when nobody waits for a neighbor any more, and when again
  // The store on disk: what changed the store is appended; with fsync "always", replies wait
  // until their records are synced as they wait for the neighbors' acknowledgements.
  void open_store_file(const StoreConfig& config);
  // What the store learned of a neighbor's changes (its epoch and number): a catch-up asks
  // it for what changed since.
  struct ResumePoint {
    std::uint64_t epoch = 0, seq = 0;
  };
  using ResumePoints = std::unordered_map<std::string, ResumePoint>;
  void load_store_file();  // on loader_
  void loaded(std::unique_ptr<Store> records, ResumePoints resume_points, std::size_t count,
              std::chrono::milliseconds took);
  // Whether records the store lacks may be on their way: the file loads, or a link's incoming
  // catch-up has not reached its first SYNCED.
  bool records_coming() const;
  // Batches with a WHATSAT for a client the store does not hold yet, while records are coming:
  // looked up again once none are, or answered as they are after held_wait.
  struct Held {
    std::vector<StoreOp>* ops;
    std::function<void()> resume;
    Clock::time_point until;
  };
  void look_up(StoreOp& op) const;  // a WHATSAT's client in the store
  static bool missed_lookup(const std::vector<StoreOp>& ops);
  void hold(std::vector<StoreOp>& ops, std::function<void()> resume);
  void release_held(bool all);
  awaitable<void> release_held_in_time();
  void persist(const Record& record);
  bool replies_wait_for_disk() const { return file_ && fsync_ == StoreConfig::Fsync::always; }
  bool unsynced() const { return replies_wait_for_disk() && synced_ < file_->appended(); }
  void wait_for_disk(Confirmations::Waiter waiter);
  void synced(std::uint64_t record);  // records up to this number are on disk
  bool file_too_large() const;
  awaitable<void> compact();
  awaitable<void> give_up_late_confirmations();

  // PeerHost: what the links ask of the herd.
  const std::string& server_name() const override { return self_.name; }
  Log& peer_log() override { return log_; }
  asio::ssl::context* peer_tls() override { return tls_; }
  PeerLink* link_named(std::string_view server) const;
  const Store& store() const override { return store_; }
  std::uint64_t epoch() const override { return epoch_; }
  PeerSince resume_point(const PeerLink& link) const override;
  void synced(PeerLink& link, PeerSynced marker) override;
  std::uint64_t new_owner() override { return next_link_owner_++; }
  void link_down(PeerLink& link) override;
  bool received(PeerLink& link, Location record, std::optional<std::uint64_t> put_id,
                Timestamp at) override;
  void acknowledged(PeerLink& link, std::uint64_t first, std::uint64_t last) override;
  void handled_batch() override { deliver(); }
  std::optional<Clock::time_point> oldest_unacknowledged(const PeerLink& link) const override;

  const ServerConfig& self_;
  std::int64_t max_clock_skew_ms_;
  Log& log_;
  asio::ssl::context* tls_;
  CoreStrand strand_;
  Store store_;
  std::uint64_t epoch_ = 0;
  std::vector<ResumePoint> resume_points_;  // by link number
  ResumePoints former_resume_points_;       // of neighbors a reload removed, should they return
  // The current neighbors' links, by name. A link's number (its slot in confirmations_ and
  // lagging_) stays its own after a reload removed it, until its last event is handled.
  std::vector<std::shared_ptr<PeerLink>> links_;
  Confirmations confirmations_;
  std::vector<Confirmations::Waiter> confirmed_;  // to deliver at the end of this step
  std::vector<bool> lagging_;                     // as last logged, by link number
  std::unordered_map<std::uint64_t, std::weak_ptr<ConfirmationListener>> clients_;
  static constexpr std::uint64_t first_link_owner = std::uint64_t(1) << 63;
  std::uint64_t next_link_owner_ = first_link_owner;  // above every client's number
  asio::steady_timer deadline_timer_;
  bool deadline_watch_running_ = false;
  std::unique_ptr<StoreFile> file_;  // null without [store]
  StoreConfig::Fsync fsync_ = StoreConfig::Fsync::everysec;
  std::uint64_t compact_min_bytes_ = 0;
  bool compacting_ = false;
  std::uint64_t synced_ = 0;  // the last record number known on disk
  // Replies that wait for their records to be synced: (the record number, who waits).
  std::deque<std::pair<std::uint64_t, Confirmations::Waiter>> unsynced_replies_;
  bool loading_ = false;              // the file is being read
  asio::steady_timer loaded_signal_;  // cancelled once it is: links wait on it
  std::deque<Held> held_;
  bool releasing_held_ = false;
  std::atomic<bool> stop_loading_{false};  // the server stops: the loader gives up
  std::jthread loader_;
  ClientCounters client_counters_;
  PlacesCounters places_counters_;
  std::uint64_t puts_sent_ = 0;  // on the strand, like the rest
  std::uint64_t acks_received_ = 0;
  std::uint64_t reloads_ok_ = 0, reloads_refused_ = 0;
  bool stopped_ = false;
};

}  // namespace herd
