// herd.toml: the servers, their ports, who talks with whom, and where places come from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "log.hpp"  // LogLevel

namespace herd {

// what() reads "FILE:LINE:COLUMN: KEY: what is wrong".
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ServerConfig {
  std::string name;
  std::string host = "127.0.0.1";  // where neighbors and herdctl reach it
  std::string listen;              // the address its ports bind; by default `host`
  std::uint16_t port = 0;          // clients
  std::uint16_t peer_port = 0;     // neighbors; by default port + 10000
  std::uint16_t tls_port = 0;      // clients over TLS; 0: none
  std::uint16_t metrics_port = 0;  // HTTP: /metrics and /healthz; 0: none
  std::vector<std::string> talks_with;  // as written in this server's table
  std::vector<std::string> neighbors;   // links declared on either side, sorted
};

struct PlacesConfig {
  std::string provider = "geonames";  // "geonames" | "google" | "google-legacy"
  std::filesystem::path data;         // geonames data; empty: the installed data
  std::string endpoint;               // google providers: empty means Google's own URL
  std::string api_key_env = "GOOGLE_PLACES_API_KEY";
  int timeout_ms = 3000;
  int max_concurrent = 8;  // upstream requests in flight at once, per server
};

struct ClientsConfig {
  // A client that takes none of its replies for this long is disconnected: otherwise it could
  // hold its connection and the replies waiting for it forever.
  int send_timeout_ms = 60'000;
  // An IAMAT, or a neighbor's record, whose time is further ahead of this server's clock is
  // refused: a time far in the future would pin its client's record for good.
  std::int64_t max_clock_skew_ms = 86'400'000;
  // A client connection that completes no line for this long is closed: silent connections
  // and a line sent a byte at a time would otherwise hold a descriptor and memory for good.
  int idle_timeout_ms = 300'000;
  // Replies a client leaves unread: one that lets more than this pile up is disconnected, and
  // so is one that adds to them while all clients together hold more than the total.
  std::int64_t max_output_bytes = 1024 * 1024;
  std::int64_t max_total_output_bytes = 256 * 1024 * 1024;
};

// Where a server keeps its records across restarts, and when they reach the disk.
struct StoreConfig {
  // "always": an IAMAT is answered once it is on disk here; "everysec": at most the last
  // second is lost on a crash of the machine; "no": the kernel decides when.
  enum class Fsync { always, everysec, no };
  std::filesystem::path dir = "state";  // each server's files in DIR/NAME/; empty: not kept
  Fsync fsync = Fsync::everysec;
  // The file is rewritten once it passes twice the live records' size and this many MiB.
  int compact_min_mb = 64;
  bool enabled() const { return !dir.empty(); }
};

// Mutual TLS between neighbors (and the certificate of the client TLS port). In `cert` and
// `key`, "{name}" stands for the server's name.
struct TlsConfig {
  std::filesystem::path ca, cert, key;
  bool enabled() const { return !ca.empty(); }
  std::filesystem::path cert_of(std::string_view server) const;
  std::filesystem::path key_of(std::string_view server) const;
};

struct Config {
  std::filesystem::path file;
  TlsConfig tls;
  PlacesConfig places;
  ClientsConfig clients;
  StoreConfig store;
  std::filesystem::path log_dir = "logs";  // resolved against the config file's directory
  LogLevel log_level = LogLevel::info;
  std::vector<ServerConfig> servers;       // in the order the file defines them

  // Throws ConfigError naming the servers the file does define.
  const ServerConfig& server(std::string_view name) const;
};

// Parses and validates; relative paths are resolved against `file`'s directory.
Config parse_config(std::string_view text, const std::filesystem::path& file);
Config load_config(const std::filesystem::path& file);

// "host:port", with an IPv6 literal in brackets: "[::1]:12000".
std::string address_text(std::string_view host, std::uint16_t port);

}  // namespace herd
