#include <catch2/catch.hpp>

#include "protocol.hpp"

using namespace herd;

namespace {

// What a server named "Goloman" answers to a line that needs no store, received at `at`.
std::string reply(std::string_view line, Timestamp at = {1520023935, 182837383}) {
  auto command = parse_client_line(line);
  if (auto iamat = std::get_if<Iamat>(&command)) return at_reply("Goloman", *iamat, at);
  if (std::holds_alternative<Invalid>(command)) return format_invalid(line);
  return "(needs the store)";
}

}  // namespace

TEST_CASE("IAMAT is answered with AT, echoing the client's fields exactly", "[protocol]") {
  struct Case {
    std::string_view line, expected;
  };
  auto c = GENERATE(values<Case>({
      {"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
       "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"},
      // any run of spaces or tabs separates fields; leading and trailing whitespace is ignored
      {"  IAMAT\tkiwi \t +34.068930-118.445127   1520023934.918963997 \t",
       "AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997"},
      {"IAMAT kiwi +34.068930-118.445127 1520023934.918963997\r",
       "AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997"},
      // the time is echoed as written, whatever its number of decimals
      {"IAMAT k +34-118 1520023935", "AT Goloman +0.182837383 k +34-118 1520023935"},
      {"IAMAT k +34-118 1520023935.1", "AT Goloman +0.082837383 k +34-118 1520023935.1"},
      {"IAMAT k +34-118 1520023935.182837383",
       "AT Goloman +0.000000000 k +34-118 1520023935.182837383"},
      {"IAMAT k +34-118 1520023935.182837384",
       "AT Goloman -0.000000001 k +34-118 1520023935.182837384"},
      {"IAMAT k +34-118 1520024035.182837383",
       "AT Goloman -100.000000000 k +34-118 1520024035.182837383"},
      // coordinate edges, leading zeros, coordinates echoed as written
      {"IAMAT k +90-180 1520023935", "AT Goloman +0.182837383 k +90-180 1520023935"},
      {"IAMAT k -90.000+180.0000 1520023935",
       "AT Goloman +0.182837383 k -90.000+180.0000 1520023935"},
      {"IAMAT k +00.0-000.0 1520023935", "AT Goloman +0.182837383 k +00.0-000.0 1520023935"},
      {"IAMAT k +089.99999999999-179.999999999999 1520023935",
       "AT Goloman +0.182837383 k +089.99999999999-179.999999999999 1520023935"},
      // a client name is any run of non-blank characters
      {"IAMAT 日本.example +34-118 1520023935",
       "AT Goloman +0.182837383 日本.example +34-118 1520023935"},
  }));
  CAPTURE(c.line);
  CHECK(reply(c.line) == c.expected);
}

