#include "places/legacy_json.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <fmt/compile.h>
#include <fmt/format.h>

namespace herd::places {

using namespace std::literals;

namespace {

// Google's legacy output has the layout of jsoncpp's StyledWriter, including its line width.
constexpr std::size_t kRightMargin = 74;

// A string's text escaped, without its quotes: a place's strings share an append with theirs.
void write_escaped(std::string& out, std::string_view text);

void indent(std::string& out, int depth) {
  out.append(3 * static_cast<std::size_t>(depth), ' ');
}

// The multi-line layout: the opening bracket, one entry a line one level deeper, the closing one.
class Lines {
 public:
  Lines(std::string& out, int depth, char open) : out_(out), depth_(depth) { out_ += open; }

  void item() {
    out_ += first_ ? "\n" : ",\n";
    first_ = false;
    indent(out_, depth_ + 1);
  }

  void key(std::string_view name) {
    item();
    write_json_string(out_, name);
    out_ += " : ";
  }

  void close(char close) {
    if (!first_) {
      out_ += '\n';
      indent(out_, depth_);
    }
    out_ += close;
  }

 private:
  std::string& out_;
  int depth_;
  bool first_ = true;
};

// `value` with at most eight decimals when that reads back the same, as fmt's "{}" would write
// it; 0 when it does not. Coordinates and ratings are such numbers, and this costs one
// multiplication and a division against fmt's search for the shortest digits. Below 2^20 an
// interval of numbers that read back as `value` is far narrower than 1e-8, so it holds one
// number of eight decimals at most: the one `value` rounds to, which without its trailing
// zeros is the shortest text. From 1e-3 up fmt does not use an exponent.
std::size_t write_few_decimals(char* text, double value) {
  const double magnitude = std::fabs(value);
  if (!(magnitude >= 1e-3 && magnitude < 0x1p20)) return 0;
  const auto rounded = static_cast<std::int64_t>(magnitude * 1e8 + 0.5);
  if (static_cast<double>(rounded) / 1e8 != magnitude) return 0;
  auto scaled = static_cast<std::uint64_t>(rounded);  // unsigned divides by 10 in fewer steps
  int decimals = 8;
  for (; decimals > 0 && scaled % 10 == 0; --decimals) scaled /= 10;
  char digits[32];
  char* const end = digits + sizeof digits;
  char* p = end;
  for (int i = 0; i < decimals; ++i, scaled /= 10) *--p = static_cast<char>('0' + scaled % 10);
  if (decimals > 0) *--p = '.';
  do {
    *--p = static_cast<char>('0' + scaled % 10);
    scaled /= 10;
  } while (scaled > 0);
  if (value < 0) *--p = '-';
  std::memcpy(text, p, static_cast<std::size_t>(end - p));
  return static_cast<std::size_t>(end - p);
}

}  // namespace

void write_json_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char text[32];
  if (const std::size_t length = write_few_decimals(text, value)) {
    out.append(text, length);
    return;
  }
  // The shortest text that reads back the same; compiled, the format string costs nothing.
  out.append(text, fmt::format_to(text, FMT_COMPILE("{}"), value));
}

namespace {

void write_integer(std::string& out, std::int64_t value) {
  char text[24];
  out.append(text, fmt::format_to(text, FMT_COMPILE("{}"), value));
}

// jsoncpp's rule: `[ a, b ]` on one line while it stays short, else one item a line.
bool fits_on_one_line(std::size_t count, std::size_t one_line_length) {
  return count * 3 < kRightMargin && one_line_length < kRightMargin;
}

// `items` are already written: scalars or empty containers.
void write_flat_array(std::string& out, const std::vector<std::string>& items, int depth) {
  if (items.empty()) {
    out += "[]";
    return;
  }
  std::size_t one_line_length = 4 + (items.size() - 1) * 2;
  for (const auto& item : items) one_line_length += item.size();
  if (fits_on_one_line(items.size(), one_line_length)) {
    out += "[ ";
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += ", ";
      out += items[i];
    }
    out += " ]";
  } else {
    Lines lines(out, depth, '[');
    for (const auto& item : items) {
      lines.item();
      out += item;
    }
    lines.close(']');
  }
}

