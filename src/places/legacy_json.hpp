#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace herd::places {

// One result of a legacy Nearby Search reply, whatever provider found it.
// Every member has an initializer so designated initializers may skip any (-Wextra).
struct Place {
  std::string name{};
  double lat = 0, lng = 0;
  std::string place_id{}, vicinity{};
  std::vector<std::string> types{};
  std::optional<double> rating{};
  std::optional<std::int64_t> user_ratings_total{};
  std::optional<std::string> business_status{};
};

struct PlacesReply {
  std::string status = "OK";
  std::vector<Place> results{};
  std::string error_message{};  // omitted from the JSON when empty
  std::vector<std::string> html_attributions{};
};

// A result as the writer takes it. It only borrows, so results read out of another JSON
// document go into the reply without being copied into Places first.
struct PlaceView {
  std::string_view name{};
  double lat = 0, lng = 0;
  std::string_view place_id{}, vicinity{};
  std::span<const std::string_view> types{};
  std::optional<double> rating{};
  std::optional<std::int64_t> user_ratings_total{};
  std::optional<std::string_view> business_status{};
};

// The reply as Google's legacy Nearby Search prints it: 3-space indentation, `"key" : value`,
// short scalar arrays on one line, no empty line and no trailing newline.
std::string to_legacy_json(const PlacesReply& reply);

// Writes the same reply a result at a time, for results that are not Places.
class LegacyReplyWriter {
 public:
  // Writes what comes before the results; `expected_results` only sizes the buffer.
  explicit LegacyReplyWriter(std::size_t expected_results,
                             std::span<const std::string> html_attributions = {},
                             std::string_view error_message = {});

  void add(const PlaceView& place);
  // One of Google's own legacy results, passed through as it is.
  void add(simdjson::dom::element raw_result);
  // The whole reply; call it once, after the last result.
  std::string finish(std::string_view status);

 private:
  void next_result();

  std::string out_;
  bool has_results_ = false;
};

// Appends `value` in the same style; `depth` is the nesting level of the line it starts on.
void write_pretty(std::string& out, simdjson::dom::element value, int depth);

// Appends `text` as a JSON string literal, escaped as Google does (control characters, and
// <, >, & as \u003c, \u003e, \u0026); UTF-8 passes through, invalid bytes become U+FFFD.
void write_json_string(std::string& out, std::string_view text);

// Appends `value` as the shortest text that reads back the same (as fmt's "{}" writes it), or
// null when it is not finite.
void write_json_number(std::string& out, double value);

}  // namespace herd::places
