#include "protocol.hpp"

#include <charconv>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <fmt/format.h>

namespace herd {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Field separators, looked up rather than compared: this runs for every byte of every line.
constexpr auto spaces = [] {
  std::array<bool, 256> table{};
  for (unsigned char c : {' ', '\t', '\r', '\v', '\f'}) table[c] = true;
  return table;
}();
bool is_space(char c) {
  return spaces[static_cast<unsigned char>(c)];
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// Parses an unsigned decimal of at most `max_digits` significant digits.
std::optional<std::int64_t> parse_unsigned(std::string_view s, std::size_t max_digits) {
  if (s.empty()) return std::nullopt;
  std::int64_t value = 0;
  std::size_t significant = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    significant += value != 0 || c != '0';
    if (significant > max_digits) return std::nullopt;  // before it could overflow
    value = value * 10 + (c - '0');
  }
  return value;
}

// Reads one signed decimal-degrees component "[+-]D[.D]" at `p`, within ±limit compared
// exactly. Returns where it ends, or nullptr when it is malformed or out of range.
const char* read_degrees(const char* p, const char* end, int limit) {
  if (p == end || (*p != '+' && *p != '-')) return nullptr;
  const char* whole = ++p;
  int degrees = 0;
  for (; p < end && is_digit(*p); ++p) {
    degrees = degrees * 10 + (*p - '0');
    if (degrees > limit) return nullptr;
  }
  if (p == whole) return nullptr;  // no whole degrees
  if (p == end || *p != '.') return p;
  const char* fraction = ++p;
  bool beyond = false;  // any nonzero fraction digit
  for (; p < end && is_digit(*p); ++p) beyond |= *p != '0';
  if (p == fraction || (degrees == limit && beyond)) return nullptr;
  return p;
}

double to_degrees(std::string_view s) {
  double value = 0;
  std::from_chars(s.data() + 1, s.data() + s.size(), value);
  return s[0] == '-' ? -value : value;
}

// Where the longitude starts in "[+-]lat[+-]lon".
std::size_t longitude_start(std::string_view text) {
  for (std::size_t i = 1; i < text.size(); ++i)
    if (text[i] == '+' || text[i] == '-') return i;
  return std::string_view::npos;
}

std::optional<int> parse_small_int(std::string_view s, int max) {
  auto value = parse_unsigned(s, 3);
  if (!value || *value > max) return std::nullopt;
  return static_cast<int>(*value);
}

std::optional<std::uint64_t> parse_id(std::string_view s) {
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || end != s.data() + s.size() || !all_digits(s)) return std::nullopt;
  return id;
}

PeerMessage parse_at(const Fields& f, std::size_t first) {
  if (f.size() != first + 6 || f[first] != "AT") return Invalid{};
  At at{f[first + 1], f[first + 2], f[first + 3], f[first + 4], f[first + 5], {}};
  auto time = parse_time(at.time);
  if (!time || !valid_coordinates(at.coords) || !is_diff(at.diff)) return Invalid{};
  at.client_time = *time;
  return at;
}

}  // namespace

// "S[.F]": S at most 18 significant digits (so it cannot overflow), F one to nine digits.
// One pass: this runs for every IAMAT.
std::optional<Timestamp> parse_time(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  std::int64_t seconds = 0;
  int significant = 0;
  for (; p < end && is_digit(*p); ++p) {
    significant += seconds != 0 || *p != '0';
    if (significant > 18) return std::nullopt;
    seconds = seconds * 10 + (*p - '0');
  }
  if (p == text.data()) return std::nullopt;
  if (p == end) return Timestamp{seconds, 0};
  if (*p != '.' || ++p == end || end - p > 9) return std::nullopt;
  std::int32_t nanos = 0;
  int digits = 0;
  for (; p < end; ++p, ++digits) {
    if (!is_digit(*p)) return std::nullopt;
    nanos = nanos * 10 + (*p - '0');
  }
  for (; digits < 9; ++digits) nanos *= 10;
  return Timestamp{seconds, nanos};
}

