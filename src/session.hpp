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
          const ClientsConfig& clients);

  void start();
  // Stops reading; what was already read is answered, then the connection closes.
  void stop() override;
  void confirmed(std::vector<std::uint64_t> replies) override;

 private:
  awaitable<void> run(std::shared_ptr<Session> self);

  // LineHandler
  void received(LineBuffer& input, Timestamp at, Input state) override;
  bool hold_reading() const override;
  bool owes_output() const override { return replies_.waiting() > 0; }

  // A WHATSAT's radius and bound, kept until its client's record is found.
  struct Lookup {
    int radius_km = 0, bound = 0;
  };

  void handle(std::string_view line, Timestamp at);
  void applied();  // the herd has run the batch
  void look_up_places(StoreOp& op, Lookup lookup);
  void complete(std::uint64_t reply, std::string_view text = {});
  void flush();  // counts the replies handed out, then writes them

  std::uint64_t id_;
  std::string who_;  // "client N", for the log
  std::int64_t max_clock_skew_ms_;
  Herd& herd_;
  places::Provider& places_;
  AnyConnection connection_;
  ReplyQueue replies_;
  std::vector<StoreOp> ops_;     // the batch of the last read
  std::vector<Lookup> lookups_;  // parallel to ops_
  bool in_herd_ = false;      // a batch is with the herd: reading waits
  ReplyQueue::Id replies_counted_ = 0;
};

}  // namespace herd
