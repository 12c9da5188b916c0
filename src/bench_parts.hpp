// The pieces of herdctl bench that do no I/O: the line template, the reply scanner and the
// latency histogram.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd::bench {

// A request line with placeholders: %c the connection's index, %n a counter over all
// requests, %t the wall-clock time as seconds.nanoseconds, %% a percent sign.
class LineTemplate {
 public:
  // Throws std::invalid_argument naming an unknown placeholder.
  explicit LineTemplate(std::string_view text);

  bool uses_time() const { return uses_time_; }

  // Appends one request, with its '\n'.
  void render(std::string& out, int connection, std::uint64_t number, std::string_view time) const {
    for (const auto& piece : pieces_) {
      switch (piece.kind) {
        case Kind::text:
          out += piece.text;
          break;
        case Kind::connection:
          append_number(out, static_cast<std::uint64_t>(connection));
          break;
        case Kind::number:
          append_number(out, number);
          break;
        case Kind::time:
          out += time;
          break;
      }
    }
    out += '\n';
  }

 private:
  enum class Kind : char { text, connection, number, time };
  struct Piece {
    Kind kind;
    std::string text;
  };

  static void append_number(std::string& out, std::uint64_t n) {
    char digits[20];
    auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.append(digits, end);
  }

  std::vector<Piece> pieces_;
  bool uses_time_ = false;
};

// Splits a reply stream into replies: a reply is a line, or with `blank_line` lines up to
// an empty line (WHATSAT's). A reply that starts with "? " (refused) is always one line.
class ReplyScanner {
 public:
  explicit ReplyScanner(bool blank_line) : blank_line_(blank_line) {}

  // Calls on_reply(refused) for each reply that `data` completes.
  template <class OnReply>
  void feed(const char* p, const char* end, OnReply&& on_reply) {
    while (p < end) {
      if (head_seen_ < 2 && *p != '\n') {  // a reply's first two bytes say whether it is "? "
        refused_ = head_seen_ == 0 ? *p == '?' : refused_ && *p == ' ';
        ++head_seen_;
        line_has_bytes_ = true;
        ++p;
        continue;
      }
      auto nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (!nl) {
        line_has_bytes_ = true;
        return;
      }
      bool empty_line = nl == p && !line_has_bytes_;
      bool refused = refused_ && head_seen_ == 2;
      line_has_bytes_ = false;
      p = nl + 1;
      if (!blank_line_ || empty_line || refused) {
        on_reply(refused);
        head_seen_ = 0;
        refused_ = false;
      }
    }
  }

 private:
  bool blank_line_;
  bool line_has_bytes_ = false;
  int head_seen_ = 0;  // how many of the reply's first two bytes were seen
  bool refused_ = false;
};

// Latencies in nanoseconds, counted in buckets within 1/64 of their value: the same small
// memory however long the run.
class Histogram {
 public:
  void record(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }

  // The value below which a fraction q of the samples lie (as a sorted array's element
  // floor(q * count)): its bucket's midpoint, never above the maximum.
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    auto rank = std::min(total_, static_cast<std::uint64_t>(q * static_cast<double>(total_)) + 1);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_, lowest(i) + (width(i) - 1) / 2);
    }
    return max_;
  }

 private:
  static constexpr int sub_bits = 6;
  static constexpr std::uint64_t sub_count = 1 << sub_bits;

  // Values below 64 have a bucket each; above, each power of two is cut into 64 buckets.
  static std::size_t index(std::uint64_t v) {
    if (v < sub_count) return v;
    int shift = std::bit_width(v) - 1 - sub_bits;
    return static_cast<std::size_t>((static_cast<std::uint64_t>(shift) + 1) * sub_count +
                                    ((v >> shift) - sub_count));
  }
  static std::uint64_t lowest(std::size_t i) {
    if (i < sub_count) return i;
    auto shift = i / sub_count - 1;
    return (sub_count + i % sub_count) << shift;
  }
  static std::uint64_t width(std::size_t i) {
    return i < sub_count ? 1 : std::uint64_t{1} << (i / sub_count - 1);
  }

  std::array<std::uint64_t, (65 - sub_bits) * sub_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

inline LineTemplate::LineTemplate(std::string_view text) {
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) pieces_.push_back({Kind::text, std::exchange(literal, {})});
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      literal += text[i];
      continue;
    }
    char what = i + 1 < text.size() ? text[++i] : '\0';
    if (what == '%') {
      literal += '%';
      continue;
    }
    flush();
    switch (what) {
      case 'c':
        pieces_.push_back({Kind::connection, {}});
        break;
      case 'n':
        pieces_.push_back({Kind::number, {}});
        break;
      case 't':
        pieces_.push_back({Kind::time, {}});
        uses_time_ = true;
        break;
      default:
        throw std::invalid_argument(
            what ? std::string("unknown placeholder %") + what + " in the line (%c, %n, %t, %%)"
                 : std::string("the line ends with a lone % (write %% for a percent sign)"));
    }
  }
  flush();
}

}  // namespace herd::bench