bool valid_coordinates(std::string_view text) {
  const char* end = text.data() + text.size();
  const char* longitude = read_degrees(text.data(), end, 90);
  return longitude && read_degrees(longitude, end, 180) == end;
}

std::optional<Coordinates> parse_coordinates(std::string_view text) {
  if (!valid_coordinates(text)) return std::nullopt;
  auto split = longitude_start(text);
  return Coordinates{to_degrees(text.substr(0, split)), to_degrees(text.substr(split))};
}

std::string format_diff(Timestamp received, Timestamp sent) {
  constexpr std::int64_t billion = 1'000'000'000;
  std::int64_t seconds = received.seconds - sent.seconds;
  std::int64_t nanos = received.nanos - sent.nanos;
  // Give both parts the same sign so that the magnitude reads off directly.
  if (seconds > 0 && nanos < 0) {
    seconds -= 1;
    nanos += billion;
  } else if (seconds < 0 && nanos > 0) {
    seconds += 1;
    nanos -= billion;
  }
  char text[32];
  text[0] = seconds < 0 || nanos < 0 ? '-' : '+';
  char* end = std::to_chars(text + 1, text + 21, seconds < 0 ? -seconds : seconds).ptr;
  *end++ = '.';
  auto fraction = nanos < 0 ? -nanos : nanos;
  for (int i = 8; i >= 0; --i, fraction /= 10) end[i] = static_cast<char>('0' + fraction % 10);
  return std::string(text, end + 9);
}

bool is_diff(std::string_view text) {
  if (text.size() < 12 || (text[0] != '+' && text[0] != '-')) return false;
  auto point = text.find('.');
  return point != std::string_view::npos && point > 1 && text.size() - point - 1 == 9 &&
         all_digits(text.substr(1, point - 1)) && all_digits(text.substr(point + 1));
}

// The end of the field starting at `i`: the next separator or the end of the line.
std::size_t field_end(std::string_view line, std::size_t i) {
#ifdef __SSE2__
  // Separators are all at most ' ': look sixteen bytes at a time for any such byte.
  const __m128i space = _mm_set1_epi8(' ');
  for (; i + 16 <= line.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(line.data() + i));
    auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, space), v)));
    for (; mask != 0; mask &= mask - 1) {
      auto at = i + static_cast<std::size_t>(__builtin_ctz(mask));
      if (is_space(line[at])) return at;
    }
  }
#endif
  while (i < line.size() && !is_space(line[i])) ++i;
  return i;
}

Fields split_fields(std::string_view line) {
  Fields fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    std::size_t start = i;
    i = field_end(line, i);
    if (i == start) break;
    if (fields.count == Fields::capacity) {
      fields.count = Fields::capacity + 1;
      break;
    }
    fields.field[fields.count++] = line.substr(start, i - start);
  }
  return fields;
}

ClientCommand parse_client_line(std::string_view line) {
  auto f = split_fields(line);
  if (f.empty()) return Invalid{};
  if (f[0] == "IAMAT" && f.size() == 4) {
    auto time = parse_time(f[3]);
    if (!time || !valid_coordinates(f[2])) return Invalid{};
    return Iamat{f[1], f[2], f[3], *time};
  }
  if (f[0] == "WHATSAT" && f.size() == 4) {
    auto radius = parse_small_int(f[2], max_radius_km);
    auto bound = parse_small_int(f[3], max_bound);
    if (!radius || !bound) return Invalid{};
    return Whatsat{f[1], *radius, *bound};
  }
  return Invalid{};
}

std::optional<std::string_view> parse_peer_hello(std::string_view line) {
  auto f = split_fields(line);
  if (f.size() == 2 && f[0] == "PEER") return f[1];
  return std::nullopt;
}

