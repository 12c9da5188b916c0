// Places API (New) searchNearby: proto-JSON in, field-masked proto-JSON out, google.rpc errors.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "google_api.hpp"
#include "http.hpp"
#include "json.hpp"
#include "world.hpp"

namespace fake_places::places_new {

struct SearchNearbyCall {
  std::string_view query;  // the URL's: key, fields and $fields may come this way
  std::string_view api_key_header;
  std::string_view field_mask_header;
  bool has_api_key_header = false;
  bool has_field_mask_header = false;
  std::string_view body;
};

using Details = std::function<void(JsonWriter&)>;

inline constexpr std::string_view invalid_key_message =
    "API key not valid. Please pass a valid API key.";
inline constexpr std::string_view missing_key_message = "The request is missing a valid API key.";
inline constexpr std::string_view missing_mask_message =
    "FieldMask is a required parameter. See https://cloud.google.com/apis/docs/system-parameters "
    "on how to provide it. As an example, you can set the header 'X-Goog-FieldMask' to "
    "'places.displayName' to ask for the display name of every place found. You can also use "
    "'*' to get all fields, but that is not recommended for production use.";
inline constexpr std::string_view quota_message =
    "Quota exceeded for quota metric 'SearchNearby requests' and limit 'SearchNearby requests per "
    "minute' of service 'places.googleapis.com' for consumer 'project_number:000000000000'.";
inline constexpr std::string_view generic_invalid_message = "Request contains an invalid argument.";

inline ApiReply rpc_error(int code, std::string_view status, std::string_view message,
                          const Details& details = {}) {
  ApiReply reply;
  reply.status = code;
  JsonWriter json(reply.body, new_style);
  json.object().key("error").object();
  json.member("code", code).member("message", message).member("status", status);
  if (details) {
    json.key("details").array();
    details(json);
    json.end();
  }
  json.end().end();
  return reply;
}

// A google.rpc.BadRequest naming what was wrong, as Google's front end reports JSON errors.
inline ApiReply bad_request(std::string_view message, std::string_view field,
                            std::string_view description) {
  return rpc_error(400, "INVALID_ARGUMENT", message, [&](JsonWriter& json) {
    json.object().member("@type", "type.googleapis.com/google.rpc.BadRequest");
    json.key("fieldViolations").array().object();
    if (!field.empty()) json.member("field", field);
    json.member("description", description);
    json.end().end().end();
  });
}

inline ApiReply invalid_json(std::string_view description) {
  std::string message = fmt::format("Invalid JSON payload received. {}", description);
  return bad_request(message, {}, message);
}

inline ApiReply unknown_name(std::string_view name, std::string_view at) {
  return invalid_json(
      at.empty() ? fmt::format("Unknown name \"{}\": Cannot find field.", name)
                 : fmt::format("Unknown name \"{}\" at '{}': Cannot find field.", name, at));
}

inline ApiReply invalid_value(std::string_view at, std::string_view type,
                              simdjson::dom::element value) {
  std::string message =
      fmt::format("Invalid value at '{}' ({}), {}", at, type, simdjson::minify(value));
  return bad_request(message, at, message);
}

inline ApiReply invalid_argument(std::string_view message) {
  return rpc_error(400, "INVALID_ARGUMENT", message);
}

inline ApiReply invalid_key() {
  return rpc_error(400, "INVALID_ARGUMENT", invalid_key_message, [](JsonWriter& json) {
    json.object().member("@type", "type.googleapis.com/google.rpc.ErrorInfo");
    json.member("reason", "API_KEY_INVALID").member("domain", "googleapis.com");
    json.key("metadata").object().member("service", "places.googleapis.com").end();
    json.end();
    json.object().member("@type", "type.googleapis.com/google.rpc.LocalizedMessage");
    json.member("locale", "en-US").member("message", invalid_key_message);
    json.end();
  });
}

inline ApiReply quota_exceeded() {
  return rpc_error(429, "RESOURCE_EXHAUSTED", quota_message, [](JsonWriter& json) {
    json.object().member("@type", "type.googleapis.com/google.rpc.ErrorInfo");
    json.member("reason", "RATE_LIMIT_EXCEEDED").member("domain", "googleapis.com");
    json.key("metadata").object();
    json.member("quota_location", "global");
    json.member("quota_metric", "places.googleapis.com/search_nearby_requests");
    json.member("consumer", "projects/000000000000");
    json.member("quota_limit", "SearchNearbyRequestsPerMinutePerProject");
    json.member("service", "places.googleapis.com");
    json.member("quota_limit_value", "600");
    json.end().end();
    json.object().member("@type", "type.googleapis.com/google.rpc.Help");
    json.key("links").array().object();
    json.member("description", "Request a higher quota limit.");
    json.member("url", "https://cloud.google.com/docs/quotas/help/request_increase");
    json.end().end().end();
  });
}

// The Place fields this fake fills in, in the order Google prints them (proto field numbers).
enum Field : std::size_t {
  name_field,
  id,
  types,
  national_phone_number,
  international_phone_number,
  formatted_address,
  plus_code_field,
  location,
  viewport,
  rating,
  google_maps_uri,
  website_uri,
  business_status,
  price_level,
  user_rating_count,
  icon_mask_base_uri,
  icon_background_color,
  display_name,
  primary_type_display_name,
  primary_type,
  short_formatted_address,
  field_count
};

struct FieldInfo {
  std::string_view name;
  std::array<std::string_view, 2> subfields;  // for messages: a mask may name one of them
};

inline constexpr std::array<FieldInfo, field_count> field_infos{{
    {"name", {}},
    {"id", {}},
    {"types", {}},
    {"nationalPhoneNumber", {}},
    {"internationalPhoneNumber", {}},
    {"formattedAddress", {}},
    {"plusCode", {"globalCode", "compoundCode"}},
    {"location", {"latitude", "longitude"}},
    {"viewport", {"low", "high"}},
    {"rating", {}},
    {"googleMapsUri", {}},
    {"websiteUri", {}},
    {"businessStatus", {}},
    {"priceLevel", {}},
    {"userRatingCount", {}},
    {"iconMaskBaseUri", {}},
    {"iconBackgroundColor", {}},
    {"displayName", {"text", "languageCode"}},
    {"primaryTypeDisplayName", {"text", "languageCode"}},
    {"primaryType", {}},
    {"shortFormattedAddress", {}},
}};

// Real Place fields the fake never fills: a mask may name them (and anything below them).
inline constexpr auto absent_fields =
    std::to_array<std::string_view>({"postalAddress",
                                     "addressComponents",
                                     "reviews",
                                     "regularOpeningHours",
                                     "timeZone",
                                     "photos",
                                     "adrFormatAddress",
                                     "attributions",
                                     "currentOpeningHours",
                                     "currentSecondaryOpeningHours",
                                     "regularSecondaryOpeningHours",
                                     "editorialSummary",
                                     "paymentOptions",
                                     "parkingOptions",
                                     "subDestinations",
                                     "fuelOptions",
                                     "evChargeOptions",
                                     "generativeSummary",
                                     "containingPlaces",
                                     "addressDescriptor",
                                     "googleMapsLinks",
                                     "priceRange",
                                     "reviewSummary",
                                     "evChargeAmenitySummary",
                                     "neighborhoodSummary",
                                     "utcOffsetMinutes",
                                     "takeout",
                                     "delivery",
                                     "dineIn",
                                     "curbsidePickup",
                                     "reservable",
                                     "servesBreakfast",
                                     "servesLunch",
                                     "servesDinner",
                                     "servesBeer",
                                     "servesWine",
                                     "servesBrunch",
                                     "servesVegetarianFood",
                                     "outdoorSeating",
                                     "liveMusic",
                                     "menuForChildren",
                                     "servesCocktails",
                                     "servesDessert",
                                     "servesCoffee",
                                     "goodForChildren",
                                     "allowsDogs",
                                     "restroom",
                                     "goodForGroups",
                                     "goodForWatchingSports",
                                     "accessibilityOptions",
                                     "pureServiceAreaBusiness",
                                     "movedPlace",
                                     "movedPlaceId"});

inline constexpr unsigned whole_field = 0b11;

struct FieldMask {
  std::array<unsigned, field_count> wanted{};  // 0: not asked; else bit i: subfield i

