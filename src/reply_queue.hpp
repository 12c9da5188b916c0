// A client connection's replies, kept in request order whatever order they complete in.
// No I/O: the session feeds it events and writes what it gathers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

class ReplyQueue {
 public:
  using Id = std::uint64_t;

  // A client that sends without reading stops being read once this much waits to be sent
  // (by default: a session pauses well below its clients.max_output_bytes).
  static constexpr std::size_t max_unsent = 4 * 1024 * 1024;

  explicit ReplyQueue(std::size_t pause_at = max_unsent) : pause_at_(pause_at) {}

  // Takes the next reply in line. A ready one that has nothing waiting before it goes straight
  // to `out`; otherwise it waits with `line` (plus a newline) as its text until complete().
  Id add(std::string_view line, bool ready, std::string& out);

  // Marks a reply ready, replacing its text when `text` is given (whole, newlines included),
  // and appends to `out` every ready reply now at the front of the line. Returns whether it
  // appended anything. Unknown or already complete replies are ignored.
  bool complete(Id id, std::string& out, std::string_view text = {});

  // Replies not yet handed out, in bytes (their texts) and in number.
  std::size_t waiting_bytes() const { return waiting_bytes_; }
  std::size_t waiting() const { return waiting_.size() - front_; }
  // Replies handed out so far.
  Id handed_out() const { return first_waiting_; }

  // Whether the session should stop reading until the client takes some of its replies:
  // `unsent` is what the connection holds that the socket has not taken.
  std::size_t pause_at() const { return pause_at_; }
  bool should_pause_reading(std::size_t unsent) const {
    return unsent + waiting_bytes() > pause_at_;
  }

 private:
  struct Reply {
    std::size_t at = 0, size = 0;  // its text in texts_
    bool ready = false;
  };

  Reply& front() { return waiting_[front_]; }
  void pop_front();
  void hand_out_front(std::string& out);
  void compact();

  // From waiting_[front_], the oldest reply not handed out. Not a deque: that allocates
  // half a kilobyte up front, for each of thousands of idle connections.
  std::vector<Reply> waiting_;
  std::size_t pause_at_;
  std::size_t front_ = 0;
  std::string texts_;          // their texts, and those of replies gone since the last compact()
  std::size_t waiting_bytes_ = 0;  // the part of texts_ that waiting_ still refers to
  Id first_waiting_ = 0;           // the number of waiting_.front()
  Id next_ = 0;
};

// The send-timeout decision: a write has made no progress for the whole send timeout. A client
// that reads slowly takes bytes without the socket turning writable (that waits for a third of
// its buffer), so what the kernel still holds unacknowledged tells a slow reader from one that
// has stopped. `before` and `now`: the socket's unacknowledged bytes when the wait began, and now.
enum class Stall { keep_waiting, disconnect };
inline Stall judge_stall(int unacknowledged_before, int unacknowledged_now) {
  return unacknowledged_now < unacknowledged_before ? Stall::keep_waiting : Stall::disconnect;
}

}  // namespace herd