PeerMessage parse_peer_line(std::string_view line) {
  auto f = split_fields(line);
  if (f.empty()) return Invalid{};
  if (f[0] == "AT") return parse_at(f, 0);
  if (f[0] == "PUT" && f.size() >= 2) {
    auto id = parse_id(f[1]);
    auto at = parse_at(f, 2);
    if (!id || !std::holds_alternative<At>(at)) return Invalid{};
    return PeerPut{*id, std::get<At>(at)};
  }
  if (f[0] == "ACK" && f.size() == 2) {  // "ACK 7" or "ACK 3-9"
    auto dash = f[1].find('-');
    auto first = parse_id(f[1].substr(0, dash));
    auto last = dash == std::string_view::npos ? first : parse_id(f[1].substr(dash + 1));
    if (first && last && *first <= *last) return PeerAck{*first, *last};
  }
  if ((f[0] == "SINCE" || f[0] == "SYNCED") && f.size() == 3) {
    auto epoch = parse_epoch(f[1]);
    auto seq = parse_id(f[2]);
    if (!epoch || !seq || (*epoch == 0 && *seq != 0)) return Invalid{};
    if (f[0] == "SINCE") return PeerSince{*epoch, *seq};
    if (*epoch != 0) return PeerSynced{*epoch, *seq};
  }
  return Invalid{};
}

std::string format_epoch(std::uint64_t epoch) {
  return epoch == 0 ? std::string("-") : fmt::format("{:016x}", epoch);
}

std::optional<std::uint64_t> parse_epoch(std::string_view text) {
  if (text == "-") return 0;
  if (text.size() != 16) return std::nullopt;
  std::uint64_t epoch = 0;
  for (char c : text) {
    if (is_digit(c))
      epoch = epoch << 4 | static_cast<std::uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      epoch = epoch << 4 | static_cast<std::uint64_t>(c - 'a' + 10);
    else
      return std::nullopt;
  }
  if (epoch == 0) return std::nullopt;  // only "-" says none
  return epoch;
}

std::string format_since(PeerSince since) {
  return fmt::format("SINCE {} {}", format_epoch(since.epoch), since.seq);
}

std::string format_synced(PeerSynced synced) {
  return fmt::format("SYNCED {} {}", format_epoch(synced.epoch), synced.seq);
}

std::uint64_t catch_up_after(PeerSince since, std::uint64_t epoch, std::uint64_t changes) {
  return since.epoch == epoch && epoch != 0 && since.seq <= changes ? since.seq : 0;
}

bool too_far_ahead(Timestamp time, Timestamp now, std::int64_t max_ahead_ms) {
  Timestamp limit{now.seconds + max_ahead_ms / 1000,
                  now.nanos + static_cast<std::int32_t>(max_ahead_ms % 1000) * 1'000'000};
  if (limit.nanos >= 1'000'000'000) {
    limit.seconds += 1;
    limit.nanos -= 1'000'000'000;
  }
  return time > limit;
}

std::string format_ack(std::uint64_t first, std::uint64_t last) {
  return first == last ? fmt::format("ACK {}", first) : fmt::format("ACK {}-{}", first, last);
}

std::string format_at(std::string_view server, std::string_view diff, std::string_view client,
                      std::string_view coords, std::string_view time) {
  std::string line;
  line.reserve(10 + server.size() + diff.size() + client.size() + coords.size() + time.size());
  line.resize(2 + 5 + server.size() + diff.size() + client.size() + coords.size() + time.size());
  char* out = line.data();
  auto put = [&out](std::string_view part, char after) {
    std::memcpy(out, part.data(), part.size());
    out += part.size();
    if (after) *out++ = after;
  };
  put("AT", ' ');
  put(server, ' ');
  put(diff, ' ');
  put(client, ' ');
  put(coords, ' ');
  put(time, 0);
  return line;
}

std::string at_reply(std::string_view server, const Iamat& iamat, Timestamp received) {
  return format_at(server, format_diff(received, iamat.client_time), iamat.client, iamat.coords,
                   iamat.time);
}

std::string format_invalid(std::string_view line) {
  std::string reply;
  reply.reserve(line.size() + 2);
  reply.append("? ").append(line);
  return reply;
}

}  // namespace herd
