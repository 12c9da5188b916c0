#include "places/google.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <fmt/format.h>
#include <simdjson.h>

#include "places/legacy_json.hpp"

namespace herd::places {
namespace {

// A parser keeps its buffers between documents; making one per answer costs more than parsing.
simdjson::dom::parser& reusable_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

constexpr std::string_view kUnknownError = "UNKNOWN_ERROR";

std::string url_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", byte);
    }
  }
  return out;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// Upstream messages may echo the request URL, and with it the key.
std::string scrubbed(std::string message, std::string_view api_key) {
  if (api_key.empty()) return message;
  replace_all(message, api_key, "[redacted]");
  if (const auto encoded = url_encode(api_key); encoded != api_key) {
    replace_all(message, encoded, "[redacted]");
  }
  return message;
}

std::string error_reply(std::string_view status, std::string message, std::string_view api_key) {
  PlacesReply reply;
  reply.status = status;
  reply.error_message = scrubbed(std::move(message), api_key);
  return to_legacy_json(reply);
}

bool is_success(long http_status) {
  return http_status >= 200 && http_status < 300;
}

// The failures known before the body is read; nullopt when the body is worth reading.
std::optional<std::string> transport_failure(const UpstreamResponse& response) {
  if (const std::string_view error = response.transport_error; !error.empty()) {
    // The HTTP client's messages mostly begin "upstream ...": "upstream timed out after 3000 ms".
    return (error.starts_with("upstream ") ? "places " : "places upstream: ") + std::string(error);
  }
  if (response.http_status >= 500) {
    return fmt::format("places upstream answered HTTP {}", response.http_status);
  }
  return std::nullopt;
}

// For a body that is not the JSON the provider promised.
std::string unreadable(const UpstreamResponse& response, bool is_json) {
  if (!is_success(response.http_status)) {
    return fmt::format("places upstream answered HTTP {}", response.http_status);
  }
  return is_json ? "places upstream sent JSON of an unexpected shape"
                 : "places upstream sent invalid JSON";
}

// A missing field leaves `value` empty; a field of another type is a shape error.
template <class T>
bool read_if_present(simdjson::dom::object fields, std::string_view key, std::optional<T>& value) {
  auto field = fields[key];
  if (field.error() == simdjson::NO_SUCH_FIELD) return true;
  T read;
  if (field.get(read) != simdjson::SUCCESS) return false;
  value = read;
  return true;
}

template <class String>
bool read_strings(simdjson::dom::array array, std::vector<String>& strings) {
  for (auto item : array) {
    std::string_view text;
    if (item.get(text) != simdjson::SUCCESS) return false;
    strings.emplace_back(text);
  }
  return true;
}

bool has_reason(simdjson::dom::object error, std::string_view reason) {
  simdjson::dom::array details;
  if (error["details"].get(details) != simdjson::SUCCESS) return false;
  for (auto detail : details) {
    std::string_view text;
    if (detail["reason"].get(text) == simdjson::SUCCESS && text == reason) return true;
  }
  return false;
}

// Places API (New) {"error":{"code","message","status","details"}} as a legacy status.
std::string_view legacy_status_of(simdjson::dom::object error, std::int64_t code) {
  std::string_view status;
  if (error["status"].get(status) != simdjson::SUCCESS) status = "";
  if (code == 401 || code == 403 || status == "PERMISSION_DENIED" || status == "UNAUTHENTICATED" ||
      has_reason(error, "API_KEY_INVALID")) {
    return "REQUEST_DENIED";
  }
  if (code == 429 || status == "RESOURCE_EXHAUSTED") return "OVER_QUERY_LIMIT";
  if (code == 400 || status == "INVALID_ARGUMENT" || status == "FAILED_PRECONDITION") {
    return "INVALID_REQUEST";
  }
  return kUnknownError;
}

std::string new_error_reply(simdjson::dom::object error, long http_status,
                            std::string_view api_key) {
  std::int64_t code = http_status;
  if (error["code"].get(code) != simdjson::SUCCESS) code = http_status;
  const std::string_view status = legacy_status_of(error, code);
  std::string_view message;
  if (error["message"].get(message) == simdjson::SUCCESS && !message.empty()) {
    return error_reply(status, std::string(message), api_key);
  }
  std::string_view google_status;
  if (error["status"].get(google_status) != simdjson::SUCCESS) google_status = "an error";
  return error_reply(
      status, fmt::format("places upstream answered {} (HTTP {})", google_status, code), api_key);
}

// The fields of a place that a legacy result uses.
enum class PlaceField {
  id,
  location,
  display_name,
  short_address,
  address,
  types,
  rating,
  rating_count,
  business_status,
  other
};

