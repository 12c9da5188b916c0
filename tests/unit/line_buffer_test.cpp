#include <cstring>

#include <catch2/catch.hpp>

#include "line_buffer.hpp"

using herd::LineBuffer;

namespace {
void feed(LineBuffer& b, std::string_view bytes) {
  b.append(bytes);
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

TEST_CASE("between reads only the unfinished line is kept, in storage sized to it", "[line_buffer]") {
  LineBuffer b;
  b.append("IAMAT a +1+1 1\nWHATSAT a 1 1\n");
  while (b.next_line()) {
  }
  b.settle();
  CHECK(b.capacity() == 0);  // an idle connection holds nothing
  CHECK(b.lines_taken() == 2);

  std::string sent;
  for (int i = 0; i < 60'000; ++i) {  // a line a byte at a time, never finished
    b.append("x");
    sent += 'x';
    CHECK_FALSE(b.next_line());
    b.settle();
  }
  CHECK(b.rest() == sent);
  CHECK(b.capacity() <= sent.size() + sent.size() / 4 + 64);

  b.append(std::string(4000, 'y') + "\nz");
  CHECK(b.next_line()->size() == 64'000);
  b.settle();
  CHECK(b.rest() == "z");
  CHECK(b.capacity() < 100);
  CHECK(b.lines_taken() == 3);
}

TEST_CASE("lines left for later are still there, and counted as waiting", "[line_buffer]") {
  LineBuffer b;
  b.append("a\nb\nc");
  CHECK(b.has_line());
  CHECK(b.next_line() == "a");
  b.settle();  // the handler stopped early: "b" waits for the next batch
  CHECK(b.has_line());
  CHECK(b.next_line() == "b");
  CHECK_FALSE(b.has_line());
  CHECK_FALSE(b.next_line());
  CHECK(b.rest() == "c");
}
