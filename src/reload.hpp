// A config reload (SIGHUP): what differs, for one server, between the config it runs and the
// file as it reads now. Neighbors, their addresses and the log level may change while the
// server runs; anything else it uses needs a restart, and then nothing changes at all. No I/O:
// the server reads the file and applies the plan on the herd's strand.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace herd {

struct ReloadPlan {
  // Empty when the reload may go ahead; else what changed that needs a restart, every key:
  // "servers.Goloman.port 12000 -> 12005, places.timeout_ms 3000 -> 4000".
  std::string needs_restart;
  std::vector<std::string> removed;  // neighbors whose link goes (a moved one too), sorted
  std::vector<ServerConfig> added;   // neighbors to link with (a moved one too, at its new address)
  std::vector<std::string> moved;    // neighbors whose host or peer_port changed, sorted
  std::optional<LogLevel> log_level;  // the new level, when it changed

  bool refused() const { return !needs_restart.empty(); }
  // For the log: "neighbors: +Dee, -Hands; Wilkes moved to 127.0.0.1:22010; log level debug",
  // or "nothing changed".
  std::string summary() const;
};

// `self` must be a server of `running`; a file that no longer defines it is refused.
ReloadPlan plan_reload(const Config& running, const Config& file, std::string_view self);

std::string_view level_name(LogLevel level);

// The server logs a reload's outcome at every level, as "server - config reloaded: SUMMARY" or
// "server - config reload refused: WHY; keeping the running config". herdctl reload reads it
// back from the log's new lines: the first outcome there, or none yet.
struct ReloadOutcome {
  bool reloaded = false;
  std::string text;  // the summary, or why it was refused
};
std::optional<ReloadOutcome> find_reload_outcome(std::string_view log_lines);

}  // namespace herd
