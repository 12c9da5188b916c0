// Legacy Nearby Search: HTTP 200 always, the outcome in "status", pretty-printed Google style.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "google_api.hpp"
#include "http.hpp"
#include "json.hpp"
#include "world.hpp"

namespace fake_places::legacy {

inline constexpr int page_size = 20;
inline constexpr double rank_by_distance_radius_m = 1000;

inline constexpr std::string_view missing_key_message =
    "You must use an API key to authenticate each request to Google Maps Platform APIs. For "
    "additional information, please refer to http://g.co/dev/maps-no-account";
inline constexpr std::string_view invalid_key_message = "The provided API key is invalid.";
inline constexpr std::string_view quota_message =
    "You have exceeded your daily request quota for this API.";
inline constexpr std::string_view invalid_location_message =
    "Invalid request. Invalid 'location' parameter.";
inline constexpr std::string_view missing_location_message =
    "Invalid request. Missing the 'location' parameter.";
inline constexpr std::string_view invalid_radius_message =
    "Invalid request. Invalid 'radius' parameter.";

struct Search {
  double lat = 0;
  double lng = 0;
  double radius_m = 0;
  int page = 0;
};

// A failed request: no results, maybe an error_message.
inline ApiReply status_only(std::string_view status, std::string_view error_message = {}) {
  ApiReply reply;
  JsonWriter json(reply.body, legacy_style);
  json.object();
  if (!error_message.empty()) json.member("error_message", error_message);
  json.key("html_attributions").array().end();
  json.key("results").array().end();
  json.member("status", status);
  json.end();
  return reply;
}

inline std::optional<double> parse_number(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (!std::isfinite(value)) return std::nullopt;
  return value;
}

inline std::optional<Search> parse_location(std::string_view text) {
  auto comma = text.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  auto lat = parse_number(http::trim(text.substr(0, comma)));
  auto lng = parse_number(http::trim(text.substr(comma + 1)));
  if (!lat || !lng || std::abs(*lat) > 90 || std::abs(*lng) > 180) return std::nullopt;
  return Search{*lat, *lng, 0, 0};
}

inline std::string page_token(const Search& search) {
  return base64url(
      fmt::format("fake-places|{}|{}|{}|{}", search.page, search.lat, search.lng, search.radius_m));
}

inline std::optional<Search> parse_page_token(std::string_view token) {
  std::string text = base64url_decode(token);
  std::string_view rest = text;
  if (!rest.starts_with("fake-places|")) return std::nullopt;
  rest.remove_prefix(12);
  std::array<double, 4> fields{};
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto bar = rest.find('|');
    auto field = parse_number(rest.substr(0, bar));
    if (!field || (bar == std::string_view::npos) != (i + 1 == fields.size())) return std::nullopt;
    fields[i] = *field;
    rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
  }
  int page = static_cast<int>(fields[0]);
  if (page < 1 || page * page_size >= places_per_search) return std::nullopt;
  return Search{fields[1], fields[2], fields[3], page};
}

inline void write_point(JsonWriter& json, std::string_view name, double lat, double lng) {
  json.key(name).object().member("lat", lat).member("lng", lng).end();
}

