// HTTP/1.1 requests and replies as pure functions over bytes: no sockets here.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace fake_places::http {

struct Header {
  std::string_view name;
  std::string_view value;
};

inline constexpr std::size_t max_headers = 64;
inline constexpr std::size_t max_head_bytes = 64 * 1024;
inline constexpr std::size_t max_body_bytes = 1024 * 1024;
inline constexpr std::string_view crlf = "\r\n";

inline bool iequals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the comma-separated header value lists `token`.
inline bool lists_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

inline constexpr std::array<bool, 256> token_chars = [] {
  std::array<bool, 256> set{};
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~0123456789")) set[c] = true;
  for (std::size_t c = 'a'; c <= 'z'; ++c) set[c] = true;
  for (std::size_t c = 'A'; c <= 'Z'; ++c) set[c] = true;
  return set;
}();

inline bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return token_chars[static_cast<unsigned char>(c)];
  });
}

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

enum class Parsed { incomplete, complete, error };

struct ParseResult {
  Parsed state = Parsed::incomplete;
  std::size_t consumed = 0;       // complete: bytes of the input this request used
  bool expects_continue = false;  // incomplete: the head is in and the client awaits 100 Continue
  int error_status = 0;           // error: the status to answer with before closing
};

// Views into the bytes it was parsed from, except a chunked body, which is decoded into `decoded_`.
class Request {
 public:
  std::string_view method;
  std::string_view target;  // as sent: path and query
  std::string_view head;    // request line and header lines, without the blank line
  int version_minor = 1;

  std::string_view path() const { return target.substr(0, target.find('?')); }
  std::string_view query() const {
    auto mark = target.find('?');
    return mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1);
  }
  std::string_view body() const { return chunked_ ? std::string_view(decoded_) : body_; }
  const Header* begin() const { return headers_.data(); }
  const Header* end() const { return headers_.data() + header_count_; }

  std::optional<std::string_view> header(std::string_view name) const {
    for (const Header& h : *this) {
      if (iequals(h.name, name)) return h.value;
    }
    return std::nullopt;
  }

  bool keep_alive() const {
    auto connection = header("Connection");
    if (version_minor == 0) return connection && lists_token(*connection, "keep-alive");
    return !connection || !lists_token(*connection, "close");
  }

 private:
  friend class Parser;
  std::array<Header, max_headers> headers_{};
  std::size_t header_count_ = 0;
  std::string_view body_;
  std::string decoded_;
  bool chunked_ = false;
};

// Parses the first request of its input; pipelined requests follow at `consumed`.
class Parser {
 public:
  static ParseResult parse(std::string_view input, Request& request) {
    std::size_t start = 0;
    while (input.substr(start, 2) == crlf) start += 2;  // RFC 9112: ignore blank lines before one
    auto blank = input.find("\r\n\r\n", start);
    if (blank == std::string_view::npos) {
      return input.size() - start > max_head_bytes ? error(431) : ParseResult{};
    }
    if (blank - start > max_head_bytes) return error(431);
    request.head = input.substr(start, blank - start);
    auto line_end = request.head.find(crlf);
    if (int status = parse_request_line(request.head.substr(0, line_end), request)) {
      return error(status);
    }
    auto header_lines =
        line_end == std::string_view::npos ? std::string_view() : request.head.substr(line_end + 2);
    if (int status = parse_header_lines(header_lines, request)) return error(status);

    std::size_t body_start = blank + 4;
    request.chunked_ = false;
    request.body_ = {};
    if (auto coding = request.header("Transfer-Encoding")) {
      if (!iequals(trim(coding->substr(coding->rfind(',') + 1)), "chunked")) return error(501);
      return parse_chunked(input, body_start, request);
    }
    std::size_t length = 0;
    if (int status = content_length(request, length)) return error(status);
    if (input.size() - body_start < length) return incomplete_body(request);
    request.body_ = input.substr(body_start, length);
    return {Parsed::complete, body_start + length, false, 0};
  }

 private:
  static ParseResult error(int status) { return {Parsed::error, 0, false, status}; }

  static ParseResult incomplete_body(const Request& request) {
    auto expect = request.header("Expect");
    return {Parsed::incomplete, 0, expect && iequals(*expect, "100-continue"), 0};
  }

