#include "tls.hpp"

#include <openssl/x509v3.h>

#include <stdexcept>

#include <fmt/format.h>

namespace herd {
namespace {

std::shared_ptr<asio::ssl::context> tls13_context() {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_3_VERSION);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  return context;
}

// Runs one of asio::ssl::context's loaders, turning a failure into an error naming the file.
template <typename Load>
void load(const std::filesystem::path& file, std::string_view what, Load load) {
  asio::error_code error;
  load(file.string(), error);
  if (error)
    throw std::runtime_error(
        fmt::format("[tls] {}: cannot use {} as {}: {}", what, file.string(), what,
                    error.message()));
}

void load_own_certificate(asio::ssl::context& context, const TlsConfig& tls,
                          std::string_view server) {
  load(tls.cert_of(server), "cert", [&](const std::string& f, asio::error_code& e) {
    context.use_certificate_chain_file(f, e);
  });
  load(tls.key_of(server), "key", [&](const std::string& f, asio::error_code& e) {
    context.use_private_key_file(f, asio::ssl::context::pem, e);
  });
  if (SSL_CTX_check_private_key(context.native_handle()) != 1)
    throw std::runtime_error(fmt::format("[tls] key: {} is not the key of {}",
                                         tls.key_of(server).string(),
                                         tls.cert_of(server).string()));
}

}  // namespace

std::shared_ptr<asio::ssl::context> peer_tls_context(const TlsConfig& tls,
                                                     std::string_view server) {
  auto context = tls13_context();
  load_own_certificate(*context, tls, server);
  load(tls.ca, "ca", [&](const std::string& f, asio::error_code& e) {
    context->load_verify_file(f, e);
  });
  context->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  return context;
}

std::shared_ptr<asio::ssl::context> client_port_tls_context(const TlsConfig& tls,
                                                            std::string_view server) {
  auto context = tls13_context();
  load_own_certificate(*context, tls, server);
  context->set_verify_mode(asio::ssl::verify_none);
  return context;
}

// Server names are compared exactly, bytes for bytes: herd.toml's names are case-sensitive,
// and a wildcard names no server.
bool certificate_names(X509* certificate, std::string_view server) {
  if (!certificate || server.empty()) return false;
  auto equals = [server](const ASN1_STRING* text) {
    return text && std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                     static_cast<std::size_t>(ASN1_STRING_length(text))) == server;
  };
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  bool has_dns = false, named = false;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    has_dns = true;
    named = named || equals(name->d.dNSName);
  }
  GENERAL_NAMES_free(names);
  if (has_dns) return named;
  auto* subject = X509_get_subject_name(certificate);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;)
    if (equals(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)))) return true;
  return false;
}

void VerifyReport::watch(TlsStream& stream) {
  stream.set_verify_callback(
      [failure = failure_](bool preverified, asio::ssl::verify_context& context) {
        if (!preverified && failure->empty())
          *failure = X509_verify_cert_error_string(
              X509_STORE_CTX_get_error(context.native_handle()));
        return preverified;
      });
}

std::string handshake_failure(const VerifyReport& report, const asio::error_code& error) {
  if (!report.failure().empty()) return "its certificate was refused: " + report.failure();
  return "TLS handshake failed: " + error.message();
}

}  // namespace herd
