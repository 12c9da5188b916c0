// What a server counts, and the Prometheus text exposition format (0.0.4) it is scraped in.
// No I/O: the metrics port (metrics_port.cpp) gathers a snapshot and renders it here, and
// herdctl parses what it scrapes with parse_exposition().
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

// Latencies in seconds, in fixed buckets. Plain counters: owned by one strand.
class Histogram {
 public:
  static constexpr std::array<double, 12> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};
  void observe(double seconds);
  // Cumulative counts, one per bound, then +Inf (= count()).
  std::array<std::uint64_t, bounds.size() + 1> cumulative() const;
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::array<std::uint64_t, bounds.size() + 1> counts_{};  // per bucket, not cumulative
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// Counted where the work is done, on any thread: relaxed atomics, one add each.
struct ClientCounters {
  std::atomic<std::uint64_t> iamat{0}, whatsat{0}, invalid{0};
  std::atomic<std::uint64_t> replies{0};
  void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

// Places lookups, by the status of their answer: few, and each takes a while, so a mutex.
class PlacesCounters {
 public:
  void observe(std::string_view status, double seconds);
  void copy_to(std::map<std::string, std::uint64_t>& by_status, Histogram& latency) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t, std::less<>> by_status_;
  Histogram latency_;
};

// The herd's part, gathered on its strand for one scrape.
struct LinkState {
  std::string neighbor;
  bool up = false;
  std::uint64_t catch_up_records_sent = 0;
};
struct HerdSnapshot {
  bool loading = false;  // the store's file is still being read
  std::size_t records = 0;
  std::size_t clients = 0;
  std::vector<LinkState> links;
  std::uint64_t puts_sent = 0;
  std::uint64_t acks_received = 0;  // ACK lines
  Histogram ack_latency;            // per PUT acknowledged
  std::uint64_t reloads_ok = 0, reloads_refused = 0;  // config reloads (SIGHUP)
};

// Everything one scrape shows.
struct MetricsSnapshot {
  HerdSnapshot herd;
  std::uint64_t iamat = 0, whatsat = 0, invalid = 0, replies = 0;
  std::map<std::string, std::uint64_t> places_by_status;
  Histogram places_latency;
  std::uint64_t log_bytes = 0;
  double start_time = 0;  // seconds since the epoch
  double uptime = 0;      // seconds
};

// Writes families in the text format: HELP and TYPE once before each family's samples.
class Exposition {
 public:
  void counter(std::string_view name, std::string_view help, double value);
  void gauge(std::string_view name, std::string_view help, double value);
  // A family with one sample per label value: name{label="value"} number.
  void labeled(std::string_view type, std::string_view name, std::string_view help,
               std::string_view label, const std::vector<std::pair<std::string, double>>& values);
  void histogram(std::string_view name, std::string_view help, const Histogram& h);
  const std::string& text() const { return text_; }

 private:
  void family(std::string_view name, std::string_view type, std::string_view help);
  std::string text_;
};

std::string render_metrics(const MetricsSnapshot& snapshot);

// One sample of a scrape: "name{labels} value", labels as written between the braces.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
// The samples of a text exposition; comments and lines that do not parse are skipped.
std::vector<Sample> parse_exposition(std::string_view text);
// The value of the first sample named `name` whose labels include `label`=`value` (if given).
std::optional<double> sample_value(const std::vector<Sample>& samples, std::string_view name,
                                   std::string_view label = {}, std::string_view value = {});

// The "status" of a places answer in the legacy Nearby Search shape ("OK", "ZERO_RESULTS", ...);
// "unknown" when it has none.
std::string_view places_status(std::string_view json);

// A label value escaped as the text format wants: \\, \" and \n.
std::string escape_label(std::string_view value);

}  // namespace herd
