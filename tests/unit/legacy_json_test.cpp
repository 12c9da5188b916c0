#include "places/legacy_json.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <catch2/catch.hpp>

namespace herd::places {
namespace {

std::string json_literal(std::string_view text) {
  std::string out;
  write_json_string(out, text);
  return out;
}

std::string pretty(std::string_view json, int depth = 0) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element value;
  REQUIRE(parser.parse(padded).get(value) == simdjson::SUCCESS);
  std::string out;
  write_pretty(out, value, depth);
  return out;
}

// A types array of `count` equal items, one a line.
std::string one_per_line(int count, const std::string& item) {
  std::string json = "[\n";
  for (int i = 0; i < count; ++i)
    json += std::string(12, ' ') + item + (i + 1 < count ? ",\n" : "\n");
  return json + "         ]";
}

bool has_blank_line(const std::string& text) {
  std::istringstream lines(text);
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    if (line.find_first_not_of(' ') == std::string::npos) return true;
  }
  return count == 0 || text.back() == '\n';
}

TEST_CASE("strings are escaped as Google escapes them", "[legacy_json]") {
  const struct {
    std::string text, json;
  } rows[] = {
      {"plain", R"("plain")"},
      {"", R"("")"},
      {R"(say "hi")", R"("say \"hi\"")"},
      {R"(back\slash)", R"("back\\slash")"},
      {"a/b", R"("a/b")"},
      {"line\nbreak", R"("line\nbreak")"},
      {"\r\t\b\f", R"("\r\t\b\f")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""},
      {"<b>Tom & Jerry</b>", R"("\u003cb\u003eTom \u0026 Jerry\u003c/b\u003e")"},
      {"Café 東京 🍣", "\"Café 東京 🍣\""},
      {"\u2028", "\"\u2028\""},
      {"bad \xff byte", R"("bad \ufffd byte")"},
      {"cut \xe6\x9d", R"("cut \ufffd\ufffd")"},
      {"surrogate \xed\xa0\x80", R"("surrogate \ufffd\ufffd\ufffd")"},
      {"overlong \xc0\xaf", R"("overlong \ufffd\ufffd")"},
      {"too high \xf4\x90\x80\x80", R"("too high \ufffd\ufffd\ufffd\ufffd")"},
  };
  for (const auto& row : rows) {
    INFO(row.text);
    CHECK(json_literal(row.text) == row.json);
  }
}

TEST_CASE("a byte to escape is found wherever it falls in a long string", "[legacy_json]") {
  const struct {
    std::string_view byte, json;
  } specials[] = {{"<", "\\u003c"}, {"\x01", "\\u0001"}, {"\"", "\\\""},
                  {"é", "é"},       {"\xff", "\\ufffd"}, {"\x7f", "\x7f"}};
  for (std::size_t length = 1; length <= 40; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (const auto& special : specials) {
        std::string text(length, 'a');
        text.replace(at, 1, special.byte);
        INFO(text);
        CHECK(json_literal(text) == '"' + std::string(at, 'a') + std::string(special.json) +
                                        std::string(length - at - 1, 'a') + '"');
      }
    }
  }
}

TEST_CASE("a reply is written in Google's legacy layout", "[legacy_json]") {
  const PlacesReply reply{
      .status = "OK",
      .results =
          {
              {.name = "Diddy Riese",
               .lat = 34.0630,
               .lng = -118.4474,
               .place_id = "ChIJJ4nGVn28woARzSBuCh9ZVG8",
               .vicinity = "926 Broxton Ave, Los Angeles",
               .types = {"bakery", "food", "point_of_interest", "store", "establishment"},
               .rating = 4.5,
               .user_ratings_total = 4012,
               .business_status = "OPERATIONAL"},
              {.name = "UCLA",
               .lat = 34.068921,
               .lng = -118.4451811,
               .place_id = "ChIJZQ9c8IW8woARN0gTXFiTqSU",
               .vicinity = "Los Angeles",
               .types = {}},
          },
      .error_message = "",
      .html_attributions = {"GeoNames, geonames.org, CC BY 4.0"},
  };
  CHECK(to_legacy_json(reply) == R"({
   "html_attributions" : [ "GeoNames, geonames.org, CC BY 4.0" ],
   "results" : [
      {
         "business_status" : "OPERATIONAL",
         "geometry" : {
            "location" : {
               "lat" : 34.063,
               "lng" : -118.4474
            }
         },
         "name" : "Diddy Riese",
         "place_id" : "ChIJJ4nGVn28woARzSBuCh9ZVG8",
         "rating" : 4.5,
         "types" : [ "bakery", "food", "point_of_interest", "store", "establishment" ],
         "user_ratings_total" : 4012,
         "vicinity" : "926 Broxton Ave, Los Angeles"
      },
      {
         "geometry" : {
            "location" : {
               "lat" : 34.068921,
               "lng" : -118.4451811
            }
         },
         "name" : "UCLA",
         "place_id" : "ChIJZQ9c8IW8woARN0gTXFiTqSU",
         "types" : [],
         "vicinity" : "Los Angeles"
      }
   ],
   "status" : "OK"
})");
}

