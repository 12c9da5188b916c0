// Bytes read from a socket, handed out one complete line at a time. No I/O of its own.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace herd {

class LineBuffer {
 public:
  // Room for at least `n` more bytes at write_ptr(); moves unread bytes to the front when needed.
  char* prepare(std::size_t n) {
    if (begin_ > 0 && data_.size() - end_ < n) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      scan_ -= begin_;
      begin_ = 0;
    }
    if (data_.size() - end_ < n) data_.resize(end_ + n);
    return data_.data() + end_;
  }
  void commit(std::size_t n) { end_ += n; }

  // The next complete line without its '\n'; valid until the next prepare().
  std::optional<std::string_view> next_line() {
    if (scan_ == end_) return std::nullopt;
    if (auto nl = std::memchr(data_.data() + scan_, '\n', end_ - scan_)) {
      auto at = static_cast<std::size_t>(static_cast<const char*>(nl) - data_.data());
      std::string_view line(data_.data() + begin_, at - begin_);
      begin_ = scan_ = at + 1;
      return line;
    }
    scan_ = end_;
    return std::nullopt;
  }

  // The next complete line of at most `limit` bytes. A longer line is refused whole, as soon
  // as it is seen to be too long: skipped to its newline, however many reads that takes, and
  // counted in refused().
  std::optional<std::string_view> next_line(std::size_t limit) {
    for (;;) {
      if (skipping_) {
        auto nl = std::memchr(data_.data() + scan_, '\n', end_ - scan_);
        begin_ = scan_ =
            nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data_.data()) + 1 : end_;
        if (!nl) return std::nullopt;
        skipping_ = false;
      }
      auto line = next_line();
      if (line && line->size() <= limit) return line;
      if (line) {
        ++refused_;
      } else {
        if (end_ - begin_ > limit) {
          ++refused_;
          skipping_ = true;
          begin_ = scan_ = end_;
        }
        return std::nullopt;
      }
    }
  }
  std::uint64_t refused() const { return refused_; }

  // What follows the last complete line.
  std::string_view rest() const { return {data_.data() + begin_, end_ - begin_}; }
  void clear() {
    begin_ = end_ = scan_ = 0;
    skipping_ = false;
  }

 private:
  std::vector<char> data_;
  std::size_t begin_ = 0, end_ = 0, scan_ = 0;
  bool skipping_ = false;  // the bytes up to the next newline belong to a refused line
  std::uint64_t refused_ = 0;
};

}  // namespace herd
