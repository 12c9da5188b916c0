// Bytes read from a socket, handed out one complete line at a time. No I/O of its own.
// Between reads it keeps only the unfinished line, in storage sized to it: a connection that
// sent nothing holds nothing, one that sent part of a line holds about that part.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace herd {

class LineBuffer {
 public:
  // Adds bytes just read. Held bytes grow by a quarter at least, so a line arriving a byte at
  // a time is copied a few times over, not once per byte.
  void append(std::string_view bytes) {
    if (bytes.empty()) return;
    drop_taken();
    auto needed = data_.size() + bytes.size();
    if (needed > data_.capacity()) data_.reserve(std::max(needed, data_.size() + data_.size() / 4));
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  }

  // The next complete line without its '\n'; valid until the next append() or settle(), so
  // that what refers to the lines of a read may live until the lines of the next are taken.
  std::optional<std::string_view> next_line() {
    if (scan_ == data_.size()) return std::nullopt;
    if (auto nl = std::memchr(data_.data() + scan_, '\n', data_.size() - scan_)) {
      auto at = static_cast<std::size_t>(static_cast<const char*>(nl) - data_.data());
      std::string_view line(data_.data() + begin_, at - begin_);
      begin_ = scan_ = at + 1;
      ++lines_taken_;
      return line;
    }
    scan_ = data_.size();
    return std::nullopt;
  }

  // The next complete line of at most `limit` bytes. A longer line is refused whole, as soon
  // as it is seen to be too long: skipped to its newline, however many reads that takes (its
  // bytes are not kept meanwhile), and counted in refused().
  std::optional<std::string_view> next_line(std::size_t limit) {
    for (;;) {
      if (skipping_) {
        auto nl = scan_ < data_.size()
                      ? std::memchr(data_.data() + scan_, '\n', data_.size() - scan_)
                      : nullptr;
        begin_ = scan_ = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) -
                                                       data_.data()) + 1
                            : data_.size();
        if (!nl) return std::nullopt;
        skipping_ = false;
      }
      auto line = next_line();
      if (line && line->size() <= limit) return line;
      if (line) {
        ++refused_;
      } else {
        if (data_.size() - begin_ > limit) {
          ++refused_;
          skipping_ = true;
          begin_ = scan_ = data_.size();
        }
        return std::nullopt;
      }
    }
  }
  std::uint64_t refused() const { return refused_; }

  // Whether a complete line waits to be taken.
  bool has_line() const {
    return scan_ < data_.size() &&
           std::memchr(data_.data() + scan_, '\n', data_.size() - scan_) != nullptr;
  }

  // What follows the last complete line taken.
  std::string_view rest() const { return {data_.data() + begin_, data_.size() - begin_}; }

  // Forgets the lines handed out and gives back the storage rest() does not need.
  void settle() {
    if (begin_ == data_.size()) return release();
    drop_taken();
    if (data_.capacity() > data_.size() + data_.size() / 4 + 64) data_.shrink_to_fit();
  }
  void clear() {
    release();
    skipping_ = false;
  }

  // Lines handed out since the start: a connection's sign of life.
  std::uint64_t lines_taken() const { return lines_taken_; }
  // The bytes of storage held, whatever they hold.
  std::size_t capacity() const { return data_.capacity(); }

 private:
  void drop_taken() {
    if (begin_ == 0) return;
    data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(begin_));
    scan_ -= begin_;
    begin_ = 0;
  }
  void release() {
    std::vector<char>().swap(data_);
    begin_ = scan_ = 0;
  }

  std::vector<char> data_;
  std::size_t begin_ = 0, scan_ = 0;  // the first byte not handed out; where to look for '\n'
  std::uint64_t lines_taken_ = 0;
  bool skipping_ = false;  // the bytes up to the next newline belong to a refused line
  std::uint64_t refused_ = 0;
};

}  // namespace herd
