#include "http_request.hpp"

#include <fmt/format.h>

namespace herd::http {
namespace {

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (c < 'A' || c > 'Z') return false;  // methods are upper-case letters
  return true;
}

}  // namespace

Request parse_request(std::string_view received) {
  Request request;
  // The head ends at an empty line; a bare \n is accepted as a line end, as RFC 9112 allows.
  auto end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) end = received.find("\n\n");
  if (end == std::string_view::npos || end > max_request_bytes) {
    if (received.size() > max_request_bytes) request.state = Request::State::too_large;
    return request;
  }
  auto line = received.substr(0, received.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto first_space = line.find(' ');
  auto last_space = line.rfind(' ');
  request.state = Request::State::bad;
  if (first_space == std::string_view::npos || first_space == last_space) return request;
  auto method = line.substr(0, first_space);
  auto target = line.substr(first_space + 1, last_space - first_space - 1);
  auto version = line.substr(last_space + 1);
  if (!is_token(method) || target.empty() || target.front() != '/' ||
      target.find(' ') != std::string_view::npos || !version.starts_with("HTTP/1."))
    return request;
  request.state = Request::State::complete;
  request.method = method;
  request.path = target.substr(0, target.find('?'));
  return request;
}

Route route(const Request& request) {
  if (request.path != "/metrics" && request.path != "/healthz") return Route::not_found;
  if (request.method != "GET" && request.method != "HEAD") return Route::method_not_allowed;
  return request.path == "/metrics" ? Route::metrics : Route::healthz;
}

std::string format_response(int status, std::string_view content_type, std::string_view body,
                            bool head) {
  auto text = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
      status, reason(status), content_type, body.size(),
      status == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (!head) text.append(body);
  return text;
}

}  // namespace herd::http
