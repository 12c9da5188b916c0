#include <string>

#include <catch2/catch.hpp>

#include "reply_queue.hpp"

using herd::ReplyQueue;
using herd::Stall;

TEST_CASE("replies leave in request order whatever order they complete in", "[reply_queue]") {
  struct Step {
    const char* event;  // "add R", "add W" (waiting), "done N" or "done N text"
    const char* out;    // what is appended to the write by this step
  };
  const std::vector<std::vector<Step>> tables = {
      // Ready replies with nothing before them go out at once.
      {{"add R a", "a\n"}, {"add R b", "b\n"}},
      // A waiting reply holds back the ready ones behind it.
      {{"add W a", ""}, {"add R b", ""}, {"add R c", ""}, {"done 0", "a\nb\nc\n"}},
      // Completing out of order: the later one waits for the earlier.
      {{"add W a", ""},
       {"add W b", ""},
       {"add W c", ""},
       {"done 2", ""},
       {"done 1", ""},
       {"done 0", "a\nb\nc\n"}},
      // A completion may replace the text (a WHATSAT's answer), first in line or not.
      {{"add W ?", ""}, {"add W ?", ""}, {"done 1 X\nY\n\n", ""}, {"done 0 Z\n", "Z\nX\nY\n\n"}},
      // A second completion, or one for a reply long gone, changes nothing.
      {{"add W a", ""}, {"done 0", "a\n"}, {"done 0", ""}, {"done 7", ""}, {"add R b", "b\n"}},
  };
  for (const auto& table : tables) {
    ReplyQueue queue;
    for (const auto& step : table) {
      std::string out;
      std::string event = step.event;
      if (event.starts_with("add ")) {
        queue.add(event.substr(6), event[4] == 'R', out);
      } else {
        auto space = event.find(' ', 5);
        auto id = std::stoull(event.substr(5, space - 5));
        queue.complete(id, out, space == std::string::npos ? "" : event.substr(space + 1));
      }
      INFO(step.event);
      CHECK(out == step.out);
    }
  }
}

TEST_CASE("what is ready is gathered into one write", "[reply_queue]") {
  ReplyQueue queue;
  std::string out;
  for (int i = 0; i < 100; ++i) queue.add("AT x", false, out);
  CHECK(out.empty());
  CHECK(queue.waiting() == 100);
  CHECK(queue.waiting_bytes() == 500);
  for (int i = 99; i >= 1; --i) CHECK_FALSE(queue.complete(i, out));
  CHECK(queue.complete(0, out));
  CHECK(out.size() == 500);
  CHECK(queue.waiting() == 0);
  CHECK(queue.waiting_bytes() == 0);
}

TEST_CASE("reading pauses once 4 MiB wait to be sent", "[reply_queue]") {
  ReplyQueue queue;
  std::string out;
  queue.add("first", false, out);
  std::string big(1024 * 1024, 'x');
  for (int i = 0; i < 3; ++i) queue.add(big, true, out);
  CHECK(out.empty());
  CHECK_FALSE(queue.should_pause_reading(0));
  CHECK(queue.should_pause_reading(ReplyQueue::max_unsent));
  queue.add(big, true, out);
  CHECK(queue.should_pause_reading(0));
  queue.complete(0, out);
  CHECK_FALSE(queue.should_pause_reading(0));     // all handed to the connection...
  CHECK(queue.should_pause_reading(out.size()));  // ...which has not sent it yet
  CHECK_FALSE(queue.should_pause_reading(out.size() - 5 * 1024));
}

TEST_CASE("a session's queue pauses reading at its own limit", "[reply_queue]") {
  ReplyQueue queue(512 * 1024);
  std::string out;
  queue.add("first", false, out);
  queue.add(std::string(400 * 1024, 'x'), true, out);
  CHECK_FALSE(queue.should_pause_reading(100 * 1024));
  CHECK(queue.should_pause_reading(200 * 1024));
}

TEST_CASE("a stalled write disconnects only a client that took nothing", "[reply_queue]") {
  struct Row {
    int before, now;
    Stall verdict;
  };
  for (auto row : {Row{100000, 100000, Stall::disconnect}, Row{100000, 99999, Stall::keep_waiting},
                   Row{0, 0, Stall::disconnect}, Row{5, 70000, Stall::disconnect}}) {
    INFO(row.before << " -> " << row.now);
    CHECK(herd::judge_stall(row.before, row.now) == row.verdict);
  }
}

TEST_CASE("a queue that never empties counts only what still waits", "[reply_queue]") {
  // Each reply waits for the herd, and the next request comes before it is answered: the
  // queue is never empty, yet only one reply at a time is owed.
  ReplyQueue queue;
  std::string out;
  std::string line(1000, 'x');
  auto previous = queue.add(line, false, out);
  for (int i = 0; i < 5000; ++i) {
    auto next = queue.add(line, false, out);
    queue.complete(previous, out);
    previous = next;
  }
  CHECK(out.size() == 5000 * 1001);
  CHECK(queue.waiting() == 1);
  CHECK(queue.waiting_bytes() == 1001);
  CHECK_FALSE(queue.should_pause_reading(0));
  // A replaced text counts instead of the one it replaces, wherever it is in line.
  auto later = queue.add("?", false, out);
  CHECK(queue.waiting_bytes() == 1003);
  queue.complete(later, out, "AT and\nplaces\n\n");
  CHECK(queue.waiting_bytes() == 1001 + 15);
  out.clear();
  queue.complete(previous, out);
  CHECK(out == line + "\nAT and\nplaces\n\n");
  CHECK(queue.waiting_bytes() == 0);
}
