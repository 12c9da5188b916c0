#include "places/google.hpp"

#include <catch2/catch.hpp>

#include "places/legacy_json.hpp"

namespace herd::places {
namespace {

constexpr std::string_view kKey = "AIzaSyTest-Key_0123456789abcdefghijklm";
constexpr NearbyQuery kUcla{.lat = 34.068930, .lng = -118.445127, .radius_km = 10, .bound = 5};

// Values compared through one canonical text: same values, same key order.
std::string canonical(simdjson::dom::element value) {
  std::string out;
  write_pretty(out, value, 0);
  return out;
}

std::string error_json(std::string_view status, std::string_view message) {
  return to_legacy_json({.status = std::string(status), .error_message = std::string(message)});
}

// Places API (New), pretty-printed as Google sends it.
const std::string kNewBody = R"({
  "places": [
    {
      "id": "ChIJZQ9c8IW8woARN0gTXFiTqSU",
      "types": [
        "university",
        "point_of_interest",
        "establishment"
      ],
      "formattedAddress": "Los Angeles, CA 90095, USA",
      "location": {
        "latitude": 34.068921,
        "longitude": -118.4451811
      },
      "rating": 4.6,
      "userRatingCount": 4563,
      "businessStatus": "OPERATIONAL",
      "displayName": {
        "text": "University of California, Los Angeles",
        "languageCode": "en"
      },
      "shortFormattedAddress": "Los Angeles"
    },
    {
      "id": "ChIJJ4nGVn28woARzSBuCh9ZVG8",
      "types": [
        "bakery",
        "food",
        "point_of_interest",
        "store",
        "establishment"
      ],
      "formattedAddress": "926 Broxton Ave, Los Angeles, CA 90024, USA",
      "location": {
        "latitude": 34.0630,
        "longitude": -118.4474
      },
      "rating": 5,
      "userRatingCount": 4012,
      "businessStatus": "CLOSED_TEMPORARILY",
      "displayName": {
        "text": "Diddy Riese & Co <Westwood>",
        "languageCode": "en"
      },
      "shortFormattedAddress": "926 Broxton Ave, Los Angeles"
    },
    {
      "id": "ChIJ3RBAN4K8woARoVLsxZ4j2v4",
      "formattedAddress": "Westwood, Los Angeles, CA, USA",
      "location": {
        "latitude": 34.0635016,
        "longitude": -118.4455164
      },
      "displayName": {
        "text": "Westwood",
        "languageCode": "en"
      }
    }
  ]
}
)";

const std::string kNewAsLegacy = R"({
   "html_attributions" : [],
   "results" : [
      {
         "business_status" : "OPERATIONAL",
         "geometry" : {
            "location" : {
               "lat" : 34.068921,
               "lng" : -118.4451811
            }
         },
         "name" : "University of California, Los Angeles",
         "place_id" : "ChIJZQ9c8IW8woARN0gTXFiTqSU",
         "rating" : 4.6,
         "types" : [ "university", "point_of_interest", "establishment" ],
         "user_ratings_total" : 4563,
         "vicinity" : "Los Angeles"
      },
      {
         "business_status" : "CLOSED_TEMPORARILY",
         "geometry" : {
            "location" : {
               "lat" : 34.063,
               "lng" : -118.4474
            }
         },
         "name" : "Diddy Riese \u0026 Co \u003cWestwood\u003e",
         "place_id" : "ChIJJ4nGVn28woARzSBuCh9ZVG8",
         "rating" : 5,
         "types" : [ "bakery", "food", "point_of_interest", "store", "establishment" ],
         "user_ratings_total" : 4012,
         "vicinity" : "926 Broxton Ave, Los Angeles"
      },
      {
         "geometry" : {
            "location" : {
               "lat" : 34.0635016,
               "lng" : -118.4455164
            }
         },
         "name" : "Westwood",
         "place_id" : "ChIJ3RBAN4K8woARoVLsxZ4j2v4",
         "types" : [],
         "vicinity" : "Westwood, Los Angeles, CA, USA"
      }
   ],
   "status" : "OK"
})";

