#include "metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace herd {

void Histogram::observe(double seconds) {
  auto bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
  ++counts_[static_cast<std::size_t>(bucket)];
  ++count_;
  sum_ += seconds;
}

std::array<std::uint64_t, Histogram::bounds.size() + 1> Histogram::cumulative() const {
  auto result = counts_;
  for (std::size_t i = 1; i < result.size(); ++i) result[i] += result[i - 1];
  return result;
}

void PlacesCounters::observe(std::string_view status, double seconds) {
  std::lock_guard lock(mutex_);
  auto found = by_status_.find(status);
  if (found == by_status_.end()) found = by_status_.emplace(std::string(status), 0).first;
  ++found->second;
  latency_.observe(seconds);
}

void PlacesCounters::copy_to(std::map<std::string, std::uint64_t>& by_status,
                             Histogram& latency) const {
  std::lock_guard lock(mutex_);
  by_status.insert(by_status_.begin(), by_status_.end());
  latency = latency_;
}

namespace {

// Integers exactly, other numbers as Go's and Python's clients print them; +Inf as the format says.
std::string number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  if (value == std::trunc(value) && std::abs(value) < 1e15) return fmt::format("{:.0f}", value);
  return fmt::format("{}", value);
}

}  // namespace

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string_view places_status(std::string_view json) {
  constexpr std::string_view key = "\"status\"";
  auto at = json.rfind(key);
  if (at == std::string_view::npos) return "unknown";
  auto open = json.find('"', json.find(':', at + key.size()));
  if (open == std::string_view::npos) return "unknown";
  auto close = json.find('"', open + 1);
  if (close == std::string_view::npos) return "unknown";
  return json.substr(open + 1, close - open - 1);
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Exposition::counter(std::string_view name, std::string_view help, double value) {
  family(name, "counter", help);
  fmt::format_to(std::back_inserter(text_), "{} {}\n", name, number(value));
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
  family(name, "gauge", help);
  fmt::format_to(std::back_inserter(text_), "{} {}\n", name, number(value));
}

void Exposition::labeled(std::string_view type, std::string_view name, std::string_view help,
                         std::string_view label,
                         const std::vector<std::pair<std::string, double>>& values) {
  family(name, type, help);
  for (const auto& [key, value] : values)
    fmt::format_to(std::back_inserter(text_), "{}{{{}=\"{}\"}} {}\n", name, label,
                   escape_label(key), number(value));
}

void Exposition::histogram(std::string_view name, std::string_view help, const Histogram& h) {
  family(name, "histogram", help);
  auto counts = h.cumulative();
  for (std::size_t i = 0; i < Histogram::bounds.size(); ++i)
    fmt::format_to(std::back_inserter(text_), "{}_bucket{{le=\"{}\"}} {}\n", name,
                   number(Histogram::bounds[i]), counts[i]);
  fmt::format_to(std::back_inserter(text_), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n",
                 name, h.count(), name, number(h.sum()), name, h.count());
}

std::string render_metrics(const MetricsSnapshot& s) {
  Exposition out;
  out.counter("herd_iamat_total", "IAMAT lines received from clients (refused ones included).",
              double(s.iamat));
  out.counter("herd_whatsat_total", "WHATSAT lines received from clients.", double(s.whatsat));
  out.counter("herd_invalid_lines_total", "Client lines that are no command (answered \"? line\").",
              double(s.invalid));
  out.counter("herd_replies_total", "Replies handed to client connections to send.",
              double(s.replies));
  out.gauge("herd_clients_connected", "Client connections open.", double(s.herd.clients));
  out.gauge("herd_records_stored", "Client location records in this server's store.",
            double(s.herd.records));
  std::vector<std::pair<std::string, double>> up, catch_up;
  for (const auto& link : s.herd.links) {
    up.emplace_back(link.neighbor, link.up ? 1 : 0);
    catch_up.emplace_back(link.neighbor, double(link.catch_up_records_sent));
  }
  out.labeled("gauge", "herd_link_up", "Whether the link to each neighbor is up (1) or down (0).",
              "neighbor", up);
  out.counter("herd_peer_puts_sent_total", "PUTs sent to neighbors.", double(s.herd.puts_sent));
  out.counter("herd_peer_acks_received_total", "ACK lines received from neighbors.",
              double(s.herd.acks_received));
  out.histogram("herd_peer_ack_latency_seconds",
                "Time from sending a PUT to its acknowledgement, per PUT acknowledged.",
                s.herd.ack_latency);
  out.labeled("counter", "herd_catch_up_records_sent_total",
              "Records sent to each neighbor in catch-ups when its link came up.", "neighbor",
              catch_up);
  std::vector<std::pair<std::string, double>> lookups;
  for (const auto& [status, n] : s.places_by_status) lookups.emplace_back(status, double(n));
  out.labeled("counter", "herd_places_lookups_total",
              "Places lookups for WHATSAT, by the status of the answer.", "status", lookups);
  out.histogram("herd_places_lookup_seconds", "Time a places lookup took, waiting included.",
                s.places_latency);
  out.labeled("counter", "herd_config_reloads_total",
              "Config reloads (SIGHUP), by outcome: ok, or refused (the server kept its config).",
              "result",
              {{"ok", double(s.herd.reloads_ok)}, {"refused", double(s.herd.reloads_refused)}});
  out.counter("herd_log_bytes_written_total", "Bytes written to the log file.",
              double(s.log_bytes));
  out.gauge("herd_start_time_seconds", "When the server started, in seconds since the epoch.",
            s.start_time);
  out.gauge("herd_uptime_seconds", "Seconds since the server started.", s.uptime);
  return out.text();
}

namespace {

std::optional<double> parse_number(std::string_view text) {
  if (text == "+Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// `text` starts after '{'; fills `labels` and returns what follows the '}', or nullopt.
std::optional<std::string_view> parse_labels(std::string_view text,
                                             std::map<std::string, std::string>& labels) {
  std::size_t i = 0;
  for (;;) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i < text.size() && text[i] == '}') return text.substr(i + 1);
    auto eq = text.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"')
      return std::nullopt;
    std::string key(text.substr(i, eq - i)), value;
    for (i = eq + 2; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        ++i;
        value += text[i] == 'n' ? '\n' : text[i];
      } else {
        value += text[i];
      }
    }
    if (i >= text.size()) return std::nullopt;
    ++i;
    labels.emplace(std::move(key), std::move(value));
  }
}

}  // namespace

std::vector<Sample> parse_exposition(std::string_view text) {
  std::vector<Sample> samples;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    Sample sample;
    auto name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) continue;
    sample.name = line.substr(0, name_end);
    auto rest = line.substr(name_end);
    if (rest.front() == '{') {
      auto after = parse_labels(rest.substr(1), sample.labels);
      if (!after) continue;
      rest = *after;
    }
    auto value_start = rest.find_first_not_of(' ');
    if (value_start == std::string_view::npos) continue;
    rest = rest.substr(value_start);
    auto value = parse_number(rest.substr(0, rest.find(' ')));  // a timestamp may follow
    if (!value) continue;
    sample.value = *value;
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::optional<double> sample_value(const std::vector<Sample>& samples, std::string_view name,
                                   std::string_view label, std::string_view value) {
  for (const auto& s : samples) {
    if (s.name != name) continue;
    if (!label.empty()) {
      auto found = s.labels.find(std::string(label));
      if (found == s.labels.end() || found->second != value) continue;
    }
    return s.value;
  }
  return std::nullopt;
}

}  // namespace herd
