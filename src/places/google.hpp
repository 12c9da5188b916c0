#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "places/provider.hpp"  // NearbyQuery

namespace herd::places {

inline constexpr std::string_view kNewNearbyEndpoint =
    "https://places.googleapis.com/v1/places:searchNearby";
inline constexpr std::string_view kLegacyNearbyEndpoint =
    "https://maps.googleapis.com/maps/api/place/nearbysearch/json";

// The fewest fields that fill a legacy reply; rating and userRatingCount are what put the
// request in the Enterprise SKU, the rest are Pro fields.
inline constexpr std::string_view kNewFieldMask =
    "places.id,places.displayName,places.location,places.shortFormattedAddress,"
    "places.formattedAddress,places.types,places.rating,places.userRatingCount,"
    "places.businessStatus";

struct UpstreamRequest {
  std::string method{}, url{};
  std::vector<std::string> headers{};  // "Name: value"
  std::string body{};
};

struct UpstreamResponse {
  long http_status = 0;
  std::string body{};
  // Non-empty when no HTTP response came at all: "timed out after 3000 ms", "connection refused".
  std::string transport_error{};
};

// Places API (New) searchNearby: a POST with the key and field mask in headers.
UpstreamRequest build_new_request(const NearbyQuery& query, std::string_view endpoint,
                                  std::string_view api_key);

// Legacy Nearby Search: a GET with location, radius in metres and the key in the query string.
UpstreamRequest build_legacy_request(const NearbyQuery& query, std::string_view endpoint,
                                     std::string_view api_key);

// Both answer legacy Nearby Search JSON (see legacy_json.hpp), errors included; the key is
// only taken to scrub it from any message that echoes it.
std::string translate_new(const UpstreamResponse& response, const NearbyQuery& query,
                          std::string_view api_key);
std::string trim_legacy(const UpstreamResponse& response, const NearbyQuery& query,
                        std::string_view api_key);

}  // namespace herd::places