// Legacy Nearby Search, in Google's own layout.
const std::string kLegacyBody = R"({
   "html_attributions" : [
      "Listings by \u003ca href=\"https://www.example.com/\"\u003eExample Directory\u003c/a\u003e"
   ],
   "next_page_token" : "AciIO2dZ0cW1ZHT5-b2mvJbXKcV0ayUN-uasQ2Oj00XB63irPTks0",
   "results" : [
      {
         "business_status" : "OPERATIONAL",
         "geometry" : {
            "location" : {
               "lat" : 34.068921,
               "lng" : -118.4451811
            },
            "viewport" : {
               "northeast" : {
                  "lat" : 34.0735512,
                  "lng" : -118.4382232
               },
               "southwest" : {
                  "lat" : 34.0634072,
                  "lng" : -118.4520548
               }
            }
         },
         "icon" : "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/school-71.png",
         "icon_background_color" : "#7B9EB0",
         "name" : "University of California, Los Angeles",
         "opening_hours" : {
            "open_now" : true
         },
         "photos" : [
            {
               "height" : 3024,
               "html_attributions" : [
                  "\u003ca href=\"https://maps.google.com/maps/contrib/1043\"\u003eA Google User\u003c/a\u003e"
               ],
               "photo_reference" : "AUjq9jmK3XxQ2Oj00XB63irPTks0",
               "width" : 4032
            }
         ],
         "place_id" : "ChIJZQ9c8IW8woARN0gTXFiTqSU",
         "plus_code" : {
            "compound_code" : "3H9F+HW Los Angeles, CA, USA",
            "global_code" : "8553XH9F+HW"
         },
         "rating" : 4.6,
         "reference" : "ChIJZQ9c8IW8woARN0gTXFiTqSU",
         "scope" : "GOOGLE",
         "types" : [ "university", "point_of_interest", "establishment" ],
         "user_ratings_total" : 4563,
         "vicinity" : "405 Hilgard Avenue, Los Angeles"
      },
      {
         "business_status" : "CLOSED_TEMPORARILY",
         "geometry" : {
            "location" : {
               "lat" : 34.063,
               "lng" : -118.4474
            }
         },
         "name" : "Diddy Riese \u0026 Co",
         "permanently_closed" : false,
         "place_id" : "ChIJJ4nGVn28woARzSBuCh9ZVG8",
         "price_level" : 1,
         "rating" : 5,
         "types" : [
            "bakery",
            "cafe",
            "store",
            "restaurant",
            "food",
            "point_of_interest",
            "establishment"
         ],
         "user_ratings_total" : 4012,
         "vicinity" : "926 Broxton Avenue, Los Angeles"
      },
      {
         "geometry" : {
            "location" : {
               "lat" : 34.0635016,
               "lng" : -118.4455164
            }
         },
         "name" : "Café Ünïcode 東京",
         "place_id" : "ChIJ3RBAN4K8woARoVLsxZ4j2v4",
         "types" : [ "locality", "political" ],
         "vicinity" : "Los Angeles"
      }
   ],
   "status" : "OK"
}
)";