inline void write_result(JsonWriter& json, const Place& place) {
  const Category& category = *place.category;
  std::string code = plus_code(place.lat, place.lng);
  double half_lng = viewport_half_lng(place.lat);
  json.object();
  json.member("business_status", "OPERATIONAL");
  json.key("geometry").object();
  write_point(json, "location", place.lat, place.lng);
  json.key("viewport").object();
  write_point(json, "northeast", place.lat + viewport_half_lat,
              normalized_lng(place.lng + half_lng));
  write_point(json, "southwest", place.lat - viewport_half_lat,
              normalized_lng(place.lng - half_lng));
  json.end().end();
  json.member("icon", category.icon);
  json.member("icon_background_color", category.icon_background_color);
  json.member("icon_mask_base_uri", category.icon_mask_base_uri);
  json.member("name", place.name());
  json.key("opening_hours").object().member("open_now", place.open_now).end();
  bool portrait = (place.hash >> 20) & 1;
  json.key("photos").array().object();
  json.member("height", portrait ? 4032 : 3024);
  json.key("html_attributions").array();
  json.value(
      fmt::format(R"(<a href="https://maps.google.com/maps/contrib/1{:020}">A Google User</a>)",
                  place.hash % 10000000000000000000ULL));
  json.end();
  json.member("photo_reference", "AUc7tX" + token_chars(place.hash ^ 0x9407, 150));
  json.member("width", portrait ? 3024 : 4032);
  json.end().end();
  json.member("place_id", place.id);
  json.key("plus_code").object();
  json.member("compound_code", compound_code(code)).member("global_code", code);
  json.end();
  if (category.priced) json.member("price_level", place.price_level);
  json.member("rating", place.rating);
  json.member("reference", place.id);
  json.member("scope", "GOOGLE");
  json.key("types").array();
  for (auto type : category.types) json.value(type);
  json.end();
  json.member("user_ratings_total", place.user_rating_count);
  json.member("vicinity", place.vicinity());
  json.end();
}

inline ApiReply results_page(const Search& search, Fault fault) {
  int first = search.page * page_size;
  auto places = fault == Fault::zero
                    ? std::vector<Place>()
                    : places_around(search.lat, search.lng, search.radius_m, first, page_size);
  if (places.empty()) return status_only("ZERO_RESULTS");
  bool more = first + page_size < places_per_search;

  ApiReply reply;
  reply.body.reserve(2000 * places.size());
  JsonWriter json(reply.body, legacy_style);
  json.object();
  json.key("html_attributions").array().end();
  if (more) {
    json.member("next_page_token",
                page_token(Search{search.lat, search.lng, search.radius_m, search.page + 1}));
  }
  json.key("results").array();
  for (const Place& place : places) write_result(json, place);
  json.end();
  json.member("status", "OK");
  json.end();
  return reply;
}

// GET /maps/api/place/nearbysearch/json?<query>
inline ApiReply nearby_search(std::string_view query, std::string_view valid_key, Fault fault) {
  auto key = http::query_param(query, "key");
  if (fault == Fault::denied) return status_only("REQUEST_DENIED", invalid_key_message);
  if (!key || key->empty()) return status_only("REQUEST_DENIED", missing_key_message);
  if (*key != valid_key) return status_only("REQUEST_DENIED", invalid_key_message);
  if (fault == Fault::quota) return status_only("OVER_QUERY_LIMIT", quota_message);
  if (fault == Fault::invalid) return status_only("INVALID_REQUEST", invalid_location_message);

  if (auto token = http::query_param(query, "pagetoken")) {
    auto search = parse_page_token(*token);
    return search ? results_page(*search, fault) : status_only("INVALID_REQUEST");
  }
  auto location_text = http::query_param(query, "location");
  if (!location_text) return status_only("INVALID_REQUEST", missing_location_message);
  auto search = parse_location(*location_text);
  if (!search) return status_only("INVALID_REQUEST", invalid_location_message);

  auto radius_text = http::query_param(query, "radius");
  auto rank_by = http::query_param(query, "rankby");
  if (rank_by == "distance") {
    // Google wants no radius then, and something to look for.
    bool looks_for_something = http::query_param(query, "keyword") ||
                               http::query_param(query, "name") || http::query_param(query, "type");
    if (radius_text || !looks_for_something) return status_only("INVALID_REQUEST");
    search->radius_m = rank_by_distance_radius_m;
    return results_page(*search, fault);
  }
  if (!radius_text) return status_only("INVALID_REQUEST");  // Google gives no message here
  auto radius = parse_number(*radius_text);
  if (!radius || *radius < 0 || *radius > max_radius_m) {
    return status_only("INVALID_REQUEST", invalid_radius_message);
  }
  search->radius_m = *radius;
  return results_page(*search, fault);
}

}  // namespace fake_places::legacy
