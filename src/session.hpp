// A client connection: turns lines into replies. IAMAT and WHATSAT go to the herd's core in
// one batch per read; the replies leave in request order, gathered into one write.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "connection.hpp"
#include "herd.hpp"
#include "net.hpp"
#include "client_budget.hpp"
#include "places/provider.hpp"
#include "reply_queue.hpp"
#include "tls.hpp"

namespace herd {

class Session : public std::enable_shared_from_this<Session>,
                public ConfirmationListener,
                private LineHandler {
 public:
  // `stream` (a tcp::socket, or a TlsStream after its handshake) runs on the session's own
  // strand.
  template <typename Stream>
  Session(Stream stream, std::uint64_t id, Herd& herd, places::Provider& places,
          const ClientsConfig& clients, ClientBudget& budget);

  void start();
  // Stops reading; what was already read is answered, then the connection closes.
  void stop() override;
  void confirmed(std::vector<std::uint64_t> replies) override;

 private:
  void finished(const std::string& why);  // the connection is closed

  // LineHandler
  void received(LineBuffer& input, Timestamp at, Input state) override;
  bool hold_reading() const override;
  bool batch_full() const;
  static std::size_t places_estimate(int bound);  // the bytes a WHATSAT's reply may take
  bool owes_output() const override { return replies_.waiting() > 0; }
  void refill(std::string& /*outbox*/) override { account(); }

  // A WHATSAT's radius and bound, kept until its client's record is found.
  struct Lookup {
    int radius_km = 0, bound = 0;
  };

  void handle(std::string_view line, Timestamp at);
  void applied();  // the herd has run the batch
  void look_up_places(StoreOp& op, Lookup lookup);
  void complete(std::uint64_t reply, std::string_view text = {});
  // Counts the replies held unsent, and disconnects a client that holds too many.
  void account();
  void flush();  // counts the replies handed out, writes them, then accounts for the rest
  const std::string& who() const { return connection_.who(); }  // "client N", for the log

  std::uint64_t id_;
  std::int64_t max_clock_skew_ms_;
  Herd& herd_;
  places::Provider& places_;
  AnyConnection connection_;
  ReplyQueue replies_;
  ClientBudget& budget_;
  std::size_t max_output_;
  std::size_t accounted_ = 0;     // what budget_ counts for this session
  std::vector<StoreOp> ops_;      // the batch of the last read
  std::vector<Lookup> lookups_;   // parallel to ops_
  bool in_herd_ = false;          // a batch is with the herd: reading waits
  std::size_t batch_places_ = 0;  // what this batch's WHATSATs may add to the replies, roughly
  // The same for lookups asked and not yet answered (places still loading, Google): counted
  // like unsent replies, so that a client cannot pile up lookups without end.
  std::size_t places_in_flight_ = 0;
  ReplyQueue::Id replies_counted_ = 0;
};

}  // namespace herd
