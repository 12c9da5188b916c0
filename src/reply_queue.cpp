#include "reply_queue.hpp"

namespace herd {

ReplyQueue::Id ReplyQueue::add(std::string_view line, bool ready, std::string& out) {
  auto id = next_++;
  if (ready && waiting_.empty()) {
    out.append(line).push_back('\n');
    first_waiting_ = next_;
  } else {
    waiting_.push_back({texts_.size(), line.size() + 1, ready});
    texts_.append(line).push_back('\n');
  }
  return id;
}

bool ReplyQueue::complete(Id id, std::string& out, std::string_view text) {
  if (id < first_waiting_ || id - first_waiting_ >= waiting_.size()) return false;
  auto& reply = waiting_[id - first_waiting_];
  if (reply.ready) return false;
  reply.ready = true;
  bool moved = false;
  if (!text.empty() && id == first_waiting_) {  // first in line: straight out, no copy kept
    out.append(text);
    waiting_.pop_front();
    ++first_waiting_;
    moved = true;
  } else if (!text.empty()) {
    reply.at = texts_.size();
    reply.size = text.size();
    texts_.append(text);
  }
  while (!waiting_.empty() && waiting_.front().ready) {
    out.append(texts_, waiting_.front().at, waiting_.front().size);
    waiting_.pop_front();
    ++first_waiting_;
    moved = true;
  }
  if (waiting_.empty()) texts_.clear();
  return moved;
}

}  // namespace herd