TEST_CASE("a reply is written a result at a time from borrowed text", "[legacy_json]") {
  const std::vector<std::string_view> types = {"cafe", "food"};
  const std::vector<std::string> attributions = {"<b>Example</b>"};
  LegacyReplyWriter writer(1, attributions);
  writer.add(PlaceView{.name = "Kerckhoff Coffee",
                       .lat = 34.0705,
                       .lng = -118.4433,
                       .place_id = "ChIJKerckhoff",
                       .vicinity = "308 Westwood Plaza, Los Angeles",
                       .types = types,
                       .rating = 4.3});
  CHECK(writer.finish("OK") == R"({
   "html_attributions" : [ "\u003cb\u003eExample\u003c/b\u003e" ],
   "results" : [
      {
         "geometry" : {
            "location" : {
               "lat" : 34.0705,
               "lng" : -118.4433
            }
         },
         "name" : "Kerckhoff Coffee",
         "place_id" : "ChIJKerckhoff",
         "rating" : 4.3,
         "types" : [ "cafe", "food" ],
         "vicinity" : "308 Westwood Plaza, Los Angeles"
      }
   ],
   "status" : "OK"
})");
  CHECK(LegacyReplyWriter(0).finish("ZERO_RESULTS") == to_legacy_json({.status = "ZERO_RESULTS"}));
}

TEST_CASE("empty and error replies", "[legacy_json]") {
  CHECK(to_legacy_json({.status = "ZERO_RESULTS"}) == R"({
   "html_attributions" : [],
   "results" : [],
   "status" : "ZERO_RESULTS"
})");
  CHECK(to_legacy_json({.status = "UNKNOWN_ERROR",
                        .error_message = "places upstream answered HTTP 503"}) == R"({
   "html_attributions" : [],
   "error_message" : "places upstream answered HTTP 503",
   "results" : [],
   "status" : "UNKNOWN_ERROR"
})");
}

TEST_CASE("arrays go one item a line once they pass jsoncpp's 74 columns", "[legacy_json]") {
  const struct {
    std::vector<std::string> types;
    std::string json;
  } rows[] = {
      // 4 + 2 * 2 + 3 * 22 = 74: the first length that wraps.
      {{std::string(20, 'a'), std::string(20, 'b'), std::string(20, 'c')},
       "[\n            \"aaaaaaaaaaaaaaaaaaaa\",\n            \"bbbbbbbbbbbbbbbbbbbb\",\n"
       "            \"cccccccccccccccccccc\"\n         ]"},
      {{std::string(20, 'a'), std::string(20, 'b'), std::string(19, 'c')},
       R"([ "aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb", "ccccccccccccccccccc" ])"},
      {std::vector<std::string>(25, ""), one_per_line(25, R"("")")},
  };
  for (const auto& row : rows) {
    const std::string json = to_legacy_json({.results = {{.types = row.types}}});
    INFO(json);
    CHECK(json.find("\"types\" : " + row.json + ",\n") != std::string::npos);
  }
}

TEST_CASE("coordinates and ratings read back exactly", "[legacy_json]") {
  const double values[] = {0.0,       34.068930, -118.445127,
                           0.1 + 0.2, 1e-7,      90.0,
                           -180.0,    4.0,       std::numeric_limits<double>::denorm_min()};
  for (const double value : values) {
    const std::string json =
        to_legacy_json({.results = {{.lat = value, .lng = -value, .rating = value}}});
    simdjson::dom::parser parser;
    simdjson::dom::element place;
    REQUIRE(parser.parse(json).at_pointer("/results/0").get(place) == simdjson::SUCCESS);
    CHECK(double(place.at_pointer("/geometry/location/lat")) == value);
    CHECK(double(place.at_pointer("/geometry/location/lng")) == -value);
    CHECK(double(place["rating"]) == value);
  }
  CHECK(to_legacy_json({.results = {{.user_ratings_total = 9007199254740993}}})
            .find("\"user_ratings_total\" : 9007199254740993,") != std::string::npos);
}

