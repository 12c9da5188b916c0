#include <string>

#include <catch2/catch.hpp>

#include "send.hpp"

using herd::send::json_reply;
using herd::send::Reply;
using herd::send::ReplySplitter;

namespace {
std::string json_string(std::string_view text) {
  std::string out;
  herd::send::append_json_string(out, text);
  return out;
}
}  // namespace

TEST_CASE("replies are split per request, however the bytes arrive", "[send]") {
  ReplySplitter s;
  s.sent("IAMAT a +1+1 1");
  s.sent("WHATSAT a 10 2");
  s.sent("WHATSAT nobody 10 2");
  s.sent("bogus");
  CHECK(s.received("AT X +0.1 a +1+1 1").empty());
  auto first = s.received("\nAT X +0.1 a +1+1 1\n{\n  \"results\": []\n}\n");
  REQUIRE(first.size() == 1);
  CHECK(first[0].line == "IAMAT a +1+1 1");
  CHECK(first[0].text == "AT X +0.1 a +1+1 1\n");
  auto rest = s.received("\n? WHATSAT nobody 10 2\n? bogus\n");
  REQUIRE(rest.size() == 3);
  CHECK(rest[0].text == "AT X +0.1 a +1+1 1\n{\n  \"results\": []\n}\n\n");
  CHECK(rest[1].text == "? WHATSAT nobody 10 2\n");
  CHECK(rest[2].line == "bogus");
  CHECK(s.unanswered() == 0);
  CHECK(s.rest().empty());
}

TEST_CASE("JSON strings: quotes, backslashes, control bytes, UTF-8 kept, stray bytes replaced",
          "[send]") {
  CHECK(json_string("plain") == R"("plain")");
  CHECK(json_string("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_string("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  CHECK(json_string(std::string("\x01\x1f\x00", 3)) == R"("\u0001\u001f\u0000")");
  CHECK(json_string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x91") ==
        "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x91\"");
  CHECK(json_string("\xFF") == "\"\xEF\xBF\xBD\"");
  CHECK(json_string("\xF8\x90\x80\x80").find("\xF8") == std::string::npos);
  CHECK(json_string("\xC3") == "\"\xEF\xBF\xBD\"");                                  // cut short
  CHECK(json_string("\xC0\xAF") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");                  // overlong '/'
  CHECK(json_string("\xED\xA0\x80") == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
}

TEST_CASE("a reply as one line of JSON", "[send]") {
  CHECK(json_reply("Welsh", {"IAMAT a +1+1 1", "AT Welsh +0.5 a +1+1 1\n"}) ==
        R"({"server":"Welsh","line":"IAMAT a +1+1 1","at":"AT Welsh +0.5 a +1+1 1"})");
  CHECK(
      json_reply(
          "[::1]:12000",
          {"WHATSAT a 10 1", "AT W +0.5 a +1+1 1\n{\n \"results\" : [ \"x y\\\" \" ]\n}\n\n"}) ==
      R"({"server":"[::1]:12000","line":"WHATSAT a 10 1","at":"AT W +0.5 a +1+1 1","places":{"results":["x y\" "]}})");
  CHECK(json_reply("W", {"WHATSAT \"q\" 10 1", "? WHATSAT \"q\" 10 1\n"}) ==
        R"({"server":"W","line":"WHATSAT \"q\" 10 1","error":"? WHATSAT \"q\" 10 1"})");
  CHECK(json_reply("W", {"WHATSAT a 1 1", "AT W +0.5 a +1+1 1\n{oops\n\n"})
            .find(R"("error":"the places are not JSON)") != std::string::npos);
  CHECK(json_reply("W", {"x", "hello\n"}) == R"({"server":"W","line":"x","reply":"hello"})");
}
