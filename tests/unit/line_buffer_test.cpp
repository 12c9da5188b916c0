#include <cstring>

#include <catch2/catch.hpp>

#include "line_buffer.hpp"

using herd::LineBuffer;

namespace {
void feed(LineBuffer& b, std::string_view bytes) {
  std::memcpy(b.prepare(bytes.size()), bytes.data(), bytes.size());
  b.commit(bytes.size());
}
}  // namespace

TEST_CASE("lines come out whole, however the bytes arrive", "[line_buffer]") {
  LineBuffer b;
  feed(b, "IAMAT a");
  CHECK_FALSE(b.next_line());
  feed(b, " +1+1 1\nWHATSAT");
  CHECK(b.next_line() == "IAMAT a +1+1 1");
  CHECK_FALSE(b.next_line());
  CHECK(b.rest() == "WHATSAT");
  feed(b, " a 1 1\n\nx\n");
  CHECK(b.next_line() == "WHATSAT a 1 1");
  CHECK(b.next_line() == "");
  CHECK(b.next_line() == "x");
  CHECK_FALSE(b.next_line());
  CHECK(b.rest().empty());
}

TEST_CASE("unread bytes survive the buffer moving them to the front", "[line_buffer]") {
  LineBuffer b;
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    auto line = std::string(static_cast<std::size_t>(i % 97), 'x') + std::to_string(i) + "\n";
    feed(b, line);
    auto got = b.next_line();
    REQUIRE(got);
    CHECK(*got == line.substr(0, line.size() - 1));
  }
  feed(b, "partial");
  CHECK(b.rest() == "partial");
}

TEST_CASE("a line over the limit is refused whole, however the bytes arrive", "[line_buffer]") {
  LineBuffer b;
  feed(b, "short\n");
  feed(b, std::string(5, 'x'));
  CHECK(b.next_line(8) == "short");
  CHECK_FALSE(b.next_line(8));
  CHECK(b.refused() == 0);
  feed(b, std::string(5, 'x'));  // ten bytes and no newline yet: refused now, once
  CHECK_FALSE(b.next_line(8));
  CHECK(b.refused() == 1);
  CHECK(b.rest().empty());
  feed(b, std::string(100, 'x'));
  CHECK_FALSE(b.next_line(8));
  feed(b, "xx\nnext\n123456789\n12345678\n");  // its end; then one over the limit, whole
  CHECK(b.next_line(8) == "next");
  CHECK(b.next_line(8) == "12345678");
  CHECK_FALSE(b.next_line(8));
  CHECK(b.refused() == 2);
  feed(b, "\n\nlast");
  CHECK(b.next_line(8) == "");
  CHECK(b.next_line(8) == "");
  CHECK_FALSE(b.next_line(8));
  CHECK(b.rest() == "last");
}