// Written on one line first: short enough is what nearly every array turns out to be.
template <class Strings>
void write_string_array(std::string& out, const Strings& strings, int depth) {
  if (strings.empty()) {
    out += "[]";
    return;
  }
  const std::size_t start = out.size();
  out += "[ \""sv;
  for (std::size_t i = 0; i < strings.size(); ++i) {
    if (i > 0) out += "\", \""sv;
    write_escaped(out, strings[i]);
  }
  out += "\" ]"sv;
  if (fits_on_one_line(strings.size(), out.size() - start)) return;
  out.resize(start);
  Lines lines(out, depth, '[');
  for (const auto& text : strings) {
    lines.item();
    write_json_string(out, text);
  }
  lines.close(']');
}

bool is_nonempty_container(simdjson::dom::element value) {
  simdjson::dom::array array;
  if (value.get(array) == simdjson::SUCCESS) return array.size() > 0;
  simdjson::dom::object object;
  if (value.get(object) == simdjson::SUCCESS) return object.size() > 0;
  return false;
}

void write_array(std::string& out, simdjson::dom::array array, int depth) {
  bool flat = true;
  for (auto item : array) flat = flat && !is_nonempty_container(item);
  if (flat) {
    std::vector<std::string> items(array.size());
    std::size_t i = 0;
    for (auto item : array) write_pretty(items[i++], item, depth + 1);
    write_flat_array(out, items, depth);
    return;
  }
  Lines lines(out, depth, '[');
  for (auto item : array) {
    lines.item();
    write_pretty(out, item, depth + 1);
  }
  lines.close(']');
}

void write_object(std::string& out, simdjson::dom::object object, int depth) {
  Lines lines(out, depth, '{');
  for (auto field : object) {
    lines.key(field.key);
    write_pretty(out, field.value, depth + 1);
  }
  lines.close('}');
}

// A result as it reads at depth 2, where every result is: keys in Google's (alphabetical)
// order. Written out whole rather than through Lines, as this is most of every reply.
void write_place(std::string& out, const PlaceView& place) {
  out += "{\n"sv;
  if (place.business_status) {
    out += "         \"business_status\" : \""sv;
    write_escaped(out, *place.business_status);
    out += "\",\n"sv;
  }
  out +=
      "         \"geometry\" : {\n"
      "            \"location\" : {\n"
      "               \"lat\" : "sv;
  write_json_number(out, place.lat);
  out += ",\n               \"lng\" : "sv;
  write_json_number(out, place.lng);
  out +=
      "\n"
      "            }\n"
      "         },\n"
      "         \"name\" : \""sv;
  write_escaped(out, place.name);
  out += "\",\n         \"place_id\" : \""sv;
  write_escaped(out, place.place_id);
  out += '"';
  if (place.rating) {
    out += ",\n         \"rating\" : "sv;
    write_json_number(out, *place.rating);
  }
  out += ",\n         \"types\" : "sv;
  write_string_array(out, place.types, 3);
  if (place.user_ratings_total) {
    out += ",\n         \"user_ratings_total\" : "sv;
    write_integer(out, *place.user_ratings_total);
  }
  out += ",\n         \"vicinity\" : \""sv;
  write_escaped(out, place.vicinity);
  out += "\"\n      }"sv;
}

// Length of the well-formed UTF-8 sequence that starts `text`, or 0 (Unicode table 3-7).
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [text](std::size_t i) -> unsigned {
    return i < text.size() ? static_cast<unsigned char>(text[i]) : 0;
  };
  const unsigned lead = byte(0);
  std::size_t length = 0;
  unsigned low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Google also escapes <, > and &, which keeps replies safe to embed in HTML.
std::string_view escape_of(char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    case '<':
      return "\\u003c";
    case '>':
      return "\\u003e";
    case '&':
      return "\\u0026";
    default:
      return {};
  }
}

}  // namespace

std::string to_legacy_json(const PlacesReply& reply) {
  LegacyReplyWriter writer(reply.results.size(), reply.html_attributions, reply.error_message);
  std::vector<std::string_view> types;
  for (const Place& place : reply.results) {
    types.assign(place.types.begin(), place.types.end());
    writer.add({.name = place.name,
                .lat = place.lat,
                .lng = place.lng,
                .place_id = place.place_id,
                .vicinity = place.vicinity,
                .types = types,
                .rating = place.rating,
                .user_ratings_total = place.user_ratings_total,
                .business_status = place.business_status});
  }
  return writer.finish(reply.status);
}

