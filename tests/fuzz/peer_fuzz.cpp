// libFuzzer target for what a link does with a neighbor's bytes: a line longer than the limit
// is refused whole however the bytes arrive, the lines around it come out intact, and every
// record a server would store can be sent on to the next neighbor and read back the same.
// The first byte is the line limit (small, so that short inputs reach it), the second the size
// of the reads the bytes arrive in; the rest is what the neighbor sent. Build and run with
// tools/fuzz SECONDS peer.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "line_buffer.hpp"
#include "protocol.hpp"
#include "store.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const herd::At& a, const herd::At& b) {
  return a.server == b.server && a.diff == b.diff && a.client == b.client && a.coords == b.coords &&
         a.time == b.time && a.client_time == b.client_time;
}

void one_peer_line(std::string_view line) {
  auto message = herd::parse_peer_line(line);
  auto put = std::get_if<herd::PeerPut>(&message);
  auto at = put ? &put->at : std::get_if<herd::At>(&message);
  if (at) {
    auto record = herd::location_of(*at);
    check(record.client() == at->client);
    if (record.at_line.size() > herd::max_at_line_bytes) return;  // refused by the link
    // Stored, it goes out again in catch-ups (AT) and floods (PUT, the longest id): both fit
    // a line and read back as the same record.
    auto again = herd::parse_peer_line(record.at_line);
    auto relayed = std::get_if<herd::At>(&again);
    check(relayed && same(*relayed, *at));
    auto flooded = "PUT 18446744073709551615 " + record.at_line;
    check(flooded.size() <= herd::max_line_bytes);
    auto as_put = herd::parse_peer_line(flooded);
    auto put_again = std::get_if<herd::PeerPut>(&as_put);
    check(put_again && put_again->id == UINT64_MAX && same(put_again->at, *at));
  }
  if (auto ack = std::get_if<herd::PeerAck>(&message)) {
    check(ack->first <= ack->last);
    auto again = herd::parse_peer_line(herd::format_ack(ack->first, ack->last));
    auto same_ack = std::get_if<herd::PeerAck>(&again);
    check(same_ack && same_ack->first == ack->first && same_ack->last == ack->last);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t limit = data[0];
  const std::size_t read_size = data[1] % 64 + 1;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);

  // What should come out: the complete lines within the limit; the others refused, the last
  // one too when it is already over the limit without its newline.
  std::vector<std::string_view> expected;
  std::uint64_t too_long = 0;
  std::size_t start = 0;
  for (std::size_t nl; (nl = bytes.find('\n', start)) != std::string_view::npos; start = nl + 1) {
    auto line = bytes.substr(start, nl - start);
    if (line.size() <= limit)
      expected.push_back(line);
    else
      ++too_long;
  }
  if (bytes.size() - start > limit) ++too_long;

  herd::LineBuffer buffer;
  std::vector<std::string> got;
  for (std::size_t at = 0; at < bytes.size(); at += read_size) {
    auto piece = bytes.substr(at, read_size);
    buffer.append(piece);
    while (auto line = buffer.next_line(limit)) {
      check(line->size() <= limit);
      got.emplace_back(*line);
      one_peer_line(*line);
    }
  }
  check(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) check(got[i] == expected[i]);
  check(buffer.refused() == too_long);
  return 0;
}
