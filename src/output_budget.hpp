// The replies every client connection of the server holds unsent, counted together: each
// connection has its own cap, and this bounds their sum.
#pragma once

#include <atomic>
#include <cstddef>

namespace herd {

class OutputBudget {
 public:
  explicit OutputBudget(std::size_t limit) : limit_(limit) {}

  // A connection's bytes went from `before` to `now`. Returns whether all together now
  // exceed the limit. From any thread.
  bool change(std::size_t before, std::size_t now) {
    if (now >= before) return (held_ += now - before) > limit_;
    held_ -= before - now;
    return false;
  }
  std::size_t held() const { return held_; }
  std::size_t limit() const { return limit_; }

 private:
  std::atomic<std::size_t> held_{0};
  std::size_t limit_;
};

}  // namespace herd
