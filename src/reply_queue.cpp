#include "reply_queue.hpp"

namespace herd {

ReplyQueue::Id ReplyQueue::add(std::string_view line, bool ready, std::string& out) {
  auto id = next_++;
  if (ready && waiting() == 0) {
    out.append(line).push_back('\n');
    first_waiting_ = next_;
  } else {
    waiting_.push_back({texts_.size(), line.size() + 1, ready});
    texts_.append(line).push_back('\n');
    waiting_bytes_ += line.size() + 1;
  }
  return id;
}

bool ReplyQueue::complete(Id id, std::string& out, std::string_view text) {
  if (id < first_waiting_ || id - first_waiting_ >= waiting()) return false;
  auto& reply = waiting_[front_ + (id - first_waiting_)];
  if (reply.ready) return false;
  reply.ready = true;
  bool moved = false;
  if (!text.empty() && id == first_waiting_) {  // first in line: straight out, no copy kept
    out.append(text);
    waiting_bytes_ -= reply.size;
    pop_front();
    moved = true;
  } else if (!text.empty()) {
    waiting_bytes_ = waiting_bytes_ - reply.size + text.size();
    reply.at = texts_.size();
    reply.size = text.size();
    texts_.append(text);
  }
  while (waiting() > 0 && front().ready) {
    hand_out_front(out);
    moved = true;
  }
  compact();
  return moved;
}

void ReplyQueue::hand_out_front(std::string& out) {
  out.append(texts_, front().at, front().size);
  waiting_bytes_ -= front().size;
  pop_front();
}

void ReplyQueue::pop_front() {
  ++front_;
  ++first_waiting_;
}

// A queue that never empties (each reply waits, and the next comes before it is answered)
// would keep every text it ever held: once most of texts_ is gone, keep only what waits.
void ReplyQueue::compact() {
  if (waiting() == 0) {
    texts_.clear();
    waiting_.clear();
    front_ = 0;
    if (texts_.capacity() > 64 * 1024) std::string().swap(texts_);
    return;
  }
  if (front_ > 1024 && front_ * 2 > waiting_.size()) {
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(front_));
    front_ = 0;
  }
  if (texts_.size() < 64 * 1024 || waiting_bytes_ * 2 > texts_.size()) return;
  std::string kept;
  kept.reserve(waiting_bytes_);
  for (auto i = front_; i < waiting_.size(); ++i) {
    auto& reply = waiting_[i];
    auto at = kept.size();
    kept.append(texts_, reply.at, reply.size);
    reply.at = at;
  }
  texts_.swap(kept);
}

}  // namespace herd
