// A link to one neighboring server: dialing with backoff (or accepting), the PEER handshake,
// the catch-up exchange when the link comes up, and flooding with acknowledgements.
// Everything here runs on the Herd's strand.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "config.hpp"
#include "net.hpp"
#include "store.hpp"

namespace herd {

class Herd;
class Propagation;

class PeerLink : public std::enable_shared_from_this<PeerLink> {
 public:
  // Of two neighbors, the one whose name sorts first dials; the other accepts.
  PeerLink(Herd& herd, const ServerConfig& neighbor, bool dials);

  const std::string& name() const { return neighbor_.name; }
  bool up() const { return connection_ != nullptr; }

  void start();
  void stop();

  // An inbound connection that introduced itself as this neighbor.
  void accept(tcp::socket socket, std::string buffered);

  // Sends a record: as "PUT <id> AT ..." holding `propagation` until acknowledged, or as a
  // plain "AT ..." when nobody waits for it.
  void send(const Location& location, const std::shared_ptr<Propagation>& propagation);

 private:
  struct Connection;

  awaitable<void> dial();
  awaitable<bool> handshake(tcp::socket& socket, std::string& buffered);
  awaitable<void> run(tcp::socket socket, std::string buffered, std::string greeting);
  awaitable<void> writer(std::shared_ptr<Connection> c);
  awaitable<void> watchdog(std::shared_ptr<Connection> c);
  void handle(const std::shared_ptr<Connection>& c, std::string_view line);
  void refill(Connection& c);
  void enqueue(Connection& c, std::string_view line);
  void close(Connection& c, std::string_view why);

  Herd& herd_;
  const ServerConfig& neighbor_;
  std::string who_;  // "peer NAME", for the log
  bool dials_;
  bool stopped_ = false;
  std::shared_ptr<Connection> connection_;
  std::uint64_t next_id_ = 1;
  asio::steady_timer retry_;
};

}  // namespace herd