PlaceField place_field(std::string_view key) {
  if (key == "id") return PlaceField::id;
  if (key == "location") return PlaceField::location;
  if (key == "displayName") return PlaceField::display_name;
  if (key == "shortFormattedAddress") return PlaceField::short_address;
  if (key == "formattedAddress") return PlaceField::address;
  if (key == "types") return PlaceField::types;
  if (key == "rating") return PlaceField::rating;
  if (key == "userRatingCount") return PlaceField::rating_count;
  if (key == "businessStatus") return PlaceField::business_status;
  return PlaceField::other;
}

template <class T>
bool read_value(simdjson::dom::element element, std::optional<T>& value) {
  T read;
  if (element.get(read) != simdjson::SUCCESS) return false;
  value = read;
  return true;
}

// Reads one field into `place` (and the name and addresses, which need a choice once all are
// read); false for a field of the wrong shape.
bool read_place_field(PlaceField field, simdjson::dom::element value, PlaceView& place,
                      std::optional<std::string_view>& name,
                      std::optional<std::string_view>& short_address,
                      std::optional<std::string_view>& address,
                      std::vector<std::string_view>& types) {
  switch (field) {
    case PlaceField::id:
      return value.get(place.place_id) == simdjson::SUCCESS;
    case PlaceField::location: {
      simdjson::dom::object location;
      return value.get(location) == simdjson::SUCCESS &&
             location["latitude"].get(place.lat) == simdjson::SUCCESS &&
             location["longitude"].get(place.lng) == simdjson::SUCCESS;
    }
    case PlaceField::display_name: {
      simdjson::dom::object display_name;
      return value.get(display_name) == simdjson::SUCCESS &&
             read_if_present(display_name, "text", name);
    }
    case PlaceField::short_address:
      return read_value(value, short_address);
    case PlaceField::address:
      return read_value(value, address);
    case PlaceField::types: {
      simdjson::dom::array array;
      return value.get(array) == simdjson::SUCCESS && read_strings(array, types);
    }
    case PlaceField::rating:
      return read_value(value, place.rating);
    case PlaceField::rating_count:
      return read_value(value, place.user_ratings_total);
    case PlaceField::business_status:
      return read_value(value, place.business_status);
    case PlaceField::other:
      break;
  }
  return true;
}

// `types` holds the place's types until the next place is read. The fields are read in one
// pass: asking for each by name would scan the place's fields again for every one of them.
// As with a lookup by name, the first of a repeated field counts.
std::optional<PlaceView> read_new_place(simdjson::dom::element entry,
                                        std::vector<std::string_view>& types) {
  simdjson::dom::object fields;
  if (entry.get(fields) != simdjson::SUCCESS) return std::nullopt;
  PlaceView place;
  std::optional<std::string_view> name, short_address, address;
  types.clear();
  unsigned seen = 0;
  for (auto [key, value] : fields) {
    const PlaceField field = place_field(key);
    const unsigned bit = 1u << static_cast<unsigned>(field);
    if (field == PlaceField::other || (seen & bit)) continue;
    seen |= bit;
    if (!read_place_field(field, value, place, name, short_address, address, types))
      return std::nullopt;
  }
  const unsigned required = (1u << static_cast<unsigned>(PlaceField::id)) |
                            (1u << static_cast<unsigned>(PlaceField::location));
  if ((seen & required) != required) return std::nullopt;
  place.name = name.value_or("");
  place.vicinity = short_address.value_or(address.value_or(""));
  place.types = types;
  return place;
}

// {"places":[...]}, or {} when nothing matched, as a legacy reply of at most `bound` results;
// nullopt for any other shape, even in a place past the bound. The places go straight from
// the document into the reply.
std::optional<std::string> new_places_reply(simdjson::dom::element body, int bound) {
  simdjson::dom::object object;
  if (body.get(object) != simdjson::SUCCESS) return std::nullopt;
  std::optional<simdjson::dom::array> places;
  if (!read_if_present(object, "places", places)) return std::nullopt;
  const auto kept = static_cast<std::size_t>(std::max(bound, 0));
  LegacyReplyWriter reply(places ? std::min(places->size(), kept) : 0);
  std::vector<std::string_view> types;
  types.reserve(16);
  std::size_t count = 0;
  if (places) {
    for (auto entry : *places) {
      const auto place = read_new_place(entry, types);
      if (!place) return std::nullopt;
      if (count++ < kept) reply.add(*place);
    }
  }
  return reply.finish(count == 0 ? "ZERO_RESULTS" : "OK");
}

bool is_legacy_error_status(std::string_view status) {
  return status == "REQUEST_DENIED" || status == "OVER_QUERY_LIMIT" ||
         status == "INVALID_REQUEST" || status == "UNKNOWN_ERROR";
}

