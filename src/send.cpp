#include "send.hpp"

#include <cstdint>

#include <fmt/format.h>
#include <simdjson.h>

#include "protocol.hpp"

namespace herd::send {

namespace {

bool is_whatsat(std::string_view request) {
  auto fields = split_fields(request);
  return !fields.empty() && fields[0] == "WHATSAT";
}

// Where the reply at the start of `text` to `request` ends, or npos while it is incomplete.
std::size_t reply_end(std::string_view request, std::string_view text) {
  auto first_line_end = text.find('\n');
  if (first_line_end == std::string_view::npos) return first_line_end;
  if (!(text.starts_with("AT ") && is_whatsat(request))) return first_line_end + 1;
  auto empty_line = text.find("\n\n", first_line_end);
  return empty_line == std::string_view::npos ? empty_line : empty_line + 2;
}

// The length of the UTF-8 sequence at the start of `text`, or 0 if it is not one (overlong,
// a surrogate, beyond U+10FFFF, cut short).
std::size_t utf8_length(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  std::uint8_t lead = byte(0);
  std::size_t length = lead >= 0xF8   ? 0
                       : lead >= 0xF0 ? 4
                       : lead >= 0xE0 ? 3
                       : lead >= 0xC0 ? 2
                                      : 0;
  if (length == 0 || length > text.size()) return 0;
  std::uint32_t code = lead & (0x7F >> length);
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3F);
  }
  static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

// Valid JSON without the blanks between its tokens: one line.
std::string compact(std::string_view json) {
  std::string out;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      continue;
    } else if (c == '"') {
      in_string = true;
    }
    out += c;
  }
  return out;
}

void append_field(std::string& out, std::string_view key, std::string_view text) {
  out += ',';
  append_json_string(out, key);
  out += ':';
  append_json_string(out, text);
}

}  // namespace

std::vector<Reply> ReplySplitter::received(std::string_view bytes) {
  buffer_.append(bytes);
  std::vector<Reply> replies;
  std::size_t taken = 0;
  while (!requests_.empty()) {
    auto end = reply_end(requests_.front(), std::string_view(buffer_).substr(taken));
    if (end == std::string_view::npos) break;
    replies.push_back({std::move(requests_.front()), buffer_.substr(taken, end)});
    requests_.pop_front();
    taken += end;
  }
  buffer_.erase(0, taken);
  return replies;
}

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      auto length = utf8_length(text.substr(i));
      out += length ? text.substr(i, length) : "\xEF\xBF\xBD";  // U+FFFD for a stray byte
      i += length ? length : 1;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

std::string json_reply(std::string_view server, const Reply& reply) {
  std::string out = "{";
  append_json_string(out, "server");
  out += ':';
  append_json_string(out, server);
  append_field(out, "line", reply.line);
  std::string_view text = reply.text;
  auto first_line = text.substr(0, text.find('\n'));
  if (text.starts_with("AT ")) {
    append_field(out, "at", first_line);
    auto places = text.substr(first_line.size());
    if (places.find_first_not_of("\n") != std::string_view::npos) {
      simdjson::dom::parser parser;
      simdjson::padded_string padded(places);
      if (auto error = parser.parse(padded).error()) {
        append_field(out, "error",
                     fmt::format("the places are not JSON: {}", simdjson::error_message(error)));
        append_field(out, "places_text", places);
      } else {
        out += ",\"places\":" + compact(places);
      }
    }
  } else if (text.starts_with("? ")) {
    append_field(out, "error", first_line);
  } else {
    append_field(out, "reply", text.substr(0, text.size() - (text.ends_with('\n') ? 1 : 0)));
  }
  out += '}';
  return out;
}

}  // namespace herd::send
