#include "certs.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

namespace herd::certs {

const char* const usage = R"(usage: herdctl [--config PATH] certs [--dir DIR] [--days N] [--force]

Makes what [tls] needs for the herd of the config file: a certificate authority
(DIR/ca.pem, DIR/ca.key) and, for each server, a certificate naming it
(subjectAltName: its name and its host) with its key (DIR/NAME.pem, DIR/NAME.key).
Keys are EC P-256, written with mode 0600; certificates are valid for N days.
Prints the [tls] table to add to the config file.

Keep ca.key away from the servers: it only signs certificates. Each machine
needs ca.pem and its own servers' NAME.pem and NAME.key.

options:
  --dir DIR    where to write (default: certs, next to the config file)
  --days N     validity in days (default: 825)
  --force      replace files that exist (a new CA: every server needs its new files)
)";

namespace {

template <auto free_fn>
struct Freer {
  template <typename T>
  void operator()(T* p) const {
    free_fn(p);
  }
};
using Key = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Freer<X509_free>>;
using Extension = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO_free_all>>;

[[noreturn]] void openssl_failed(std::string_view what) {
  throw std::runtime_error(fmt::format("certs: {} failed (OpenSSL)", what));
}

Key new_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) openssl_failed("making a key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  Extension extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
  if (!extension || X509_add_ext(cert, extension.get(), -1) != 1)
    openssl_failed(fmt::format("adding {}", value));
}

// A certificate for `key`, named `common_name`, valid for `days` from an hour ago (clocks of
// the herd's machines may differ a little); issued by `issuer` (itself when null), signed
// afterwards by sign().
Cert new_certificate(EVP_PKEY* key, const std::string& common_name, int days, X509* issuer) {
  Cert cert(X509_new());
  if (!cert) openssl_failed("making a certificate");
  X509_set_version(cert.get(), 2);
  std::unique_ptr<BIGNUM, Freer<BN_free>> serial(BN_new());
  BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  auto name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("herd"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  auto signer = issuer ? issuer : cert.get();
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer) {
    add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) == 0) openssl_failed("signing a certificate");
}

// "DNS:name" or "IP:address" for a host as herd.toml writes it.
std::string alt_name(const std::string& host) {
  unsigned char buffer[16];
  bool address = inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
                 inet_pton(AF_INET6, host.c_str(), buffer) == 1;
  return (address ? "IP:" : "DNS:") + host;
}

// Creates `path` (mode `mode`; replacing it only with `force`) holding what `write` puts in.
template <typename Write>
void write_file(const std::filesystem::path& path, mode_t mode, bool force, Write write) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0)
    throw std::runtime_error(fmt::format("certs: cannot write {}: {}", path.string(),
                                         std::strerror(errno)));
  ::fchmod(fd, mode);  // an existing file keeps its mode otherwise
  Bio bio(BIO_new_fd(fd, BIO_CLOSE));
  if (!bio || write(bio.get()) != 1 || BIO_flush(bio.get()) != 1)
    throw std::runtime_error(fmt::format("certs: cannot write {}", path.string()));
}

void write_key(const std::filesystem::path& path, EVP_PKEY* key, bool force) {
  write_file(path, 0600, force, [key](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

void write_certificate(const std::filesystem::path& path, X509* cert, bool force) {
  write_file(path, 0644, force, [cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

int number(const std::string& text, std::string_view option) {
  char* end = nullptr;
  long n = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || n < 1 || n > 36500)
    throw std::invalid_argument(fmt::format("{} takes a number of days from 1 to 36500", option));
  return static_cast<int>(n);
}

}  // namespace

Options parse(const std::vector<std::string>& args) {
  Options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&](std::string_view option) {
      if (i + 1 >= args.size()) throw std::invalid_argument(fmt::format("{} needs a value", option));
      return args[++i];
    };
    if (args[i] == "--dir")
      options.dir = value("--dir");
    else if (args[i] == "--days")
      options.days = number(value("--days"), "--days");
    else if (args[i] == "--force")
      options.force = true;
    else
      throw std::invalid_argument(fmt::format("unknown argument {}", args[i]));
  }
  return options;
}

void make(const Config& config, const Options& options) {
  auto dir = options.dir.empty() ? config.file.parent_path() / "certs" : options.dir;
  std::vector<std::filesystem::path> files{dir / "ca.pem", dir / "ca.key"};
  for (const auto& server : config.servers) {
    files.push_back(dir / (server.name + ".pem"));
    files.push_back(dir / (server.name + ".key"));
  }
  if (!options.force)
    for (const auto& file : files)
      if (std::filesystem::exists(file))
        throw std::runtime_error(fmt::format(
            "certs: {} exists; refusing to overwrite it (--force replaces the CA and every "
            "server's certificate and key)",
            file.string()));
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    throw std::runtime_error(
        fmt::format("certs: cannot create {}: {}", dir.string(), error.message()));

  auto ca_key = new_key();
  auto ca = new_certificate(ca_key.get(), "herd CA", options.days, nullptr);
  sign(ca.get(), ca_key.get());
  write_key(dir / "ca.key", ca_key.get(), options.force);
  write_certificate(dir / "ca.pem", ca.get(), options.force);
  fmt::print("{}: the herd's certificate authority (keep ca.key off the servers)\n",
             (dir / "ca.pem").string());
  for (const auto& server : config.servers) {
    auto key = new_key();
    auto cert = new_certificate(key.get(), server.name, options.days, ca.get());
    auto names = "DNS:" + server.name;
    if (server.host != server.name) names += "," + alt_name(server.host);
    add_extension(cert.get(), ca.get(), NID_subject_alt_name, names);
    sign(cert.get(), ca_key.get());
    write_key(dir / (server.name + ".key"), key.get(), options.force);
    write_certificate(dir / (server.name + ".pem"), cert.get(), options.force);
    fmt::print("{}: {} ({}), valid {} days\n", (dir / (server.name + ".pem")).string(),
               server.name, names, options.days);
  }
  // As [tls] paths are read: relative to the config file's directory.
  auto shown = std::filesystem::absolute(dir).lexically_proximate(
      std::filesystem::absolute(config.file).parent_path());
  fmt::print("\nadd to {}:\n\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
             config.file.string(), (shown / "ca.pem").string(),
             (shown / "{name}.pem").string(), (shown / "{name}.key").string());
}

}  // namespace herd::certs
