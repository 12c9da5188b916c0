// TLS for the herd: mutual TLS between neighbors, and the client TLS port. OpenSSL through
// asio::ssl; every certificate chains to the herd's CA, and names the server it belongs to.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <asio/ssl.hpp>

#include "config.hpp"
#include "net.hpp"

namespace herd {

using TlsStream = asio::ssl::stream<tcp::socket>;

// Neighbors: TLS 1.3, this server's certificate, and a certificate chaining to the CA required
// of the other side. Throws std::runtime_error naming the file it cannot use.
std::shared_ptr<asio::ssl::context> peer_tls_context(const TlsConfig& tls,
                                                     std::string_view server);
// The client TLS port: this server's certificate; clients show none.
std::shared_ptr<asio::ssl::context> client_port_tls_context(const TlsConfig& tls,
                                                            std::string_view server);

// Whether the certificate names `server`: a subjectAltName DNS entry equal to it, or, when the
// certificate has no DNS entry, its subject's CN. Exactly: no wildcards, case counts.
bool certificate_names(X509* certificate, std::string_view server);

// What the peer's certificate failed on, filled in during the handshake: "certificate has
// expired", "unable to get local issuer certificate"... Empty when it passed (or none came).
class VerifyReport {
 public:
  void watch(TlsStream& stream);
  const std::string& failure() const { return *failure_; }

 private:
  std::shared_ptr<std::string> failure_ = std::make_shared<std::string>();
};

// A one-line reason for a failed handshake, from the verify report or the TLS error.
std::string handshake_failure(const VerifyReport& report, const asio::error_code& error);

}  // namespace herd
