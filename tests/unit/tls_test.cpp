// The check that a neighbor's certificate names the neighbor it claims to be.
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "tls.hpp"

using namespace herd;

namespace {

// A self-signed certificate with subject CN `cn` (none when empty) and the subjectAltName
// `alt_names` ("DNS:a,IP:127.0.0.1"; none when empty).
std::unique_ptr<X509, void (*)(X509*)> certificate(const std::string& cn,
                                                   const std::string& alt_names) {
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, void (*)(X509*)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  auto name = X509_get_subject_name(cert.get());
  if (!cn.empty())
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!alt_names.empty()) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    auto extension = X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name,
                                         alt_names.c_str());
    REQUIRE(extension);
    X509_add_ext(cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

}  // namespace

TEST_CASE("a certificate names a server by a subjectAltName DNS entry", "[tls]") {
  auto cert = certificate("Holiday", "DNS:Hands,IP:127.0.0.1,DNS:hands.example");
  CHECK(certificate_names(cert.get(), "Hands"));
  CHECK(certificate_names(cert.get(), "hands.example"));
  CHECK_FALSE(certificate_names(cert.get(), "Holiday"));  // the CN counts only without DNS names
  CHECK_FALSE(certificate_names(cert.get(), "hands"));    // exactly: case counts
  CHECK_FALSE(certificate_names(cert.get(), "Hand"));
  CHECK_FALSE(certificate_names(cert.get(), "Hands2"));
  CHECK_FALSE(certificate_names(cert.get(), "127.0.0.1"));
  CHECK_FALSE(certificate_names(cert.get(), ""));
}

TEST_CASE("without a DNS entry, the subject's CN names the server", "[tls]") {
  CHECK(certificate_names(certificate("Welsh", "").get(), "Welsh"));
  CHECK(certificate_names(certificate("Welsh", "IP:10.0.0.1").get(), "Welsh"));
  CHECK_FALSE(certificate_names(certificate("Welsh", "").get(), "Wilkes"));
  CHECK_FALSE(certificate_names(certificate("", "").get(), "Welsh"));
  CHECK_FALSE(certificate_names(nullptr, "Welsh"));
}

TEST_CASE("a wildcard names no server", "[tls]") {
  CHECK_FALSE(certificate_names(certificate("x", "DNS:*").get(), "Hands"));
  CHECK_FALSE(certificate_names(certificate("*", "").get(), "Hands"));
  CHECK(certificate_names(certificate("x", "DNS:*").get(), "*"));  // only the name "*" itself
}
