// A link to one neighboring server: dialing with backoff (or accepting), the PEER handshake
// (inside mutual TLS when the herd has [tls]), the catch-up exchange when the link comes up,
// and batched PUTs and ACKs. Everything here runs on the herd's strand.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "connection.hpp"
#include "log.hpp"
#include "net.hpp"
#include "store.hpp"
#include "tls.hpp"

namespace herd {

class PeerLink;

// What a link needs from the server it belongs to (the herd).
class PeerHost {
 public:
  using Clock = std::chrono::steady_clock;
  virtual const std::string& server_name() const = 0;
  virtual Log& peer_log() = 0;
  // Mutual TLS with this server's certificate; null when the herd's links are plaintext.
  virtual asio::ssl::context* peer_tls() = 0;
  virtual const Store& store() const = 0;  // what a catch-up sends
  // The numbering of this server's changes (see Store::changes) in catch-ups.
  virtual std::uint64_t epoch() const = 0;
  // What this server holds of the neighbor's changes: what its SINCE says.
  virtual PeerSince resume_point(const PeerLink& link) const = 0;
  // The neighbor said SYNCED: everything it sent before is handled.
  virtual void synced(PeerLink& link, PeerSynced marker) = 0;
  // A number for each new connection, to tell its confirmations from an earlier one's.
  virtual std::uint64_t new_owner() = 0;
  virtual void link_down(PeerLink& link) = 0;
  // A record from the neighbor; with `put_id`, the neighbor waits for its ACK.
  // `at`: when it was read. Returns whether it changed the store.
  virtual bool received(PeerLink& link, Location record, std::optional<std::uint64_t> put_id,
                        Timestamp at) = 0;
  virtual void acknowledged(PeerLink& link, std::uint64_t first, std::uint64_t last) = 0;
  // The link has handled all it read for now.
  virtual void handled_batch() = 0;
  virtual std::optional<Clock::time_point> oldest_unacknowledged(const PeerLink& link) const = 0;

 protected:
  ~PeerHost() = default;
};

class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  // Of two neighbors, the one whose name sorts first redials while the link is down; the other
  // dials once when its server starts, so that a starting server is linked at once.
  PeerLink(PeerHost& host, const CoreStrand& strand, std::size_t number,
           const ServerConfig& neighbor, bool redials);

  const std::string& name() const { return neighbor_.name; }
  std::size_t number() const { return number_; }  // its index among the herd's links
  bool up() const { return live_ != nullptr; }
  // The current connection's number from PeerHost::new_owner(); 0 while down.
  std::uint64_t owner() const;

  void start();
  // Closes the link for good, saying why in the log: the server stops, or the neighbor was
  // removed from the config.
  void stop(std::string_view why = "server stopping");

  // An inbound connection on the peer port that introduced itself as this neighbor (over
  // TLS: with a certificate naming it). It becomes the link when the link is down. While the
  // link is up, a TLS connection replaces it (it has proven who it is) unless the link came up
  // less than 3 s before (then the two sides' dials crossed, and it is refused); a plaintext
  // one is refused, since anybody could have sent its handshake: a dead link is closed by its
  // keep-alive, and the neighbor's next attempt gets through.
  void accept(tcp::socket socket, std::string buffered);
  void accept(TlsStream stream, std::string buffered);

  // Queue messages; flush() sends what is queued. Nothing is queued while the link is down.
  void put(std::uint64_t id, const Record& record);
  void at(const Record& record);
  void confirm(std::uint64_t put_id);  // becomes part of an ACK range at the next flush
  void flush();

  // Sent and received in catch-ups since the server started.
  struct CatchUpTotals {
    std::uint64_t records_sent = 0, bytes_sent = 0, records_received = 0, bytes_received = 0;
  };
  const CatchUpTotals& catch_up_totals() const { return catch_up_totals_; }
  // Whether the link is up and the neighbor's catch-up has not reached its first SYNCED.
  bool catching_up() const;

 private:
  class Live;

  awaitable<void> dial();
  // Connects, then the TLS handshake if the herd has TLS, then the PEER exchange; on success
  // the link runs on the connection until it ends. Returns whether it came up.
  awaitable<bool> dial_once(std::chrono::milliseconds connect_timeout);
  template <typename Stream>
  awaitable<bool> say_hello(Stream& stream, std::string& buffered,
                            asio::steady_timer& deadline);
  bool keeps_link_up();
  template <typename Stream>
  awaitable<void> until_closed(Stream& stream, asio::steady_timer& deadline);
  bool refuses(const std::string& from, bool tls);
  template <typename Stream>
  awaitable<void> run(Stream stream, std::string buffered, std::string greeting);
  awaitable<void> watchdog(std::shared_ptr<Live> live);
  void handle(Live& live, std::string_view line, Timestamp at);
  void handle_record(Live& live, const PeerMessage& message, std::string_view line,
                     Timestamp read_at);
  void synced(Live& live, PeerSynced marker);
  // Logs what crossed the link since the last summary: every few seconds, or with `final` now.
  void report_traffic(Live& live, bool final);

  PeerHost& host_;
  CoreStrand strand_;
  std::size_t number_;
  ServerConfig neighbor_;  // a copy: a config reload replaces the herd's config
  std::string who_;        // "peer NAME", for the log
  std::string where_;      // its peer port's address, "host:port"
  bool redials_;
  bool stopped_ = false;
  std::shared_ptr<Live> live_;
  asio::steady_timer retry_;
  Signal went_down_;  // the link went down (or the server stops): a redialer wakes
  CatchUpTotals catch_up_totals_;
};

}  // namespace herd