TEST_CASE("Places API (New) requests", "[google]") {
  const std::vector<std::string> headers = {
      "Content-Type: application/json",
      "X-Goog-Api-Key: " + std::string(kKey),
      "X-Goog-FieldMask: places.id,places.displayName,places.location,"
      "places.shortFormattedAddress,places.formattedAddress,places.types,places.rating,"
      "places.userRatingCount,places.businessStatus",
  };
  const struct {
    NearbyQuery query;
    std::string body;
  } rows[] = {
      {kUcla, R"({"maxResultCount":5,"locationRestriction":{"circle":{"center":)"
              R"({"latitude":34.06893,"longitude":-118.445127},"radius":10000}}})"},
      {{.lat = -33.8688197, .lng = 151.2092955, .radius_km = 50, .bound = 20},
       R"({"maxResultCount":20,"locationRestriction":{"circle":{"center":)"
       R"({"latitude":-33.8688197,"longitude":151.2092955},"radius":50000}}})"},
      {{.lat = 0, .lng = 0, .radius_km = 0, .bound = 1},
       R"({"maxResultCount":1,"locationRestriction":{"circle":{"center":)"
       R"({"latitude":0,"longitude":0},"radius":0}}})"},
      {{.lat = 0.1 + 0.2, .lng = -180, .radius_km = 1, .bound = 0},  // 0 would mean 20 to Google
       R"({"maxResultCount":1,"locationRestriction":{"circle":{"center":)"
       R"({"latitude":0.30000000000000004,"longitude":-180},"radius":1000}}})"},
  };
  for (const auto& row : rows) {
    const auto request = build_new_request(row.query, kNewNearbyEndpoint, kKey);
    CHECK(request.method == "POST");
    CHECK(request.url == "https://places.googleapis.com/v1/places:searchNearby");
    CHECK(request.headers == headers);
    CHECK(request.body == row.body);
  }
}

TEST_CASE("legacy Nearby Search requests", "[google]") {
  const struct {
    NearbyQuery query;
    std::string_view endpoint, key;
    std::string url;
  } rows[] = {
      {kUcla, kLegacyNearbyEndpoint, kKey,
       "https://maps.googleapis.com/maps/api/place/nearbysearch/json"
       "?location=34.06893,-118.445127&radius=10000&key=" +
           std::string(kKey)},
      {{.lat = -33.8688197, .lng = 151.2092955, .radius_km = 50, .bound = 20},
       "http://127.0.0.1:8089/nearby?mock=1",
       "k",
       "http://127.0.0.1:8089/nearby?mock=1&location=-33.8688197,151.2092955&radius=50000&key=k"},
      {{.lat = 0, .lng = 0, .radius_km = 1, .bound = 1},
       "http://mock/nearby?",
       "a b/c+d&e=f~.",
       "http://mock/nearby?location=0,0&radius=1000&key=a%20b%2Fc%2Bd%26e%3Df~."},
  };
  for (const auto& row : rows) {
    const auto request = build_legacy_request(row.query, row.endpoint, row.key);
    CHECK(request.method == "GET");
    CHECK(request.url == row.url);
    CHECK(request.headers.empty());
    CHECK(request.body.empty());
  }
}

TEST_CASE("New API places become legacy results", "[google]") {
  CHECK(translate_new({.http_status = 200, .body = kNewBody}, {.bound = 20}, kKey) == kNewAsLegacy);

  simdjson::dom::parser parser;
  const std::string two = translate_new({.http_status = 200, .body = kNewBody}, {.bound = 2}, kKey);
  simdjson::dom::element trimmed, full;
  REQUIRE(parser.parse(two).get(trimmed) == simdjson::SUCCESS);
  CHECK(trimmed["results"].get_array().size() == 2);
  CHECK(std::string_view(trimmed["status"]) == "OK");
  simdjson::dom::parser full_parser;
  REQUIRE(full_parser.parse(kNewAsLegacy).get(full) == simdjson::SUCCESS);
  CHECK(canonical(trimmed.at_pointer("/results/1")) == canonical(full.at_pointer("/results/1")));
}

