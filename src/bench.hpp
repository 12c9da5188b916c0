// herdctl bench: a closed-loop load generator for line protocols (the herd's, echo, Redis's
// inline commands). One thread, epoll, every in-flight line of a connection in one write.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace herd::bench {

extern const char* const usage;

// A mistake on the command line: herdctl prints it with the usage and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string target;  // HOST:PORT or a server's name
  int connections = 50;
  int in_flight = 1;
  std::uint64_t requests = 0;  // 0: until the duration ends
  double duration_s = 0;       // 0: until `requests` are answered
  std::string line = "IAMAT c%n.cs.ucla.edu +34.068930-118.445127 %t";
  bool one_shot = false;
  bool blank_line = false;
  bool json = false;
  double timeout_s = 10;  // a run with no reply for this long has stalled
};

// Parses the arguments that follow "bench"; throws UsageError.
Options parse_options(const std::vector<std::string>& args);

struct Endpoint {
  std::string host, port;
  std::string name;  // the server's name in the config, or empty
};

// Runs the load, prints the result; returns the exit status (1 when a request failed or
// was refused, or nothing could connect).
int run(const Options& options, const Endpoint& endpoint);

}  // namespace herd::bench