  static int parse_request_line(std::string_view line, Request& request) {
    auto first_space = line.find(' ');
    auto last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) return 400;
    request.method = line.substr(0, first_space);
    request.target = line.substr(first_space + 1, last_space - first_space - 1);
    auto version = line.substr(last_space + 1);
    if (!is_token(request.method) || request.target.empty()) return 400;
    if (request.target.find_first_of(" \t") != std::string_view::npos) return 400;
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.') return 400;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) return 505;
    request.version_minor = version[7] - '0';
    return 0;
  }

  static int parse_header_lines(std::string_view lines, Request& request) {
    request.header_count_ = 0;
    while (!lines.empty()) {
      auto end = lines.find(crlf);
      auto line = lines.substr(0, end);
      lines = end == std::string_view::npos ? std::string_view() : lines.substr(end + 2);
      auto colon = line.find(':');
      if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return 400;
      if (request.header_count_ == max_headers) return 431;
      request.headers_[request.header_count_++] = {line.substr(0, colon),
                                                   trim(line.substr(colon + 1))};
    }
    return 0;
  }

  // 0 and the length, or the error status; several Content-Length headers must agree.
  static int content_length(const Request& request, std::size_t& length) {
    std::optional<std::string_view> seen;
    for (const Header& h : request) {
      if (!iequals(h.name, "Content-Length")) continue;
      if (seen && *seen != h.value) return 400;
      seen = h.value;
      auto [end, ec] = std::from_chars(h.value.data(), h.value.data() + h.value.size(), length);
      if (ec != std::errc() || end != h.value.data() + h.value.size()) return 400;
    }
    return length > max_body_bytes ? 413 : 0;
  }

  static ParseResult parse_chunked(std::string_view input, std::size_t at, Request& request) {
    request.chunked_ = true;
    request.decoded_.clear();
    for (;;) {
      auto line_end = input.find(crlf, at);
      if (line_end == std::string_view::npos) return incomplete_body(request);
      std::size_t size = 0;
      std::size_t digits = 0;
      for (std::size_t i = at; i < line_end && hex_digit(input[i]) >= 0; ++i, ++digits) {
        size = size * 16 + static_cast<std::size_t>(hex_digit(input[i]));
        if (size > max_body_bytes) return error(413);
      }
      if (digits == 0) return error(400);
      at = line_end + 2;
      if (size == 0) break;
      if (input.size() < at + size + 2) return incomplete_body(request);
      if (input.substr(at + size, 2) != crlf) return error(400);
      if (request.decoded_.size() + size > max_body_bytes) return error(413);
      request.decoded_.append(input.substr(at, size));
      at += size + 2;
    }
    for (;;) {  // trailer fields, ignored, up to the blank line
      auto line_end = input.find(crlf, at);
      if (line_end == std::string_view::npos) return incomplete_body(request);
      bool blank = line_end == at;
      at = line_end + 2;
      if (blank) return {Parsed::complete, at, false, 0};
    }
  }
};

inline ParseResult parse_request(std::string_view input, Request& request) {
  return Parser::parse(input, request);
}

inline std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
        hex_digit(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
      i += 2;
    } else {
      out += plus_is_space && c == '+' ? ' ' : c;
    }
  }
  return out;
}

// The first value of `name` in a query string, percent-decoded ('+' is a space).
inline std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    auto key = pair.substr(0, eq);
    bool encoded = key.find_first_of("%+") != std::string_view::npos;
    if (encoded ? percent_decode(key, true) == name : key == name) {
      return eq == std::string_view::npos ? std::string()
                                          : percent_decode(pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

inline std::string_view reason_phrase(int status) {
  static constexpr std::array<std::pair<int, std::string_view>, 14> phrases{{
      {100, "Continue"},
      {200, "OK"},
      {400, "Bad Request"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {413, "Payload Too Large"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"},
  }};
  for (auto [code, phrase] : phrases) {
    if (code == status) return phrase;
  }
  return "Unknown";
}

// Status line and headers up to and including the blank line. `connection` is the value of a
// Connection header ("close", "keep-alive"), if one is due.
inline void append_head(std::string& out, int status, std::string_view content_type,
                        std::string_view server, std::size_t content_length,
                        std::string_view connection) {
  fmt::format_to(std::back_inserter(out),
                 "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nServer: {}\r\n",
                 status, reason_phrase(status), content_type, content_length, server);
  if (!connection.empty()) out.append("Connection: ").append(connection).append(crlf);
  out += crlf;
}

// The Connection header a reply to `request` carries: HTTP/1.1 keeps alive without one.
inline std::string_view connection_header(const Request& request) {
  if (!request.keep_alive()) return "close";
  return request.version_minor == 0 ? "keep-alive" : "";
}

}  // namespace fake_places::http