// A place's fields in any order, unknown ones skipped, and of a repeated field the first
// counts, as when each is looked up by name.
TEST_CASE("New API place fields", "[google]") {
  struct Row {
    std::string place;
    std::string name, vicinity;  // empty name: the answer is a shape error
  };
  const std::string location = R"("location": {"latitude": 1, "longitude": 2})";
  const Row rows[] = {
      {R"({"id": "a", )" + location + R"(, "displayName": {"text": "A"}})", "A", ""},
      {R"({"displayName": {"text": "B"}, "extra": [1, {"id": 3}], )" + location +
           R"(, "formattedAddress": "long", "id": "b"})",
       "B", "long"},
      {R"({"id": "c", )" + location +
           R"(, "shortFormattedAddress": "short", "formattedAddress": "long", )"
           R"("displayName": {"text": "C"}})",
       "C", "short"},
      {R"({"id": "d", "id": 4, )" + location +
           R"(, "displayName": {"text": "D"}, "displayName": {"text": "E"}})",
       "D", ""},
      {R"({"id": 4, "id": "d", )" + location + R"(, "displayName": {"text": "D"}})", "", ""},
      {R"({"id": "f", )" + location + R"(, "displayName": {"text": "F"}, "rating": "high"})", "",
       ""},
      {R"({"id": "g", "displayName": {"text": "G"}})", "", ""},
      {R"({"id": "h", "location": {"latitude": 1}, "displayName": {"text": "H"}})", "", ""},
      {R"({"id": "i", )" + location + R"(, "types": ["a", 1], "displayName": {"text": "I"}})", "",
       ""},
  };
  for (const auto& row : rows) {
    CAPTURE(row.place);
    const std::string reply = translate_new(
        {.http_status = 200, .body = R"({"places": [)" + row.place + "]}"}, kUcla, kKey);
    simdjson::dom::parser parser;
    simdjson::dom::element json;
    REQUIRE(parser.parse(reply).get(json) == simdjson::SUCCESS);
    if (row.name.empty()) {
      CHECK(std::string_view(json["status"]) == "UNKNOWN_ERROR");
      CHECK(std::string_view(json["error_message"]) ==
            "places upstream sent JSON of an unexpected shape");
    } else {
      CHECK(std::string_view(json["status"]) == "OK");
      CHECK(std::string_view(json.at_pointer("/results/0/name")) == row.name);
      CHECK(std::string_view(json.at_pointer("/results/0/vicinity")) == row.vicinity);
    }
  }
}

TEST_CASE("New API answers without places", "[google]") {
  const std::string zero = to_legacy_json({.status = "ZERO_RESULTS"});
  CHECK(translate_new({.http_status = 200, .body = "{}\n"}, kUcla, kKey) == zero);
  CHECK(translate_new({.http_status = 200, .body = R"({"places": []})"}, kUcla, kKey) == zero);
  CHECK(translate_new({.http_status = 200, .body = kNewBody}, {.bound = 0}, kKey) ==
        to_legacy_json({.status = "OK"}));
}

TEST_CASE("legacy results are cut to the bound and otherwise passed through", "[google]") {
  simdjson::dom::parser upstream_parser;
  simdjson::dom::element upstream;
  REQUIRE(upstream_parser.parse(kLegacyBody).get(upstream) == simdjson::SUCCESS);
  for (const int bound : {0, 1, 2, 3, 20}) {
    INFO("bound " << bound);
    const std::string json =
        trim_legacy({.http_status = 200, .body = kLegacyBody},
                    {.lat = 34, .lng = -118, .radius_km = 5, .bound = bound}, kKey);
    simdjson::dom::parser parser;
    simdjson::dom::object reply;
    REQUIRE(parser.parse(json).get(reply) == simdjson::SUCCESS);
    CHECK(reply.size() == 3);
    CHECK(canonical(reply["html_attributions"]) == canonical(upstream["html_attributions"]));
    CHECK(std::string_view(reply["status"]) == "OK");
    const auto results = reply["results"].get_array();
    REQUIRE(results.size() == static_cast<std::size_t>(std::min(bound, 3)));
    for (std::size_t i = 0; i < results.size(); ++i) {
      CHECK(canonical(results.at(i)) == canonical(upstream["results"].at(i)));
    }
  }
  std::string without_token = kLegacyBody;
  without_token.erase(without_token.find("   \"next_page_token\""),
                      without_token.find("   \"results\"") - without_token.find("   \"next_"));
  without_token.pop_back();
  CHECK(trim_legacy({.http_status = 200, .body = kLegacyBody}, kUcla, kKey) == without_token);

  const std::string zero = R"({"html_attributions":[],"results":[],"status":"ZERO_RESULTS"})";
  CHECK(trim_legacy({.http_status = 200, .body = zero}, kUcla, kKey) ==
        to_legacy_json({.status = "ZERO_RESULTS"}));
}

