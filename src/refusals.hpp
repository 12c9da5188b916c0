// One log line per refused connection, but at most `burst` in a window: a stranger who opens
// connections in a loop must not flood the log. The rest are counted, and the count is logged
// with the next refusal after the window.
#pragma once

#include <chrono>
#include <string_view>

#include <fmt/format.h>

#include "log.hpp"

namespace herd {

class RefusalLog {
 public:
  RefusalLog(std::string_view who, std::chrono::seconds window = std::chrono::seconds(10),
             int burst = 10)
      : who_(who), window_(window), burst_(burst) {}

  void refused(Log& log, std::string_view from, std::string_view why) {
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= window_) {
      if (unlogged_ > 0)
        log.warning(who_, fmt::format("refused {} more connections in {} s, not logged one by one",
                                    unlogged_, window_.count()));
      window_start_ = now;
      logged_ = unlogged_ = 0;
    }
    if (logged_ < burst_) {
      ++logged_;
      log.warning(who_, fmt::format("refused {}: {}", from, why));
    } else {
      ++unlogged_;
    }
  }

 private:
  std::string_view who_;
  std::chrono::seconds window_;
  int burst_;
  std::chrono::steady_clock::time_point window_start_;
  int logged_ = 0, unlogged_ = 0;
};

}  // namespace herd
