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

// The reply as Google's legacy Nearby Search prints it: 3-space indentation, `"key" : value`,
// short scalar arrays on one line, no empty line and no trailing newline.
std::string to_legacy_json(const PlacesReply& reply);

// The same frame around Google's own legacy results, passed through in place of reply.results.
std::string to_legacy_json(const PlacesReply& reply,
                           std::span<const simdjson::dom::element> raw_results);

// Appends `value` in the same style; `depth` is the nesting level of the line it starts on.
void write_pretty(std::string& out, simdjson::dom::element value, int depth);

// Appends `text` as a JSON string literal, escaped as Google does (control characters, and
// <, >, & as \u003c, \u003e, \u0026); UTF-8 passes through, invalid bytes become U+FFFD.
void write_json_string(std::string& out, std::string_view text);

}  // namespace herd::places
