// Replies that come from Google's front end rather than from an API: error pages and such.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "http.hpp"

namespace fake_places {

struct Reply {
  enum class Action { answer, hang, close };
  Action action = Action::answer;
  std::chrono::milliseconds delay{0};  // before answering
  int status = 200;
  std::string_view content_type;
  std::string_view server;
  std::shared_ptr<const std::string> body;
};

namespace front_end {

inline constexpr std::string_view json_type = "application/json; charset=UTF-8";
inline constexpr std::string_view html_type = "text/html; charset=UTF-8";
inline constexpr std::string_view text_type = "text/plain; charset=UTF-8";
inline constexpr std::string_view legacy_server = "scaffolding on HTTPServer2";
inline constexpr std::string_view new_server = "ESF";
inline constexpr std::string_view google_front_end = "GFE/2.0";
inline constexpr std::string_view fake_server = "fake_places";

inline std::shared_ptr<const std::string> shared(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

inline Reply page(int status, std::string_view content_type, std::string_view server,
                  std::shared_ptr<const std::string> body) {
  Reply reply;
  reply.status = status;
  reply.content_type = content_type;
  reply.server = server;
  reply.body = std::move(body);
  return reply;
}

inline Reply page(int status, std::string_view content_type, std::string_view server,
                  std::string body) {
  return page(status, content_type, server, shared(std::move(body)));
}

inline std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else if (c == '"') {
      out += "&quot;";
    } else {
      out += c;
    }
  }
  return out;
}

// The page Google's front end serves for its own errors.
inline std::string error_page(int status, std::string_view text) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport "
      "content=\"initial-scale=1, minimum-scale=1, width=device-width\">\n  <title>Error {0} "
      "({1})!!1</title>\n  <a href=//www.google.com/><span id=logo "
      "aria-label=Google></span></a>\n  <p><b>{0}.</b> <ins>That\u2019s an error.</ins>\n  "
      "<p>{2}  <ins>That\u2019s all we know.</ins>\n",
      status, http::reason_phrase(status), text);
}

inline Reply not_found(std::string_view path) {
  return page(404, html_type, google_front_end,
              error_page(404, fmt::format("The requested URL <code>{}</code> was not found on "
                                          "this server.",
                                          html_escape(path))));
}

inline Reply unavailable() {
  static const auto body = shared(error_page(
      503, "The service you requested is not available at this time. Please try again later."));
  return page(503, html_type, google_front_end, body);
}

// For a request it could not parse (400, 413, 431, ...); the connection closes after it.
inline Reply protocol_error(int status) {
  return page(status, html_type, google_front_end,
              error_page(status, "Your client has issued a malformed or illegal request."));
}

template <std::size_t N>
std::string bytes(const char (&text)[N]) {  // NULs included
  return std::string(text, N - 1);
}

// HTTP 200 and a body that starts like Google's and breaks off into bytes no parser accepts.
inline Reply garbage(bool legacy) {
  static const auto legacy_body = shared(bytes(
      "{\n   \"html_attributions\" : [],\n   \"results\" : [\n      {\n         \"busin\0\xff\xfe"
      "<html><body>upstream connect error or disconnect/reset before headers</body></html>"));
  static const auto new_body = shared(
      bytes("{\n  \"places\": [\n    {\n      \"id\": \"ChIJ\0\xff\xfe"
            "<html><body>upstream connect error or disconnect/reset before headers</body></html>"));
  return legacy ? page(200, json_type, legacy_server, legacy_body)
                : page(200, json_type, new_server, new_body);
}

}  // namespace front_end
}  // namespace fake_places