struct ErrorRow {
  UpstreamResponse response;
  std::string_view status, message;
};

TEST_CASE("New API failures map to legacy statuses", "[google]") {
  const ErrorRow rows[] = {
      {{.transport_error = "upstream timed out after 3000 ms"},
       "UNKNOWN_ERROR",
       "places upstream timed out after 3000 ms"},
      {{.transport_error = "connecting to upstream timed out after 1500 ms"},
       "UNKNOWN_ERROR",
       "places upstream: connecting to upstream timed out after 1500 ms"},
      {{.http_status = 503, .body = "<html>Service Unavailable</html>"},
       "UNKNOWN_ERROR",
       "places upstream answered HTTP 503"},
      {{.http_status = 500,
        .body = R"({"error":{"code":500,"message":"Internal error.","status":"INTERNAL"}})"},
       "UNKNOWN_ERROR",
       "places upstream answered HTTP 500"},
      {{.http_status = 200, .body = "{\"places\": ["},
       "UNKNOWN_ERROR",
       "places upstream sent invalid JSON"},
      {{.http_status = 200, .body = ""}, "UNKNOWN_ERROR", "places upstream sent invalid JSON"},
      {{.http_status = 200, .body = "[]"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 200, .body = R"({"places": {}})"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 200, .body = R"({"places": [{"id": "x"}]})"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 200,
        .body = R"({"places": [{"id": "x", "location": {"latitude": 1, "longitude": 2},)"
                R"( "rating": "high"}]})"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 404, .body = "<html>Not Found</html>"},
       "UNKNOWN_ERROR",
       "places upstream answered HTTP 404"},
      {{.http_status = 400, .body = R"({
  "error": {
    "code": 400,
    "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {
          "service": "places.googleapis.com"
        }
      }
    ]
  }
}
)"},
       "REQUEST_DENIED",
       "API key not valid. Please pass a valid API key."},
      {{.http_status = 403,
        .body = R"({"error":{"code":403,"message":"The request is missing a valid API key.",)"
                R"("status":"PERMISSION_DENIED"}})"},
       "REQUEST_DENIED",
       "The request is missing a valid API key."},
      {{.http_status = 429,
        .body = R"({"error":{"code":429,"message":"Quota exceeded for quota metric 'SearchNearby )"
                R"(requests'.","status":"RESOURCE_EXHAUSTED"}})"},
       "OVER_QUERY_LIMIT",
       "Quota exceeded for quota metric 'SearchNearby requests'."},
      {{.http_status = 429, .body = R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}})"},
       "OVER_QUERY_LIMIT",
       "places upstream answered RESOURCE_EXHAUSTED (HTTP 429)"},
      {{.http_status = 400,
        .body = R"({"error":{"code":400,"message":"Invalid value at 'max_result_count'.",)"
                R"("status":"INVALID_ARGUMENT"}})"},
       "INVALID_REQUEST",
       "Invalid value at 'max_result_count'."},
      {{.http_status = 400,
        .body = R"({"error":{"code":400,"message":"Billing not enabled.",)"
                R"("status":"FAILED_PRECONDITION"}})"},
       "INVALID_REQUEST",
       "Billing not enabled."},
      {{.http_status = 404,
        .body = R"({"error":{"code":404,"message":"Method not found.","status":"NOT_FOUND"}})"},
       "UNKNOWN_ERROR",
       "Method not found."},
  };
  for (const auto& row : rows) {
    INFO(row.response.body);
    CHECK(translate_new(row.response, kUcla, kKey) == error_json(row.status, row.message));
  }
}