std::string legacy_error_reply(simdjson::dom::object body, std::string_view status,
                               std::string_view api_key) {
  std::string_view message;
  if (body["error_message"].get(message) != simdjson::SUCCESS) message = "";
  if (is_legacy_error_status(status)) {
    if (!message.empty()) return error_reply(status, std::string(message), api_key);
    return error_reply(status, fmt::format("places upstream answered {}", status), api_key);
  }
  std::string unknown = fmt::format("places upstream answered status \"{}\"", status);
  if (!message.empty()) unknown += fmt::format(": {}", message);
  return error_reply(kUnknownError, std::move(unknown), api_key);
}

}  // namespace

UpstreamRequest build_new_request(const NearbyQuery& query, std::string_view endpoint,
                                  std::string_view api_key) {
  // maxResultCount must be 1..20 (0 means the default, 20); bound 0 is trimmed on the way back.
  const int max_results = std::max(query.bound, 1);
  return {
      .method = "POST",
      .url = std::string(endpoint),
      .headers = {"Content-Type: application/json", fmt::format("X-Goog-Api-Key: {}", api_key),
                  fmt::format("X-Goog-FieldMask: {}", kNewFieldMask)},
      .body = fmt::format(
          R"({{"maxResultCount":{},"locationRestriction":{{"circle":{{"center":{{"latitude":{},"longitude":{}}},"radius":{}}}}}}})",
          max_results, query.lat, query.lng, query.radius_km * 1000.0),
  };
}

UpstreamRequest build_legacy_request(const NearbyQuery& query, std::string_view endpoint,
                                     std::string_view api_key) {
  std::string url(endpoint);
  if (url.find('?') == std::string::npos) {
    url += '?';
  } else if (url.back() != '?' && url.back() != '&') {
    url += '&';
  }
  url += fmt::format("location={},{}&radius={}&key={}", query.lat, query.lng,
                     query.radius_km * 1000, url_encode(api_key));
  return {.method = "GET", .url = std::move(url), .headers = {}, .body = {}};
}

namespace {
// Parses the body into `body`; when there is no body to read (no answer at all, or not JSON)
// returns the UNKNOWN_ERROR reply instead.
std::optional<std::string> unusable(const UpstreamResponse& response, simdjson::dom::element& body,
                                    std::string_view api_key) {
  if (auto failure = transport_failure(response))
    return error_reply(kUnknownError, std::move(*failure), api_key);
  if (reusable_parser().parse(response.body).get(body) != simdjson::SUCCESS)
    return error_reply(kUnknownError, unreadable(response, false), api_key);
  return std::nullopt;
}
}  // namespace

std::string translate_new(const UpstreamResponse& response, const NearbyQuery& query,
                          std::string_view api_key) {
  simdjson::dom::element body;
  if (auto failed = unusable(response, body, api_key)) return *failed;
  simdjson::dom::object error;
  if (body["error"].get(error) == simdjson::SUCCESS) {
    return new_error_reply(error, response.http_status, api_key);
  }
  auto reply =
      is_success(response.http_status) ? new_places_reply(body, query.bound) : std::nullopt;
  if (!reply) return error_reply(kUnknownError, unreadable(response, true), api_key);
  return std::move(*reply);
}

std::string trim_legacy(const UpstreamResponse& response, const NearbyQuery& query,
                        std::string_view api_key) {
  simdjson::dom::element body;
  if (auto failed = unusable(response, body, api_key)) return *failed;
  simdjson::dom::object object;
  std::string_view status;
  if (body.get(object) != simdjson::SUCCESS || object["status"].get(status) != simdjson::SUCCESS) {
    return error_reply(kUnknownError, unreadable(response, true), api_key);
  }
  if (status != "OK" && status != "ZERO_RESULTS") {
    return legacy_error_reply(object, status, api_key);
  }

  std::vector<std::string> html_attributions;
  std::optional<simdjson::dom::array> attributions, results;
  if (!read_if_present(object, "html_attributions", attributions) ||
      (attributions && !read_strings(*attributions, html_attributions)) ||
      !read_if_present(object, "results", results)) {
    return error_reply(kUnknownError, unreadable(response, true), api_key);
  }
  const auto kept = static_cast<std::size_t>(std::max(query.bound, 0));
  LegacyReplyWriter reply(results ? std::min(results->size(), kept) : 0, html_attributions);
  std::size_t count = 0;
  if (results) {
    for (auto result : *results) {
      if (count++ >= kept) break;
      if (!result.is_object()) {
        return error_reply(kUnknownError, unreadable(response, true), api_key);
      }
      reply.add(result);
    }
  }
  return reply.finish(status);
}

}  // namespace herd::places
