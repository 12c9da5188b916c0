// libFuzzer target for the line protocol: hostile bytes must never crash the parser, and
// whatever it accepts must survive the trip to the store and to the neighbors intact.
// Build and run with tools/fuzz.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "line_buffer.hpp"
#include "protocol.hpp"
#include "store.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void one_line(std::string_view line) {
  auto command = herd::parse_client_line(line);
  if (auto iamat = std::get_if<herd::Iamat>(&command)) {
    // The reply is what neighbors receive: it must parse back to the same fields.
    auto reply = herd::at_reply("Fuzz", *iamat, {1'700'000'000, 123'456'789});
    auto relayed = herd::parse_peer_line(reply);
    auto at = std::get_if<herd::At>(&relayed);
    check(at && at->client == iamat->client && at->coords == iamat->coords &&
          at->time == iamat->time);
    check(at->client_time == iamat->client_time);
    auto location = herd::location_of(*at);
    check(location.client() == iamat->client);
    auto where = location.where();
    check(std::abs(where.lat) <= 90 && std::abs(where.lng) <= 180);
  }
  if (auto whatsat = std::get_if<herd::Whatsat>(&command)) {
    check(whatsat->radius_km >= 0 && whatsat->radius_km <= herd::max_radius_km);
    check(whatsat->bound >= 0 && whatsat->bound <= herd::max_bound);
  }
  auto message = herd::parse_peer_line(line);
  if (auto put = std::get_if<herd::PeerPut>(&message)) check(!put->at.client.empty());
  if (auto ack = std::get_if<herd::PeerAck>(&message)) {
    // A range survives its own formatting.
    check(ack->first <= ack->last);
    auto again = herd::parse_peer_line(herd::format_ack(ack->first, ack->last));
    auto same = std::get_if<herd::PeerAck>(&again);
    check(same && same->first == ack->first && same->last == ack->last);
  }
  check(herd::format_invalid(line).size() == line.size() + 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  herd::LineBuffer buffer;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Feed in two pieces, as a socket might deliver them.
  auto half = bytes.size() / 2;
  for (auto piece : {bytes.substr(0, half), bytes.substr(half)}) {
    buffer.append(piece);
    while (auto line = buffer.next_line()) one_line(*line);
    buffer.settle();
  }
  one_line(buffer.rest());
  return 0;
}