  bool has(Field f) const { return wanted[f] != 0; }
  bool empty() const {
    return std::all_of(wanted.begin(), wanted.end(), [](unsigned w) { return w == 0; });
  }
};

inline std::string camel_case(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '_' && i + 1 < name.size() && name[i + 1] >= 'a' && name[i + 1] <= 'z') {
      out += static_cast<char>(name[++i] - 'a' + 'A');
    } else {
      out += name[i];
    }
  }
  return out;
}

// Marks what `path` asks for; false if no such field exists.
inline bool add_path(std::string_view path, FieldMask& mask) {
  if (path == "*" || path == "places" || path == "places.*") {
    mask.wanted.fill(whole_field);
    return true;
  }
  if (path == "routingSummaries" || path.starts_with("routingSummaries.")) return true;
  if (!path.starts_with("places.")) return false;
  std::string rest = camel_case(path.substr(7));
  auto dot = rest.find('.');
  std::string_view field_name = std::string_view(rest).substr(0, dot);
  std::string_view subfield =
      dot == std::string::npos ? std::string_view() : std::string_view(rest).substr(dot + 1);
  for (std::size_t f = 0; f < field_count; ++f) {
    if (field_infos[f].name != field_name) continue;
    if (subfield.empty()) {
      mask.wanted[f] = whole_field;
      return true;
    }
    for (std::size_t s = 0; s < 2; ++s) {
      if (!field_infos[f].subfields[s].empty() && field_infos[f].subfields[s] == subfield) {
        mask.wanted[f] |= 1u << s;
        return true;
      }
    }
    return false;
  }
  return std::find(absent_fields.begin(), absent_fields.end(), field_name) != absent_fields.end();
}