TEST_CASE("anything that is not a valid command is answered with ? and the line as received",
          "[protocol]") {
  auto line = GENERATE(
      as<std::string_view>{},
      // wrong field counts
      "IAMAT", "IAMAT kiwi +34-118", "IAMAT kiwi +34-118 1520023934 extra", "WHATSAT kiwi 10",
      "WHATSAT kiwi 10 5 extra", "", "   ", "\t",
      // unknown and lower-case commands
      "iamat kiwi +34-118 1520023934", "Iamat kiwi +34-118 1520023934", "FOO bar",
      "whatsat kiwi 10 5", "HELLO",
      // bad coordinates
      "IAMAT k 34.068930-118.445127 1520023934", "IAMAT k +34.068930 1520023934",
      "IAMAT k +91-118 1520023934", "IAMAT k +90.0000001-118 1520023934",
      "IAMAT k -90.5+0 1520023934", "IAMAT k +34-180.000001 1520023934",
      "IAMAT k +34+181 1520023934", "IAMAT k +34.-118 1520023934", "IAMAT k +.5-118 1520023934",
      "IAMAT k +34-118- 1520023934", "IAMAT k +34-118-5 1520023934", "IAMAT k +3a-118 1520023934",
      "IAMAT k +1e1-118 1520023934", "IAMAT k ++34-118 1520023934", "IAMAT k +34--118 1520023934",
      "IAMAT k + - 1520023934", "IAMAT k +1000-118 1520023934", "IAMAT k +34-118.5.5 1520023934",
      // bad times
      "IAMAT k +34-118 1520023934.", "IAMAT k +34-118 .5", "IAMAT k +34-118 1e9",
      "IAMAT k +34-118 -1520023934", "IAMAT k +34-118 +1520023934",
      "IAMAT k +34-118 1520023934.1234567891", "IAMAT k +34-118 abc", "IAMAT k +34-118 15200x3934",
      "IAMAT k +34-118 1000000000000000000000", "IAMAT k +34-118 99999999999999999999.5",
      "IAMAT k +34-118 1520023934,5",
      // bad radius or bound
      "WHATSAT kiwi 51 5", "WHATSAT kiwi 10 21", "WHATSAT kiwi -1 5", "WHATSAT kiwi 10 -1",
      "WHATSAT kiwi 1.5 5", "WHATSAT kiwi 10 2.0", "WHATSAT kiwi +10 5", "WHATSAT kiwi ten 5",
      "WHATSAT kiwi 10 5x", "WHATSAT kiwi 99999999999999999999 5",
      // peer messages are not for clients
      "AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
      "PUT 1 AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997", "ACK 1",
      "PEER", "PEER a b");
  CAPTURE(line);
  CHECK(reply(line) == "? " + std::string(line));
}

TEST_CASE("WHATSAT takes a radius of 0..50 km and a bound of 0..20", "[protocol]") {
  struct Case {
    std::string_view line;
    int radius, bound;
  };
  auto c = GENERATE(values<Case>({{"WHATSAT kiwi 10 5", 10, 5},
                                  {"WHATSAT kiwi 0 0", 0, 0},
                                  {"WHATSAT kiwi 50 20", 50, 20},
                                  {"WHATSAT\tkiwi  007 05 ", 7, 5}}));
  CAPTURE(c.line);
  auto command = parse_client_line(c.line);
  auto whatsat = std::get_if<Whatsat>(&command);
  REQUIRE(whatsat);
  CHECK(whatsat->client == "kiwi");
  CHECK(whatsat->radius_km == c.radius);
  CHECK(whatsat->bound == c.bound);
}

TEST_CASE("the time difference is exact to the nanosecond, with a sign and nine decimals",
          "[protocol]") {
  struct Case {
    Timestamp received, sent;
    std::string_view expected;
  };
  auto c = GENERATE(values<Case>({
      {{1520023935, 182837383}, {1520023934, 918963997}, "+0.263873386"},
      {{1, 0}, {100, 999999412}, "-99.999999412"},
      {{5, 0}, {5, 0}, "+0.000000000"},
      {{5, 1}, {5, 0}, "+0.000000001"},
      {{5, 0}, {5, 1}, "-0.000000001"},
      {{6, 0}, {5, 999999999}, "+0.000000001"},
      {{5, 999999999}, {6, 0}, "-0.000000001"},
      {{2, 300000000}, {1, 0}, "+1.300000000"},
      {{1, 0}, {2, 300000000}, "-1.300000000"},
      {{1700000000, 0}, {0, 1}, "+1699999999.999999999"},
      {{1700000000, 500000000}, {999999999999999999, 999999999}, "-999999998299999999.499999999"},
  }));
  CHECK(format_diff(c.received, c.sent) == c.expected);
  CHECK(is_diff(c.expected));
}

TEST_CASE("times parse exactly, never through a double", "[protocol]") {
  CHECK(parse_time("1520023934.918963997") == Timestamp{1520023934, 918963997});
  CHECK(parse_time("1520023934.9") == Timestamp{1520023934, 900000000});
  CHECK(parse_time("0") == Timestamp{0, 0});
  CHECK(parse_time("999999999999999999.999999999") == Timestamp{999999999999999999, 999999999});
  // a nanosecond apart is different
  CHECK(*parse_time("1520023934.000000001") > *parse_time("1520023934"));
  CHECK_FALSE(parse_time("1000000000000000000"));
}

