// The herd's line protocol as pure functions: parsing and formatting, no I/O, no clock.
// The receive time is always an argument, so tests and fuzzers can call everything here.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace herd {

// A POSIX time held exactly: whole seconds and nanoseconds, never a double.
struct Timestamp {
  std::int64_t seconds = 0;
  std::int32_t nanos = 0;  // 0..999'999'999; for negative times the seconds carry the sign
  auto operator<=>(const Timestamp&) const = default;
};

struct Coordinates {
  double lat = 0;
  double lng = 0;
};

// "1520023934.918963997": digits, optionally a point and 1..9 more digits.
std::optional<Timestamp> parse_time(std::string_view text);

// ISO 6709 decimal degrees "[+-]lat[+-]lon", latitude within ±90, longitude within ±180,
// checked exactly on the digits.
bool valid_coordinates(std::string_view text);
std::optional<Coordinates> parse_coordinates(std::string_view text);

// Whether `time` is more than `max_ahead_ms` milliseconds after `now`. Exact for any time the
// parser accepts, however large.
bool too_far_ahead(Timestamp time, Timestamp now, std::int64_t max_ahead_ms);

// received - sent with a sign and exactly nine decimals: "+0.263873386", "-99.999999412".
std::string format_diff(Timestamp received, Timestamp sent);

// The inverse, for time differences relayed by peers: "[+-]digits.9digits".
bool is_diff(std::string_view text);

// A line's fields, without allocating: no valid line has more than `capacity`.
struct Fields {
  static constexpr std::size_t capacity = 8;
  std::array<std::string_view, capacity> field;
  std::size_t count = 0;  // capacity + 1 when the line has more fields than that

  std::size_t size() const { return count; }
  bool empty() const { return count == 0; }
  std::string_view operator[](std::size_t i) const { return field[i]; }
};

// Splits on runs of spaces and tabs (and the other ASCII whitespace, so "\r\n" lines work).
Fields split_fields(std::string_view line);

inline constexpr int max_radius_km = 50;
inline constexpr int max_bound = 20;
inline constexpr std::size_t max_line_bytes = 64 * 1024;
// The longest AT line a record may have: sent as a PUT with the largest id, it still fits in a
// line. A longer one could be stored but never sent, so it is refused from clients and peers.
inline constexpr std::size_t max_at_line_bytes =
    max_line_bytes - std::string_view("PUT 18446744073709551615 ").size();

// IAMAT <client> <coords> <time>
struct Iamat {
  std::string_view client, coords, time;
  Timestamp client_time;
};

// WHATSAT <client> <radius_km> <bound>
struct Whatsat {
  std::string_view client;
  int radius_km = 0;
  int bound = 0;
};

// AT <server> <diff> <client> <coords> <time>: the record a server tells a client and its peers.
struct At {
  std::string_view server, diff, client, coords, time;
  Timestamp client_time;
};

// Peer messages, accepted only on a link that has completed the PEER handshake.
struct PeerPut {  // PUT <id> AT ...: an update the sender wants acknowledged by an ACK
  std::uint64_t id = 0;
  At at;
};
struct PeerAck {  // ACK <id> or ACK <first>-<last>: the PUTs with those ids are confirmed
  std::uint64_t first = 0, last = 0;
};

// A server's changes are numbered 1, 2, 3, ... within its epoch (a random 64-bit number,
// never 0, written as 16 lowercase hex digits; "-" for none): see docs/protocol.md, Catch-up.
struct PeerSince {  // SINCE <epoch> <seq>: the receiver holds the sender's changes up to <seq>
  std::uint64_t epoch = 0, seq = 0;
};
struct PeerSynced {  // SYNCED <epoch> <seq>: every change up to <seq> came before this line
  std::uint64_t epoch = 0, seq = 0;
};

struct Invalid {};

using ClientCommand = std::variant<Invalid, Iamat, Whatsat>;
using PeerMessage = std::variant<Invalid, At, PeerPut, PeerAck, PeerSince, PeerSynced>;

// What a client connection may send.
ClientCommand parse_client_line(std::string_view line);

// "PEER <server>", the first line each side sends on the peer port: the server's name.
std::optional<std::string_view> parse_peer_hello(std::string_view line);

// What a neighbor sends after the handshake.
PeerMessage parse_peer_line(std::string_view line);

// An epoch as 16 lowercase hex digits, or "-" for 0 (none); parse_epoch is the inverse.
std::string format_epoch(std::uint64_t epoch);
std::optional<std::uint64_t> parse_epoch(std::string_view text);
// "SINCE <epoch> <seq>" and "SYNCED <epoch> <seq>" (no newline).
std::string format_since(PeerSince since);
std::string format_synced(PeerSynced synced);

// What a catch-up sends a neighbor that said `since`: the records this server changed after
// the seq returned (0: every record). Its changes are known by number only within its own
// `epoch`, and only up to `changes` (the last number it gave): for another epoch, or a number
// it never reached (a copied state dir, say), it sends everything.
std::uint64_t catch_up_after(PeerSince since, std::uint64_t epoch, std::uint64_t changes);

// "ACK 7" or "ACK 3-9" (no newline).
std::string format_ack(std::uint64_t first, std::uint64_t last);

// Leaves room for the newline that follows it on the wire.
std::string format_at(std::string_view server, std::string_view diff, std::string_view client,
                      std::string_view coords, std::string_view time);

// The reply to an IAMAT received at `received` by `server`, which is also what the herd stores.
std::string at_reply(std::string_view server, const Iamat& iamat, Timestamp received);

// "? " followed by the line exactly as received (without its newline).
std::string format_invalid(std::string_view line);

}  // namespace herd
