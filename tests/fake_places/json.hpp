// A streaming JSON writer that prints the way Google's two Places APIs do.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace fake_places {

struct JsonStyle {
  int indent;              // 0: everything on one line
  std::string_view colon;  // between a key and its value
  bool escape_html;        // the legacy API writes < > & as \u003c \u003e \u0026
};

inline constexpr JsonStyle legacy_style{3, " : ", true};
inline constexpr JsonStyle new_style{2, ": ", false};
inline constexpr JsonStyle compact_style{0, ":", false};

// Characters a JSON string cannot hold as they are.
constexpr std::array<bool, 256> json_special_chars(bool html) {
  std::array<bool, 256> set{};
  for (std::size_t c = 0; c < 0x20; ++c) set[c] = true;
  set['"'] = set['\\'] = true;
  if (html) set['<'] = set['>'] = set['&'] = true;
  return set;
}
inline constexpr auto plain_special = json_special_chars(false);
inline constexpr auto html_special = json_special_chars(true);

class JsonWriter {
 public:
  JsonWriter(std::string& out, JsonStyle style) : out_(out), style_(style) {}

  JsonWriter& object() { return open('{', '}'); }
  JsonWriter& array() { return open('[', ']'); }

  JsonWriter& end() {
    Frame frame = stack_[--depth_];
    if (frame.count > 0) newline();
    out_ += frame.close;
    if (depth_ == 0 && style_.indent > 0) out_ += '\n';
    return *this;
  }

  JsonWriter& key(std::string_view name) {
    before_value();
    quoted(name);
    out_ += style_.colon;
    after_key_ = true;
    return *this;
  }

  JsonWriter& value(std::string_view text) {
    before_value();
    quoted(text);
    return *this;
  }
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(bool b) { return raw(b ? "true" : "false"); }
  JsonWriter& value(double n) { return number(n); }
  template <std::integral T>
  JsonWriter& value(T n) {
    return number(n);
  }

  // A value already in JSON form.
  JsonWriter& raw(std::string_view json) {
    before_value();
    out_ += json;
    return *this;
  }

  template <typename T>
  JsonWriter& member(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }

  static void escape(std::string& out, std::string_view text, bool html) {
    const auto& special = html ? html_special : plain_special;
    std::size_t run = 0;  // start of the characters not yet copied
    std::size_t i = 0;
    while (i < text.size()) {
      if (i + 8 <= text.size() && !needs_escape(text.data() + i, html)) {
        i += 8;
        continue;
      }
      for (std::size_t stop = std::min(i + 8, text.size()); i < stop; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (!special[c]) continue;
        out.append(text.data() + run, i - run);
        run = i + 1;
        append_escaped(out, c);
      }
    }
    out.append(text.data() + run, text.size() - run);
  }

 private:
  // Whether any of the 8 bytes at `bytes` needs escaping, without looking at each one.
  static bool needs_escape(const char* bytes, bool html) {
    constexpr std::uint64_t ones = 0x0101010101010101;
    constexpr std::uint64_t high = 0x8080808080808080;
    std::uint64_t word;
    std::memcpy(&word, bytes, sizeof word);
    auto has = [&](unsigned char c) {
      std::uint64_t x = word ^ (ones * c);
      return (x - ones) & ~x & high;
    };
    std::uint64_t found = ((word - ones * 0x20) & ~word & high) | has('"') | has('\\');
    if (html) found |= has('<') | has('>') | has('&');
    return found != 0;
  }

  static void append_escaped(std::string& out, unsigned char c) {
    constexpr std::string_view hex = "0123456789abcdef";
    switch (c) {
      case '"':
        out += "\\\"";
        return;
      case '\\':
        out += "\\\\";
        return;
      case '\n':
        out += "\\n";
        return;
      case '\r':
        out += "\\r";
        return;
      case '\t':
        out += "\\t";
        return;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
    }
  }

  template <typename T>
  JsonWriter& number(T n) {
    before_value();
    char digits[32];
    out_.append(digits, fmt::format_to(digits, "{}", n));
    return *this;
  }

  struct Frame {
    char close;
    int count;
  };

  JsonWriter& open(char open_char, char close_char) {
    before_value();
    out_ += open_char;
    stack_[depth_++] = {close_char, 0};
    return *this;
  }

  void before_value() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0) return;
    if (stack_[depth_ - 1].count++ > 0) out_ += ',';
    newline();
  }

  void newline() {
    if (style_.indent == 0) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(depth_ * style_.indent), ' ');
  }

  void quoted(std::string_view text) {
    out_ += '"';
    escape(out_, text, style_.escape_html);
    out_ += '"';
  }

  std::string& out_;
  JsonStyle style_;
  std::array<Frame, 32> stack_{};
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace fake_places