TEST_CASE("coordinates are checked exactly at the edges", "[protocol]") {
  auto where = parse_coordinates("+34.068930-118.445127");
  REQUIRE(where);
  CHECK(where->lat == Approx(34.068930));
  CHECK(where->lng == Approx(-118.445127));
  CHECK(parse_coordinates("-90+180"));
  CHECK_FALSE(parse_coordinates("+90.00000000000000000001+0"));
  CHECK_FALSE(parse_coordinates("+0+180.00000000000000000001"));
}

TEST_CASE("peer messages: AT, PUT with an id, ACK", "[protocol]") {
  auto at =
      parse_peer_line("AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997");
  REQUIRE(std::holds_alternative<At>(at));
  CHECK(std::get<At>(at).server == "Goloman");
  CHECK(std::get<At>(at).client_time == Timestamp{1520023934, 918963997});

  auto put = parse_peer_line("PUT 42 AT Hands -1.000000000 kiwi +34-118 1520023934");
  REQUIRE(std::holds_alternative<PeerPut>(put));
  CHECK(std::get<PeerPut>(put).id == 42);
  CHECK(std::get<PeerPut>(put).at.client == "kiwi");

  auto ack = parse_peer_line("ACK 42");
  REQUIRE(std::holds_alternative<PeerAck>(ack));
  CHECK(std::get<PeerAck>(ack).first == 42);
  CHECK(std::get<PeerAck>(ack).last == 42);

  auto range = parse_peer_line("ACK 7-4096");
  REQUIRE(std::holds_alternative<PeerAck>(range));
  CHECK(std::get<PeerAck>(range).first == 7);
  CHECK(std::get<PeerAck>(range).last == 4096);
  CHECK(format_ack(7, 4096) == "ACK 7-4096");
  CHECK(format_ack(42, 42) == "ACK 42");

  auto bad = GENERATE(as<std::string_view>{}, "AT Goloman 0.26 kiwi +34-118 1",
                      "AT Goloman +0.263873386 kiwi +34-118",
                      "PUT x AT Goloman +0.263873386 kiwi +34-118 1", "PUT 1", "ACK", "ACK -1",
                      "ACK 9-3", "ACK 3-", "ACK 3--4", "ACK 1 2", "ACK 3-x", "IAMAT kiwi +34-118 1",
                      "? AT Goloman +0.263873386 kiwi +34-118 1");
  CAPTURE(bad);
  CHECK(std::holds_alternative<Invalid>(parse_peer_line(bad)));
}

TEST_CASE("catch-up markers: SINCE and SYNCED with an epoch and a change number", "[protocol]") {
  auto since = parse_peer_line("SINCE 00c0ffee12345678 300000");
  REQUIRE(std::holds_alternative<PeerSince>(since));
  CHECK(std::get<PeerSince>(since).epoch == 0x00c0ffee12345678u);
  CHECK(std::get<PeerSince>(since).seq == 300000);
  auto none = parse_peer_line("SINCE - 0");
  REQUIRE(std::holds_alternative<PeerSince>(none));
  CHECK(std::get<PeerSince>(none).epoch == 0);

  auto synced = parse_peer_line("SYNCED ffffffffffffffff 18446744073709551615");
  REQUIRE(std::holds_alternative<PeerSynced>(synced));
  CHECK(std::get<PeerSynced>(synced).epoch == UINT64_MAX);
  CHECK(std::get<PeerSynced>(synced).seq == UINT64_MAX);

  CHECK(format_since({0x00c0ffee12345678u, 300000}) == "SINCE 00c0ffee12345678 300000");
  CHECK(format_since({0, 0}) == "SINCE - 0");
  CHECK(format_synced({1, 7}) == "SYNCED 0000000000000001 7");

  auto bad = GENERATE(as<std::string_view>{}, "SINCE", "SINCE - ", "SINCE 00c0ffee12345678",
                      "SINCE 00C0FFEE12345678 1", "SINCE c0ffee12345678 1",
                      "SINCE 000c0ffee12345678 1", "SINCE 0000000000000000 1", "SINCE - 5",
                      "SINCE 00c0ffee12345678 -1", "SINCE 00c0ffee12345678 1 2",
                      "SINCE 00c0ffee1234567g 1", "SYNCED - 0", "SYNCED 00c0ffee12345678 x",
                      "SYNCED 00c0ffee12345678 18446744073709551616", "since - 0");
  CAPTURE(bad);
  CHECK(std::holds_alternative<Invalid>(parse_peer_line(bad)));
}