// The frame around the results never changes shape, so it is written as it reads.
LegacyReplyWriter::LegacyReplyWriter(std::size_t expected_results,
                                     std::span<const std::string> html_attributions,
                                     std::string_view error_message) {
  out_.reserve(256 + 640 * expected_results);  // about what a Google result takes
  out_ += "{\n   \"html_attributions\" : ";
  write_string_array(out_, html_attributions, 1);
  if (!error_message.empty()) {
    out_ += ",\n   \"error_message\" : ";
    write_json_string(out_, error_message);
  }
  out_ += ",\n   \"results\" : [";
}

void LegacyReplyWriter::next_result() {
  out_ += has_results_ ? ",\n      "sv : "\n      "sv;
  has_results_ = true;
}

void LegacyReplyWriter::add(const PlaceView& place) {
  next_result();
  write_place(out_, place);
}

void LegacyReplyWriter::add(simdjson::dom::element raw_result) {
  next_result();
  write_pretty(out_, raw_result, 2);
}

std::string LegacyReplyWriter::finish(std::string_view status) {
  out_ += has_results_ ? "\n   ],\n   \"status\" : " : "],\n   \"status\" : ";
  write_json_string(out_, status);
  out_ += "\n}";
  return std::move(out_);
}

void write_pretty(std::string& out, simdjson::dom::element value, int depth) {
  switch (value.type()) {
    case simdjson::dom::element_type::ARRAY:
      write_array(out, value.get_array().value_unsafe(), depth);
      break;
    case simdjson::dom::element_type::OBJECT:
      write_object(out, value.get_object().value_unsafe(), depth);
      break;
    case simdjson::dom::element_type::STRING:
      write_json_string(out, value.get_string().value_unsafe());
      break;
    case simdjson::dom::element_type::INT64:
      write_integer(out, value.get_int64().value_unsafe());
      break;
    case simdjson::dom::element_type::UINT64:
      fmt::format_to(std::back_inserter(out), "{}", value.get_uint64().value_unsafe());
      break;
    case simdjson::dom::element_type::DOUBLE:
      write_json_number(out, value.get_double().value_unsafe());
      break;
    case simdjson::dom::element_type::BOOL:
      out += value.get_bool().value_unsafe() ? "true" : "false";
      break;
    case simdjson::dom::element_type::NULL_VALUE:
      out += "null";
      break;
  }
}

namespace {

// Bytes copied as they are: printable ASCII (and DEL) other than the five Google escapes.
constexpr auto plain_table = [] {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 0x80; ++c)
    table[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&';
  return table;
}();
inline bool plain(char c) {
  return plain_table[static_cast<unsigned char>(c)];
}

#ifdef __SSE2__
// One bit for each of the sixteen bytes at `p` that is not plain.
unsigned special_mask(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Signed, so bytes from 0x80 up (UTF-8) count as below the space too.
  __m128i special = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
  for (const char c : {'"', '\\', '<', '>', '&'})
    special = _mm_or_si128(special, _mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
  return static_cast<unsigned>(_mm_movemask_epi8(special));
}
#endif

// The position of the first byte from `from` on that is not plain, or text.size(). Nearly
// every string is plain throughout, so this looks at sixteen bytes at a time.
std::size_t find_special(std::string_view text, std::size_t from) {
#ifdef __SSE2__
  if (text.size() >= 16) {
    for (; from + 16 <= text.size(); from += 16) {
      if (const unsigned mask = special_mask(text.data() + from))
        return from + std::countr_zero(mask);
    }
    if (from == text.size()) return from;
    // The last sixteen bytes, some of them already known to be plain.
    const std::size_t last = text.size() - 16;
    const unsigned mask = special_mask(text.data() + last) >> (from - last);
    return mask ? from + std::countr_zero(mask) : text.size();
  }
#endif
  while (from < text.size() && plain(text[from])) ++from;
  return from;
}

void write_escaped(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t run = find_special(text, i);
    out.append(text.data() + i, run - i);
    if ((i = run) == text.size()) break;
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x80) {
      const std::size_t length = utf8_sequence_length(text.substr(i));
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out += text.substr(i, length);
        i += length;
      }
      continue;
    }
    ++i;
    if (const auto escape = escape_of(static_cast<char>(byte)); !escape.empty()) {
      out += escape;
    } else {  // the other control characters
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", byte);
    }
  }
}

}  // namespace

void write_json_string(std::string& out, std::string_view text) {
  out += '"';
  write_escaped(out, text);
  out += '"';
}

}  // namespace herd::places
