// A client connection: a reader that turns lines into replies and a writer that sends,
// in order, every reply that is ready, gathered into one write.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "herd.hpp"
#include "line_buffer.hpp"
#include "net.hpp"
#include "places/provider.hpp"

namespace herd {

class Session;

// The live sessions, so that a stopping server can let each finish what it was asked.
class SessionRegistry {
 public:
  void add(std::uint64_t id, std::weak_ptr<Session> session);
  void remove(std::uint64_t id);
  void stop_all();
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

class Session : public std::enable_shared_from_this<Session>, public PropagationListener {
 public:
  Session(tcp::socket socket, std::uint64_t id, Herd& herd, places::Provider& places,
          SessionRegistry& registry, std::chrono::milliseconds send_timeout);
  ~Session() override;

  void start();
  // Stops reading; what was already read is answered, then the connection closes.
  void stop();

  void propagated(std::uint64_t reply) override;

 private:
  // A reply in its place in line; replies leave strictly in the order the lines came.
  // Its text lives in texts_, so that a reply costs no allocation of its own.
  struct Reply {
    std::size_t at = 0, size = 0;  // in texts_
    bool ready = false;
    int radius_km = 0;  // WHATSAT: the lookup to make once the client's record is found
    int bound = 0;
  };

  // `self` keeps the session alive while the coroutine lives.
  awaitable<void> reader(std::shared_ptr<Session> self);
  awaitable<void> writer(std::shared_ptr<Session> self);
  // Writes all of `text`, failing with timed_out when the client takes none of it for
  // send_timeout_.
  awaitable<asio::error_code> write_all(std::string_view text);
  int unacknowledged_bytes();
  void send();
  awaitable<void> linger();
  void handle(std::string_view line, std::vector<StoreOp>& ops);
  bool handed_to_peer(std::string_view first_line);
  void answer_lookups(std::vector<StoreOp>& ops);
  // Queues a one-line reply (the newline is added); a WHATSAT's full text comes with complete().
  std::uint64_t add_reply(std::string_view line, bool ready);
  void complete(std::uint64_t reply, std::string_view text = {});

  tcp::socket socket_;
  std::string who_;  // "client N", for the log
  Herd& herd_;
  places::Provider& places_;
  SessionRegistry& registry_;
  std::uint64_t id_;
  std::chrono::milliseconds send_timeout_;

  LineBuffer input_;
  Timestamp received_at_;
  std::vector<StoreOp> ops_;

  std::deque<Reply> waiting_;        // from the oldest reply not yet sent
  std::string texts_;                // their texts; emptied whenever waiting_ is
  std::uint64_t first_waiting_ = 0;  // the number of waiting_.front()
  std::uint64_t next_reply_ = 0;
  std::string outbox_, sending_;
  Signal wake_writer_, wake_reader_;
  bool writing_ = false;   // the writer has a write in flight
  bool in_batch_ = false;  // answering a batch: replies go out together at its end
  bool input_done_ = false;
  bool stopping_ = false;
  bool write_failed_ = false;
  bool saw_eof_ = false;
};

}  // namespace herd
