#include <catch2/catch.hpp>

#include "http_request.hpp"

using namespace herd::http;
using State = Request::State;

TEST_CASE("a request head is parsed once its empty line has come", "[http]") {
  struct Case {
    std::string received;
    State state;
    std::string method, path;
  };
  const Case cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", State::complete, "GET", "/metrics"},
      {"HEAD /healthz HTTP/1.0\r\n\r\n", State::complete, "HEAD", "/healthz"},
      {"GET /metrics?x=1 HTTP/1.1\n\n", State::complete, "GET", "/metrics"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\n", State::incomplete, "", ""},
      {"", State::incomplete, "", ""},
      {"GET /metrics\r\n\r\n", State::bad, "", ""},
      {"get /metrics HTTP/1.1\r\n\r\n", State::bad, "", ""},
      {"GET metrics HTTP/1.1\r\n\r\n", State::bad, "", ""},
      {"GET /metrics SPDY/3\r\n\r\n", State::bad, "", ""},
      {"\r\n\r\n", State::bad, "", ""},
  };
  for (const auto& c : cases) {
    INFO(c.received);
    auto request = parse_request(c.received);
    CHECK(request.state == c.state);
    CHECK(request.method == c.method);
    CHECK(request.path == c.path);
  }
}

TEST_CASE("a request head over 8 KiB is refused without waiting for its end", "[http]") {
  std::string head = "GET /metrics HTTP/1.1\r\nX: " + std::string(max_request_bytes, 'a');
  CHECK(parse_request(head).state == State::too_large);
  CHECK(parse_request(head + "\r\n\r\n").state == State::too_large);
  CHECK(parse_request(head.substr(0, max_request_bytes)).state == State::incomplete);
}

TEST_CASE("only /metrics and /healthz, by GET or HEAD", "[http]") {
  auto route_of = [](std::string method, std::string path) {
    return route(Request{State::complete, std::move(method), std::move(path)});
  };
  CHECK(route_of("GET", "/metrics") == Route::metrics);
  CHECK(route_of("HEAD", "/metrics") == Route::metrics);
  CHECK(route_of("GET", "/healthz") == Route::healthz);
  CHECK(route_of("POST", "/metrics") == Route::method_not_allowed);
  CHECK(route_of("DELETE", "/healthz") == Route::method_not_allowed);
  CHECK(route_of("GET", "/") == Route::not_found);
  CHECK(route_of("POST", "/metrics/x") == Route::not_found);
}

TEST_CASE("a response is whole, sized and closes the connection", "[http]") {
  CHECK(format_response(200, "text/plain", "ok\n") ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
        "Connection: close\r\n\r\nok\n");
  CHECK(format_response(200, "text/plain", "ok\n", true) ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
        "Connection: close\r\n\r\n");
  CHECK(format_response(405, "text/plain", "") ==
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
        "Allow: GET, HEAD\r\nConnection: close\r\n\r\n");
}