inline std::optional<ApiReply> parse_field_mask(std::string_view text, FieldMask& mask) {
  std::string_view rest = text;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto path = http::trim(rest.substr(0, comma));
    if (!path.empty() && !add_path(path, mask)) {
      return bad_request(generic_invalid_message, text,
                         fmt::format("Error expanding 'fields' parameter. Cannot find matching "
                                     "fields for path '{}'.",
                                     path));
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

struct NearbyRequest {
  int max_result_count = 0;  // 0: not given (proto3 cannot tell it from absent): 20
  bool has_restriction = false;
  bool has_circle = false;
  bool has_center = false;
  double lat = 0;
  double lng = 0;
  double radius_m = 0;
  std::vector<std::string> included_types;
  std::vector<std::string> excluded_types;
  std::vector<std::string> included_primary_types;
  std::vector<std::string> excluded_primary_types;
  bool rank_by_distance = false;
  std::string language_code = "en";
};

// Proto-JSON accepts a field's lowerCamel name and its original snake_case one.
inline bool is_field(std::string_view key, std::string_view camel, std::string_view snake) {
  return key == camel || key == snake;
}

using dom_element = simdjson::dom::element;

inline std::optional<double> as_number(dom_element value) {
  double number = 0;
  if (value.is_number()) return value.get_double().value_unsafe();
  if (!value.is_string()) return std::nullopt;
  std::string_view text = value.get_string().value_unsafe();
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return number;
}

inline std::optional<ApiReply> parse_double(dom_element value, std::string_view at, double& out) {
  auto number = as_number(value);
  if (!number || !std::isfinite(*number)) return invalid_value(at, "TYPE_DOUBLE", value);
  out = *number;
  return std::nullopt;
}

inline std::optional<ApiReply> parse_int32(dom_element value, std::string_view at, int& out) {
  auto number = as_number(value);
  if (!number || *number != std::trunc(*number) || std::abs(*number) > 2147483647.0) {
    return invalid_value(at, "TYPE_INT32", value);
  }
  out = static_cast<int>(*number);
  return std::nullopt;
}

inline std::optional<ApiReply> parse_strings(dom_element value, std::string_view at,
                                             std::vector<std::string>& out) {
  if (!value.is_array()) return invalid_value(at, "TYPE_STRING", value);
  simdjson::dom::array items = value.get_array().value_unsafe();
  for (dom_element item : items) {
    if (!item.is_string()) return invalid_value(at, "TYPE_STRING", item);
    out.emplace_back(item.get_string().value_unsafe());
  }
  return std::nullopt;
}

inline std::optional<ApiReply> parse_center(dom_element value, NearbyRequest& request) {
  constexpr std::string_view at = "location_restriction.circle.center";
  if (!value.is_object()) return invalid_value(at, "type.googleapis.com/google.type.LatLng", value);
  request.has_center = true;
  simdjson::dom::object members = value.get_object().value_unsafe();
  for (auto [key, field] : members) {
    if (field.is_null()) continue;
    std::optional<ApiReply> error;
    if (key == "latitude") {
      error = parse_double(field, "location_restriction.circle.center.latitude", request.lat);
    } else if (key == "longitude") {
      error = parse_double(field, "location_restriction.circle.center.longitude", request.lng);
    } else {
      error = unknown_name(key, at);
    }
    if (error) return error;
  }
  return std::nullopt;
}

inline std::optional<ApiReply> parse_circle(dom_element value, NearbyRequest& request) {
  constexpr std::string_view at = "location_restriction.circle";
  if (!value.is_object()) {
    return invalid_value(at, "type.googleapis.com/google.maps.places.v1.Circle", value);
  }
  request.has_circle = true;
  simdjson::dom::object members = value.get_object().value_unsafe();
  for (auto [key, field] : members) {
    if (field.is_null()) continue;
    std::optional<ApiReply> error;
    if (key == "center") {
      error = parse_center(field, request);
    } else if (key == "radius") {
      error = parse_double(field, "location_restriction.circle.radius", request.radius_m);
    } else {
      error = unknown_name(key, at);
    }
    if (error) return error;
  }
  return std::nullopt;
}

inline std::optional<ApiReply> parse_restriction(dom_element value, NearbyRequest& request) {
  constexpr std::string_view at = "location_restriction";
  if (!value.is_object()) {
    return invalid_value(
        at, "type.googleapis.com/google.maps.places.v1.SearchNearbyRequest.LocationRestriction",
        value);
  }
  request.has_restriction = true;
  simdjson::dom::object members = value.get_object().value_unsafe();
  for (auto [key, field] : members) {
    if (field.is_null()) continue;
    if (key != "circle") return unknown_name(key, at);
    if (auto error = parse_circle(field, request)) return error;
  }
  return std::nullopt;
}

inline std::optional<ApiReply> parse_rank_preference(dom_element value, NearbyRequest& request) {
  constexpr std::array<std::string_view, 3> names{"RANK_PREFERENCE_UNSPECIFIED", "DISTANCE",
                                                  "POPULARITY"};
  std::size_t rank = names.size();
  if (value.is_string()) {
    rank = static_cast<std::size_t>(
        std::find(names.begin(), names.end(), value.get_string().value_unsafe()) - names.begin());
  } else if (value.is_int64()) {
    auto number = value.get_int64().value_unsafe();
    if (number >= 0 && number < 3) rank = static_cast<std::size_t>(number);
  }
  if (rank == names.size()) {
    return invalid_value(
        "rank_preference",
        "type.googleapis.com/google.maps.places.v1.SearchNearbyRequest.RankPreference", value);
  }
  request.rank_by_distance = rank == 1;
  return std::nullopt;
}

inline std::optional<ApiReply> parse_member(std::string_view key, dom_element value,
                                            NearbyRequest& request) {
  if (is_field(key, "maxResultCount", "max_result_count")) {
    return parse_int32(value, "max_result_count", request.max_result_count);
  }
  if (is_field(key, "locationRestriction", "location_restriction")) {
    return parse_restriction(value, request);
  }
  if (is_field(key, "includedTypes", "included_types")) {
    return parse_strings(value, "included_types", request.included_types);
  }
  if (is_field(key, "excludedTypes", "excluded_types")) {
    return parse_strings(value, "excluded_types", request.excluded_types);
  }
  if (is_field(key, "includedPrimaryTypes", "included_primary_types")) {
    return parse_strings(value, "included_primary_types", request.included_primary_types);
  }
  if (is_field(key, "excludedPrimaryTypes", "excluded_primary_types")) {
    return parse_strings(value, "excluded_primary_types", request.excluded_primary_types);
  }
  if (is_field(key, "rankPreference", "rank_preference")) {
    return parse_rank_preference(value, request);
  }
  if (is_field(key, "languageCode", "language_code") ||
      is_field(key, "regionCode", "region_code")) {
    if (!value.is_string()) return invalid_value(camel_case(key), "TYPE_STRING", value);
    if (key.starts_with("language")) request.language_code = value.get_string().value_unsafe();
    return std::nullopt;
  }
  if (is_field(key, "routingParameters", "routing_parameters")) return std::nullopt;
  return unknown_name(key, {});
}

inline std::optional<ApiReply> parse_body(std::string_view body, NearbyRequest& request) {
  static simdjson::dom::parser parser;                // one thread: reuse its buffers
  if (http::trim(body).empty()) return std::nullopt;  // an empty body is the empty message
  dom_element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
    return invalid_json("Unexpected token.");
  }
  if (!root.is_object()) return invalid_json("Root element must be a message.");
  simdjson::dom::object members = root.get_object().value_unsafe();
  for (auto [key, value] : members) {
    if (value.is_null()) continue;
    if (auto error = parse_member(key, value, request)) return error;
  }
  return std::nullopt;
}

inline std::optional<ApiReply> validate(NearbyRequest& request) {
  if (!request.has_restriction) return invalid_argument("location_restriction is required.");
  if (!request.has_circle) return invalid_argument("location_restriction.circle is required.");
  if (!request.has_center) {
    return invalid_argument("location_restriction.circle.center is required.");
  }
  if (std::abs(request.lat) > 90) {
    return invalid_argument(
        "location_restriction.circle.center.latitude must be between -90.0 and 90.0.");
  }
  if (std::abs(request.lng) > 180) {
    return invalid_argument(
        "location_restriction.circle.center.longitude must be between -180.0 and 180.0.");
  }
  if (request.radius_m < 0 || request.radius_m > max_radius_m) {
    return invalid_argument("location_restriction.circle.radius must be between 0.0 and 50000.0.");
  }
  if (request.max_result_count < 0 || request.max_result_count > 20) {
    return invalid_argument("max_result_count must be between 1 and 20.");
  }
  if (request.max_result_count == 0) request.max_result_count = 20;
  return std::nullopt;
}

inline bool lists(const std::vector<std::string>& list, std::string_view type) {
  return std::find(list.begin(), list.end(), type) != list.end();
}

inline bool matches(const NearbyRequest& request, const Place& place) {
  const auto& types = place.category->types;
  auto listed_in = [&](const std::vector<std::string>& list) {
    return std::any_of(types.begin(), types.end(), [&](auto type) { return lists(list, type); });
  };
  if (!request.included_types.empty() && !listed_in(request.included_types)) return false;
  if (listed_in(request.excluded_types)) return false;
  if (!request.included_primary_types.empty() &&
      !lists(request.included_primary_types, types.front())) {
    return false;
  }
  return !lists(request.excluded_primary_types, types.front());
}

inline std::vector<Place> found_places(const NearbyRequest& request) {
  std::vector<Place> found;
  for (Place& place : places_around(request.lat, request.lng, request.radius_m)) {
    if (matches(request, place)) found.push_back(std::move(place));
  }
  if (!request.rank_by_distance) {
    std::stable_sort(found.begin(), found.end(), [](const Place& a, const Place& b) {
      return a.user_rating_count > b.user_rating_count;
    });
  }
  if (found.size() > static_cast<std::size_t>(request.max_result_count)) {
    found.resize(static_cast<std::size_t>(request.max_result_count));
  }
  return found;
}

inline void write_lat_lng(JsonWriter& json, double lat, double lng, unsigned parts = whole_field) {
  json.object();
  if (parts & 1) json.member("latitude", lat);
  if (parts & 2) json.member("longitude", lng);
  json.end();
}

inline void write_localized(JsonWriter& json, std::string_view text, std::string_view language,
                            unsigned parts) {
  json.object();
  if (parts & 1) json.member("text", text);
  if (parts & 2) json.member("languageCode", language);
  json.end();
}

inline std::string_view price_level_name(int level) {
  constexpr std::array<std::string_view, 4> names{"PRICE_LEVEL_FREE", "PRICE_LEVEL_INEXPENSIVE",
                                                  "PRICE_LEVEL_MODERATE", "PRICE_LEVEL_EXPENSIVE"};
  return names[static_cast<std::size_t>(std::clamp(level, 0, 3))];
}

inline void write_field(JsonWriter& json, Field field, unsigned parts, const Place& place,
                        const NearbyRequest& request) {
  const Category& category = *place.category;
  switch (field) {
    case name_field:
      json.member("name", "places/" + place.id);
      break;
    case id:
      json.member("id", place.id);
      break;
    case types:
      json.key("types").array();
      for (auto type : category.types) json.value(type);
      json.end();
      break;
    case national_phone_number:
      json.member("nationalPhoneNumber", fmt::format("(310) 555-01{:02}", place.number - 1));
      break;
    case international_phone_number:
      json.member("internationalPhoneNumber", fmt::format("+1 310-555-01{:02}", place.number - 1));
      break;
    case formatted_address:
      json.member("formattedAddress", place.formatted_address());
      break;
    case plus_code_field: {
      std::string code = plus_code(place.lat, place.lng);
      json.key("plusCode").object();
      if (parts & 1) json.member("globalCode", code);
      if (parts & 2) json.member("compoundCode", compound_code(code));
      json.end();
      break;
    }
    case location:
      json.key("location");
      write_lat_lng(json, place.lat, place.lng, parts);
      break;
    case viewport: {
      double half_lng = viewport_half_lng(place.lat);
      json.key("viewport").object();
      if (parts & 1) {
        json.key("low");
        write_lat_lng(json, place.lat - viewport_half_lat, normalized_lng(place.lng - half_lng));
      }
      if (parts & 2) {
        json.key("high");
        write_lat_lng(json, place.lat + viewport_half_lat, normalized_lng(place.lng + half_lng));
      }
      json.end();
      break;
    }
    case rating:
      json.member("rating", place.rating);
      break;
    case google_maps_uri:
      json.member("googleMapsUri", fmt::format("https://maps.google.com/?cid={}", place.hash));
      break;
    case website_uri:
      json.member("websiteUri", fmt::format("https://fake-place-{}.example/", place.number));
      break;
    case business_status:
      json.member("businessStatus", "OPERATIONAL");
      break;
    case price_level:
      if (category.priced) json.member("priceLevel", price_level_name(place.price_level));
      break;
    case user_rating_count:
      json.member("userRatingCount", place.user_rating_count);
      break;
    case icon_mask_base_uri:
      json.member("iconMaskBaseUri", category.icon_mask_base_uri);
      break;
    case icon_background_color:
      json.member("iconBackgroundColor", category.icon_background_color);
      break;
    case display_name:
      json.key("displayName");
      write_localized(json, place.name(), request.language_code, parts);
      break;
    case primary_type_display_name:
      json.key("primaryTypeDisplayName");
      write_localized(json, category.word, "en-US", parts);
      break;
    case primary_type:
      json.member("primaryType", category.types.front());
      break;
    case short_formatted_address:
      json.member("shortFormattedAddress", place.vicinity());
      break;
    case field_count:
      break;
  }
}

inline ApiReply places_reply(const std::vector<Place>& places, const FieldMask& mask,
                             const NearbyRequest& request) {
  ApiReply reply;
  JsonWriter json(reply.body, new_style);
  json.object();
  if (!places.empty() && !mask.empty()) {
    reply.body.reserve(600 * places.size());
    json.key("places").array();
    for (const Place& place : places) {
      json.object();
      for (std::size_t f = 0; f < field_count; ++f) {
        if (mask.has(static_cast<Field>(f))) {
          write_field(json, static_cast<Field>(f), mask.wanted[f], place, request);
        }
      }
      json.end();
    }
    json.end();
  }
  json.end();
  return reply;
}

inline std::optional<std::string> first_of(std::string_view query, std::string_view a,
                                           std::string_view b) {
  if (auto value = http::query_param(query, a)) return value;
  return http::query_param(query, b);
}

// POST /v1/places:searchNearby
inline ApiReply search_nearby(const SearchNearbyCall& call, std::string_view valid_key,
                              Fault fault) {
  std::optional<std::string> key;
  if (call.has_api_key_header) {
    key = std::string(call.api_key_header);
  } else {
    key = http::query_param(call.query, "key");
  }
  if (fault == Fault::denied) return invalid_key();
  if (!key || key->empty()) return rpc_error(403, "PERMISSION_DENIED", missing_key_message);
  if (*key != valid_key) return invalid_key();
  if (fault == Fault::quota) return quota_exceeded();
  if (fault == Fault::invalid) return invalid_argument(generic_invalid_message);

  std::optional<std::string> mask_text;
  if (call.has_field_mask_header) {
    mask_text = std::string(call.field_mask_header);
  } else {
    mask_text = first_of(call.query, "fields", "$fields");
  }
  if (!mask_text || http::trim(*mask_text).empty()) return invalid_argument(missing_mask_message);

  NearbyRequest request;
  if (auto error = parse_body(call.body, request)) return std::move(*error);
  FieldMask mask;
  if (auto error = parse_field_mask(*mask_text, mask)) return std::move(*error);
  if (auto error = validate(request)) return std::move(*error);
  if (fault == Fault::zero) return places_reply({}, mask, request);
  return places_reply(found_places(request), mask, request);
}

}  // namespace fake_places::places_new
