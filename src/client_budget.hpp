// What the client connections of a server hold together: descriptors and unread replies.
// Each connection has its own cap on replies; this bounds their sum, and counts connections
// for the accept loop, which leaves descriptors to the neighbor links.
#pragma once

#include <atomic>
#include <cstddef>

namespace herd {

class ClientBudget {
 public:
  explicit ClientBudget(std::size_t output_limit) : output_limit_(output_limit) {}

  // A connection's unread replies went from `before` to `now` bytes. Returns whether all
  // together now exceed the limit. From any thread.
  bool change_output(std::size_t before, std::size_t now) {
    if (now >= before) return (output_ += now - before) > output_limit_;
    output_ -= before - now;
    return false;
  }
  std::size_t output() const { return output_; }
  std::size_t output_limit() const { return output_limit_; }

  // Client connections open: one more when accepted, one less when closed.
  void opened() { ++connections_; }
  void closed() { --connections_; }
  std::size_t connections() const { return connections_; }

 private:
  std::atomic<std::size_t> output_{0}, connections_{0};
  std::size_t output_limit_;
};

}  // namespace herd