TEST_CASE("numbers are written as fmt writes the shortest text that reads back", "[legacy_json]") {
  const auto written = [](double value) {
    std::string out;
    write_json_number(out, value);
    return out;
  };
  std::vector<double> values{0.0,
                             -0.0,
                             1.0,
                             -1.0,
                             0.5,
                             0.05,
                             0.001,
                             0.0009999,
                             1e-5,
                             4.3,
                             34.0522342,
                             -118.2436849,
                             1048575.99999999,
                             1048576.5,
                             1e16,
                             0.1 + 0.2,
                             123456.78901234,
                             5e-324,
                             1.7976931348623157e308};
  std::minstd_rand random(5);
  for (int i = 0; i < 20000; ++i) {
    const auto decimals = static_cast<int>(random() % 10);
    const double whole = static_cast<double>(random() % 2000000) - 1000000.0;
    values.push_back(whole / std::pow(10.0, decimals));
    values.push_back(static_cast<double>(random()) / static_cast<double>(random() | 1));
    std::uint64_t bits =
        (std::uint64_t{random()} << 33) ^ (std::uint64_t{random()} << 2) ^ random();
    double any;
    std::memcpy(&any, &bits, sizeof any);
    if (std::isfinite(any)) values.push_back(any);
  }
  for (const double value : values) REQUIRE(written(value) == fmt::format("{}", value));
}

TEST_CASE("no line of a reply is ever empty", "[legacy_json]") {
  const std::string nasty = "\n\n  \r\n\t\v\x1b end\n";
  const PlacesReply reply{
      .status = nasty,
      .results = {{.name = nasty,
                   .place_id = nasty,
                   .vicinity = nasty,
                   .types = {nasty, ""},
                   .business_status = nasty}},
      .error_message = nasty,
      .html_attributions = {nasty},
  };
  const std::string json = to_legacy_json(reply);
  INFO(json);
  CHECK_FALSE(has_blank_line(json));
  CHECK_FALSE(has_blank_line(to_legacy_json({})));
  simdjson::dom::parser parser;
  simdjson::dom::element value;
  REQUIRE(parser.parse(json).get(value) == simdjson::SUCCESS);
  CHECK(std::string_view(value.at_pointer("/results/0/name")) == nasty);
  CHECK(std::string_view(value["error_message"]) == nasty);
}

TEST_CASE("write_pretty lays out any JSON value in the same style", "[legacy_json]") {
  CHECK(pretty(R"({"a":[1,2.5,-3,true,false,null],"b":{},"c":[],"d":[{"e":"f<"}],)"
               R"("g":[[],{}],"h":18446744073709551615,"i":[[1]],"j":1.0E2})") == R"({
   "a" : [ 1, 2.5, -3, true, false, null ],
   "b" : {},
   "c" : [],
   "d" : [
      {
         "e" : "f\u003c"
      }
   ],
   "g" : [ [], {} ],
   "h" : 18446744073709551615,
   "i" : [
      [ 1 ]
   ],
   "j" : 100
})");
  CHECK(pretty(R"({"lat":1,"lng":2})", 2) ==
        "{\n         \"lat\" : 1,\n         \"lng\" : 2\n      }");
  CHECK(pretty(R"("x")", 3) == R"("x")");
}

TEST_CASE("write_pretty reproduces Google's own legacy text", "[legacy_json]") {
  const std::string google = R"({
   "html_attributions" : [],
   "results" : [
      {
         "business_status" : "OPERATIONAL",
         "geometry" : {
            "location" : {
               "lat" : -33.8688197,
               "lng" : 151.2092955
            },
            "viewport" : {
               "northeast" : {
                  "lat" : -33.5781409,
                  "lng" : 151.3430209
               },
               "southwest" : {
                  "lat" : -34.118347,
                  "lng" : 150.5209286
               }
            }
         },
         "icon" : "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/geocode-71.png",
         "name" : "Sydney",
         "photos" : [
            {
               "height" : 2832,
               "html_attributions" : [
                  "\u003ca href=\"https://maps.google.com/maps/contrib/1137\"\u003eKoala Bear\u003c/a\u003e"
               ],
               "photo_reference" : "AUacShh3_Dd8yvV2JZMtNjjbbSbFhSv-0VmUN-uasQ2Oj00XB63irPTks0-A_1rMN",
               "width" : 4240
            }
         ],
         "place_id" : "ChIJP3Sa8ziYEmsRUKgyFmh9AQM",
         "types" : [ "colloquial_area", "locality", "political" ],
         "vicinity" : "Sydney"
      }
   ],
   "status" : "OK"
})";
  CHECK(pretty(google) == google);
}

}  // namespace
}  // namespace herd::places
