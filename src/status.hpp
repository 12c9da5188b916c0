// herdctl status and watch: each server asked itself, through its metrics port (GET /metrics,
// with a short timeout); a server without one is only checked for listening.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "metrics.hpp"

namespace herd::status {

struct ServerStatus {
  std::string name, address;
  bool metrics = false;    // it has a metrics port
  bool listening = false;  // its client port accepts connections
  bool answering = false;  // its metrics port answered in time
  std::string problem;     // why it did not answer
  int links_up = 0, links_total = 0;
  std::vector<std::string> links_down;
  double records = 0, clients = 0, iamat_total = 0, uptime = 0;
  std::optional<double> iamat_rate;  // IAMATs per second

  // "ok", "links down", "not answering", "down", "listening" (metrics off).
  std::string state() const;
};

// Asks the server, waiting at most `timeout` for each connection and answer.
ServerStatus query(const ServerConfig& server, std::chrono::milliseconds timeout);

// IAMATs per second: over the server's uptime, or between `earlier` and `now` of the same run.
void rate_since_start(ServerStatus& now);
void rate_between(const ServerStatus& earlier, ServerStatus& now, double seconds);

std::string table(const std::vector<ServerStatus>& servers, std::string_view rate_title);
std::string json_line(const ServerStatus& s);
// Reads the samples of a scrape into `s`.
void read_metrics(const std::vector<Sample>& samples, ServerStatus& s);

}  // namespace herd::status
