#include <catch2/catch.hpp>

#include "metrics.hpp"

using namespace herd;

TEST_CASE("a histogram counts each observation in its bucket and those above", "[metrics]") {
  Histogram h;
  h.observe(0.0001);  // first bucket
  h.observe(0.001);   // a bound is in its own bucket (le: less or equal)
  h.observe(0.3);
  h.observe(10);  // only +Inf
  auto counts = h.cumulative();
  CHECK(counts[0] == 1);
  CHECK(counts[1] == 2);
  CHECK(counts[7] == 2);  // le 0.1
  CHECK(counts[8] == 2);  // le 0.25
  CHECK(counts[9] == 3);  // le 0.5
  CHECK(counts[Histogram::bounds.size() - 1] == 3);
  CHECK(counts.back() == 4);
  CHECK(h.count() == 4);
  CHECK(h.sum() == Approx(10.3011));
}

TEST_CASE("the text format: HELP and TYPE before each family, labels escaped", "[metrics]") {
  Exposition out;
  out.counter("herd_iamat_total", "IAMAT lines.", 3);
  out.labeled("gauge", "herd_link_up", "Links.", "neighbor", {{"Hands", 1}, {"a\"b\\c", 0}});
  Histogram h;
  h.observe(0.002);
  out.histogram("herd_x_seconds", "X.", h);
  auto text = out.text();
  CHECK(
      text.starts_with("# HELP herd_iamat_total IAMAT lines.\n"
                       "# TYPE herd_iamat_total counter\n"
                       "herd_iamat_total 3\n"
                       "# HELP herd_link_up Links.\n"
                       "# TYPE herd_link_up gauge\n"
                       "herd_link_up{neighbor=\"Hands\"} 1\n"
                       "herd_link_up{neighbor=\"a\\\"b\\\\c\"} 0\n"
                       "# HELP herd_x_seconds X.\n"
                       "# TYPE herd_x_seconds histogram\n"
                       "herd_x_seconds_bucket{le=\"0.0005\"} 0\n"
                       "herd_x_seconds_bucket{le=\"0.001\"} 0\n"
                       "herd_x_seconds_bucket{le=\"0.0025\"} 1\n"));
  CHECK(
      text.ends_with("herd_x_seconds_bucket{le=\"2.5\"} 1\n"
                     "herd_x_seconds_bucket{le=\"+Inf\"} 1\n"
                     "herd_x_seconds_sum 0.002\n"
                     "herd_x_seconds_count 1\n"));
}

TEST_CASE("what a server renders parses back, sample by sample", "[metrics]") {
  MetricsSnapshot s;
  s.iamat = 7;
  s.herd.records = 5;
  s.herd.links = {{"Hands", true, 12, 700, 3, 150}, {"Wilkes", false, 0, 0, 0, 0}};
  s.places_by_status = {{"OK", 2}, {"ZERO_RESULTS", 1}};
  s.uptime = 1.5;
  auto samples = parse_exposition(render_metrics(s));
  CHECK(sample_value(samples, "herd_iamat_total") == 7);
  CHECK(sample_value(samples, "herd_records_stored") == 5);
  CHECK(sample_value(samples, "herd_link_up", "neighbor", "Hands") == 1);
  CHECK(sample_value(samples, "herd_link_up", "neighbor", "Wilkes") == 0);
  CHECK(sample_value(samples, "herd_catch_up_records_sent_total", "neighbor", "Hands") == 12);
  CHECK(sample_value(samples, "herd_catch_up_bytes_sent_total", "neighbor", "Hands") == 700);
  CHECK(sample_value(samples, "herd_catch_up_records_received_total", "neighbor", "Hands") == 3);
  CHECK(sample_value(samples, "herd_catch_up_bytes_received_total", "neighbor", "Hands") == 150);
  CHECK(sample_value(samples, "herd_places_lookups_total", "status", "ZERO_RESULTS") == 1);
  CHECK(sample_value(samples, "herd_peer_ack_latency_seconds_bucket", "le", "+Inf") == 0);
  CHECK(sample_value(samples, "herd_uptime_seconds") == 1.5);
  CHECK_FALSE(sample_value(samples, "herd_link_up", "neighbor", "Welsh"));
}

TEST_CASE("a scrape's lines that do not parse are skipped", "[metrics]") {
  auto samples = parse_exposition(
      "# HELP a x\nno_value\nb{l=\"v\"} 2 1700000000000\nc{l=\"unterminated} 3\nd nope\ne 1e3\n");
  REQUIRE(samples.size() == 2);
  CHECK(samples[0].name == "b");
  CHECK(samples[0].value == 2);
  CHECK(samples[1].value == 1000);
}

TEST_CASE("a places answer's status", "[metrics]") {
  CHECK(places_status("{\n   \"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}\n") ==
        "ZERO_RESULTS");
  CHECK(places_status("{\"status\":\"OK\"}") == "OK");
  CHECK(places_status("not json") == "unknown");
}