TEST_CASE("a catch-up sends the changes after SINCE's number only within this epoch", "[protocol]") {
  constexpr std::uint64_t mine = 0xabcdef0123456789u;
  struct Case {
    PeerSince since;
    std::uint64_t changes;
    std::uint64_t after;
  };
  auto c = GENERATE(values<Case>({
      {{mine, 1000}, 1500, 1000},   // what changed since it last heard from this server
      {{mine, 1500}, 1500, 1500},   // nothing: it is up to date
      {{mine, 0}, 1500, 0},         // everything this epoch made
      {{mine, 1501}, 1500, 0},      // a number never given: its state is not ours to trust
      {{mine + 1, 10}, 1500, 0},    // another epoch: this server restarted without its store
      {{0, 0}, 1500, 0},            // it holds nothing of ours (a fresh state dir)
  }));
  CAPTURE(c.since.epoch, c.since.seq, c.changes);
  CHECK(catch_up_after(c.since, mine, c.changes) == c.after);
}

TEST_CASE("fields split on runs of blanks, wherever they fall", "[protocol]") {
  auto fields = [](std::string_view line) {
    std::vector<std::string_view> out;
    auto f = split_fields(line);
    for (std::size_t i = 0; i < f.size(); ++i) out.push_back(f[i]);
    return out;
  };
  using v = std::vector<std::string_view>;
  CHECK(fields("") == v{});
  CHECK(fields(" \t ") == v{});
  CHECK(fields("a") == v{"a"});
  CHECK(fields("  a  b\t\tc \r") == v{"a", "b", "c"});
  // control characters other than the blanks belong to the field, also past sixteen bytes
  CHECK(fields("a\x01"
               "bcdefghijklmnopqrstuvwxyz\x7f x") == v{"a\x01"
                                                       "bcdefghijklmnopqrstuvwxyz\x7f",
                                                       "x"});
  CHECK(fields("0123456789abcdef\v0123456789abcdef\f0123456789abcdefg") ==
        v{"0123456789abcdef", "0123456789abcdef", "0123456789abcdefg"});
  CHECK(split_fields("a b c d e f g h").size() == 8);
  CHECK(split_fields("a b c d e f g h i").size() == Fields::capacity + 1);
}

TEST_CASE("a time too far ahead of the server's clock is told exactly", "[protocol]") {
  const Timestamp now{1700000000, 900000000};
  struct Row {
    Timestamp time;
    std::int64_t max_ahead_ms;
    bool too_far;
  };
  for (auto row :
       {Row{{1700000000, 900000000}, 0, false}, Row{{1700000000, 900000001}, 0, true},
        Row{{1700086400, 900000000}, 86'400'000, false},
        Row{{1700086400, 900000001}, 86'400'000, true},
        Row{{1700000001, 499999999}, 600, false},  // the milliseconds carry a second
        Row{{1700000001, 500000000}, 600, false}, Row{{1700000001, 500000001}, 600, true},
        Row{{999999999999999999, 999999999}, 315'360'000'000, true}, Row{{0, 0}, 0, false},
        Row{{-5, 0}, 0, false}}) {
    INFO(row.time.seconds << "." << row.time.nanos << " within " << row.max_ahead_ms);
    CHECK(herd::too_far_ahead(row.time, now, row.max_ahead_ms) == row.too_far);
  }
}
