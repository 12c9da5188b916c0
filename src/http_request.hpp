// The metrics port's HTTP/1.1, sans-IO: a request head parsed from the bytes read so far, the
// route it takes, and a response formatted whole. One request per connection (Connection: close),
// no body: a scraper sends GET or HEAD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace herd::http {

// A request head longer than this is refused (431) without reading further.
constexpr std::size_t max_request_bytes = 8 * 1024;

struct Request {
  enum class State { incomplete, complete, bad, too_large };
  State state = State::incomplete;
  std::string method;
  std::string path;  // the target without its query
};

// Parses the head of the request in `received` (everything read from the connection so far).
Request parse_request(std::string_view received);

enum class Route { metrics, healthz, not_found, method_not_allowed };
Route route(const Request& request);

// A whole response with Content-Length and Connection: close; `head`: without the body.
std::string format_response(int status, std::string_view content_type, std::string_view body,
                            bool head = false);

// The text format's content type.
constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace herd::http
