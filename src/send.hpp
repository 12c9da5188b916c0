// herdctl send without the I/O: which bytes of a server's answer are the reply to which line,
// and a reply as one line of JSON. herdctl.cpp moves the bytes.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace herd::send {

struct Reply {
  std::string line;  // the request, without its newline
  std::string text;  // the server's full answer to it, newlines included
};

// A server answers every line, in order. A reply is one line, except a WHATSAT answered with an
// AT line: the AT line, the places JSON and one empty line.
class ReplySplitter {
 public:
  // A line was sent: the next reply not yet taken is its.
  void sent(std::string line) { requests_.push_back(std::move(line)); }
  // Adds bytes read from the server; returns the replies they complete, in order.
  std::vector<Reply> received(std::string_view bytes);
  std::size_t unanswered() const { return requests_.size(); }
  // Bytes read that are no complete reply (yet).
  std::string_view rest() const { return buffer_; }

 private:
  std::deque<std::string> requests_;
  std::string buffer_;
};

// {"server":…,"line":…} and then "at" (the AT line) and, for a WHATSAT, "places" (the JSON
// as the server sent it, on one line; places that are not JSON give "error" and "places_text");
// or "error" (the "? …" line); or "reply" (anything else, without its last newline). `server`
// is the name or HOST:PORT the line was sent to.
std::string json_reply(std::string_view server, const Reply& reply);

// `text` as a JSON string, quotes included. Bytes that are not UTF-8 become U+FFFD.
void append_json_string(std::string& out, std::string_view text);

}  // namespace herd::send