TEST_CASE("legacy failures keep Google's status and message", "[google]") {
  const ErrorRow rows[] = {
      {{.transport_error = "upstream request failed: Couldn't connect to server"},
       "UNKNOWN_ERROR",
       "places upstream request failed: Couldn't connect to server"},
      {{.http_status = 502, .body = "Bad Gateway"},
       "UNKNOWN_ERROR",
       "places upstream answered HTTP 502"},
      {{.http_status = 200, .body = "OK"}, "UNKNOWN_ERROR", "places upstream sent invalid JSON"},
      {{.http_status = 403, .body = "<html>Forbidden</html>"},
       "UNKNOWN_ERROR",
       "places upstream answered HTTP 403"},
      {{.http_status = 200, .body = R"({"results": []})"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 200, .body = R"({"html_attributions":[],"results":[1],"status":"OK"})"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 200, .body = R"({"html_attributions":[7],"results":[],"status":"OK"})"},
       "UNKNOWN_ERROR",
       "places upstream sent JSON of an unexpected shape"},
      {{.http_status = 200,
        .body = R"({"error_message":"The provided API key is invalid. ","html_attributions":[],)"
                R"("results":[],"status":"REQUEST_DENIED"})"},
       "REQUEST_DENIED",
       "The provided API key is invalid. "},
      {{.http_status = 200,
        .body = R"({"error_message":"You have exceeded your daily request quota for this API.",)"
                R"("html_attributions":[],"results":[],"status":"OVER_QUERY_LIMIT"})"},
       "OVER_QUERY_LIMIT",
       "You have exceeded your daily request quota for this API."},
      {{.http_status = 200,
        .body = R"({"html_attributions":[],"results":[],)"
                R"("status":"INVALID_REQUEST"})"},
       "INVALID_REQUEST",
       "places upstream answered INVALID_REQUEST"},
      {{.http_status = 200,
        .body = R"({"error_message":"Try again.","html_attributions":[],"results":[],)"
                R"("status":"UNKNOWN_ERROR"})"},
       "UNKNOWN_ERROR",
       "Try again."},
      {{.http_status = 200, .body = R"({"error_message":"Gone.","status":"NOT_FOUND"})"},
       "UNKNOWN_ERROR",
       "places upstream answered status \"NOT_FOUND\": Gone."},
  };
  for (const auto& row : rows) {
    INFO(row.response.body);
    CHECK(trim_legacy(row.response, kUcla, kKey) == error_json(row.status, row.message));
  }
}

TEST_CASE("the API key never reaches a reply", "[google]") {
  const std::string key = "AIza+Test/Key=42";
  const std::string encoded = "AIza%2BTest%2FKey%3D42";
  const std::string url = build_legacy_request(kUcla, kLegacyNearbyEndpoint, key).url;
  REQUIRE(url.find(encoded) != std::string::npos);
  const UpstreamResponse transport_errors[] = {
      {.transport_error = "could not resolve host in " + url},
      {.transport_error = "key " + key + " refused"},
  };
  const UpstreamResponse new_error = {.http_status = 400,
                                      .body = R"({"error":{"code":400,"message":"Bad key )" + key +
                                              R"(","status":"INVALID_ARGUMENT"}})"};
  const UpstreamResponse legacy_error = {.http_status = 200,
                                         .body = R"({"error_message":"Denied for )" + url +
                                                 R"(","results":[],"status":"REQUEST_DENIED"})"};
  std::vector<std::string> replies = {translate_new(new_error, kUcla, key),
                                      trim_legacy(legacy_error, kUcla, key)};
  for (const auto& response : transport_errors) {
    replies.push_back(translate_new(response, kUcla, key));
    replies.push_back(trim_legacy(response, kUcla, key));
  }
  for (const auto& reply : replies) {
    INFO(reply);
    CHECK(reply.find(key) == std::string::npos);
    CHECK(reply.find(encoded) == std::string::npos);
    CHECK(reply.find("[redacted]") != std::string::npos);
  }
}

}  // namespace
}  // namespace herd::places
