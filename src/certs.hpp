// herdctl certs: a certificate authority for one herd, and a certificate and key per server,
// made with OpenSSL's library (no openssl program needed).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config.hpp"

namespace herd::certs {

extern const char* const usage;

struct Options {
  std::filesystem::path dir;  // empty: "certs" next to the config file
  int days = 825;
  bool force = false;
};

// Parses `certs` arguments; throws std::invalid_argument with a message for the user.
Options parse(const std::vector<std::string>& args);

// Writes DIR/ca.pem, DIR/ca.key and DIR/NAME.pem, DIR/NAME.key for every server of `config`
// (keys mode 0600), then prints the [tls] table to add. Throws std::runtime_error when a file
// exists (without --force) or cannot be written.
void make(const Config& config, const Options& options);

}  // namespace herd::certs
