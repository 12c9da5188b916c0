#include "config.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace herd {
namespace {

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

// Reads one file's tables and reports every error at the position of the offending node.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::source_region& where, std::string_view key,
                         std::string_view what) const {
    throw ConfigError(
        fmt::format("{}:{}:{}: {}: {}", file_, where.begin.line, where.begin.column, key, what));
  }

  const toml::table& table(const toml::node& node, std::string_view key) const {
    if (auto t = node.as_table()) return *t;
    fail(node.source(), key, fmt::format("expected a table, got {}", type_name(node.type())));
  }

  void only_keys(const toml::table& table, std::string_view prefix,
                 std::initializer_list<std::string_view> known) const {
    for (auto&& [key, node] : table) {
      if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
      std::string names;
      for (auto k : known) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
      fail(key.source(), join(prefix, key.str()),
           fmt::format("unknown key (expected one of: {})", names));
    }
  }

  std::string string(const toml::node& node, std::string_view key) const {
    if (auto s = node.as_string()) return s->get();
    fail(node.source(), key, fmt::format("expected a string, got {}", type_name(node.type())));
  }

  std::int64_t integer(const toml::node& node, std::string_view key, std::int64_t min,
                       std::int64_t max) const {
    auto i = node.as_integer();
    if (!i)
      fail(node.source(), key, fmt::format("expected an integer, got {}", type_name(node.type())));
    if (i->get() < min || i->get() > max)
      fail(node.source(), key, fmt::format("{} is out of range {}..{}", i->get(), min, max));
    return i->get();
  }

  std::vector<std::pair<std::string, toml::source_region>> strings(const toml::node& node,
                                                                   std::string_view key) const {
    auto array = node.as_array();
    if (!array)
      fail(node.source(), key,
           fmt::format("expected an array of strings, got {}", type_name(node.type())));
    std::vector<std::pair<std::string, toml::source_region>> values;
    for (auto&& element : *array) values.emplace_back(string(element, key), element.source());
    return values;
  }

  static std::string join(std::string_view prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
  }

 private:
  std::string file_;
};

bool valid_server_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& path) {
  std::filesystem::path p(path);
  return p.is_absolute() || p.empty() ? p : base / p;
}

void read_places(const Reader& r, const toml::table& t, const std::filesystem::path& base,
                 PlacesConfig& places) {
  r.only_keys(t, "places",
              {"provider", "data", "endpoint", "api_key_env", "timeout_ms", "max_concurrent"});
  if (auto n = t.get("provider")) {
    places.provider = r.string(*n, "places.provider");
    if (places.provider != "geonames" && places.provider != "google" &&
        places.provider != "google-legacy")
      r.fail(n->source(), "places.provider",
             fmt::format(
                 "unknown provider \"{}\" (expected \"geonames\", \"google\" or \"google-legacy\")",
                 places.provider));
  }
  if (auto n = t.get("data")) places.data = resolve(base, r.string(*n, "places.data"));
  if (auto n = t.get("endpoint")) places.endpoint = r.string(*n, "places.endpoint");
  if (auto n = t.get("api_key_env")) {
    places.api_key_env = r.string(*n, "places.api_key_env");
    if (places.api_key_env.empty()) r.fail(n->source(), "places.api_key_env", "must not be empty");
  }
  if (auto n = t.get("timeout_ms"))
    places.timeout_ms = static_cast<int>(r.integer(*n, "places.timeout_ms", 1, 600'000));
  if (auto n = t.get("max_concurrent"))
    places.max_concurrent = static_cast<int>(r.integer(*n, "places.max_concurrent", 1, 1024));
}

LogLevel read_log_level(const Reader& r, const toml::node& node) {
  auto value = r.string(node, "log.level");
  if (value == "debug") return LogLevel::debug;
  if (value == "info") return LogLevel::info;
  if (value == "warn") return LogLevel::warn;
  r.fail(node.source(), "log.level",
         fmt::format("unknown level \"{}\" (expected \"debug\", \"info\" or \"warn\")", value));
}

void read_store(const Reader& r, const toml::table& t, const std::filesystem::path& base,
                StoreConfig& store) {
  r.only_keys(t, "store", {"dir", "fsync", "compact_min_mb"});
  if (auto n = t.get("dir")) {
    auto value = r.string(*n, "store.dir");
    store.dir = value.empty() ? std::filesystem::path() : resolve(base, value);
  }
  if (auto n = t.get("fsync")) {
    auto value = r.string(*n, "store.fsync");
    if (value == "always")
      store.fsync = StoreConfig::Fsync::always;
    else if (value == "everysec")
      store.fsync = StoreConfig::Fsync::everysec;
    else if (value == "no")
      store.fsync = StoreConfig::Fsync::no;
    else
      r.fail(n->source(), "store.fsync",
             fmt::format("unknown mode \"{}\" (expected \"always\", \"everysec\" or \"no\")",
                         value));
  }
  if (auto n = t.get("compact_min_mb"))
    store.compact_min_mb = static_cast<int>(r.integer(*n, "store.compact_min_mb", 0, 1'048'576));
}

struct ServerEntry {
  ServerConfig config;
  toml::source_region where;
  std::vector<std::pair<std::string, toml::source_region>> talks_with;
  // Each port it binds: which key set it, and where.
  struct Port {
    std::uint16_t number;
    std::string key;
    toml::source_region where;
  };
  std::vector<Port> ports;
};

ServerEntry read_server(const Reader& r, const toml::key& name, const toml::node& node, bool tls) {
  std::string prefix = "servers." + std::string(name.str());
  if (!valid_server_name(name.str()))
    r.fail(name.source(), prefix, "a server name may use only letters, digits, '-', '_' and '.'");
  const auto& t = r.table(node, prefix);
  r.only_keys(t, prefix,
              {"host", "listen", "port", "peer_port", "tls_port", "metrics_port", "talks_with"});
  ServerEntry entry;
  auto& config = entry.config;
  config.name = name.str();
  entry.where = name.source();
  auto address = [&](std::string_view key, std::string& into) {
    if (auto n = t.get(key)) {
      into = r.string(*n, prefix + "." + std::string(key));
      if (into.empty()) r.fail(n->source(), prefix + "." + std::string(key), "must not be empty");
    }
  };
  address("host", config.host);
  config.listen = config.host;
  address("listen", config.listen);
  auto port = t.get("port");
  if (!port) r.fail(name.source(), prefix + ".port", "missing (every server needs a port)");
  config.port = static_cast<std::uint16_t>(r.integer(*port, prefix + ".port", 1, 65535));
  entry.ports.push_back({config.port, prefix + ".port", port->source()});
  if (auto n = t.get("peer_port")) {
    config.peer_port = static_cast<std::uint16_t>(r.integer(*n, prefix + ".peer_port", 1, 65535));
    entry.ports.push_back({config.peer_port, prefix + ".peer_port", n->source()});
  } else if (config.port + 10000 > 65535) {
    r.fail(port->source(), prefix + ".peer_port",
           fmt::format("the default peer port, port + 10000 = {}, is past 65535: set peer_port",
                       config.port + 10000));
  } else {
    config.peer_port = static_cast<std::uint16_t>(config.port + 10000);
    entry.ports.push_back({config.peer_port, prefix + ".peer_port (port + 10000)", port->source()});
  }
  if (auto n = t.get("tls_port")) {
    config.tls_port = static_cast<std::uint16_t>(r.integer(*n, prefix + ".tls_port", 1, 65535));
    if (!tls)
      r.fail(n->source(), prefix + ".tls_port",
             "needs a [tls] table (its cert and key are the server's certificate)");
    entry.ports.push_back({config.tls_port, prefix + ".tls_port", n->source()});
  }
  if (auto n = t.get("metrics_port")) {
    config.metrics_port =
        static_cast<std::uint16_t>(r.integer(*n, prefix + ".metrics_port", 1, 65535));
    entry.ports.push_back({config.metrics_port, prefix + ".metrics_port", n->source()});
  }
  if (auto n = t.get("talks_with")) entry.talks_with = r.strings(*n, prefix + ".talks_with");
  return entry;
}

std::vector<ServerConfig> read_servers(const Reader& r, const toml::node& node, bool tls) {
  const auto& t = r.table(node, "servers");
  std::vector<ServerEntry> entries;
  for (auto&& [name, server] : t) entries.push_back(read_server(r, name, server, tls));
  if (entries.empty()) r.fail(node.source(), "servers", "no servers defined");
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.where.begin.line < b.where.begin.line; });

  std::map<std::pair<std::string, std::uint16_t>, const ServerEntry::Port*> ports;
  std::map<std::string, std::set<std::string>> links;
  for (const auto& e : entries) {
    for (const auto& port : e.ports) {
      auto [used, fresh] = ports.emplace(std::pair(e.config.listen, port.number), &port);
      if (!fresh)
        r.fail(port.where, port.key,
               fmt::format("port {} on {} is already used by {} (line {})", port.number,
                           e.config.listen, used->second->key, used->second->where.begin.line));
    }
    links[e.config.name];
    for (const auto& [peer, where] : e.talks_with) {
      std::string key = "servers." + e.config.name + ".talks_with";
      bool known = std::any_of(entries.begin(), entries.end(),
                               [&](const auto& other) { return other.config.name == peer; });
      if (!known) r.fail(where, key, fmt::format("unknown server \"{}\"", peer));
      if (peer == e.config.name) r.fail(where, key, "a server cannot talk with itself");
      links[e.config.name].insert(peer);
      links[peer].insert(e.config.name);
    }
  }

  std::vector<ServerConfig> servers;
  for (auto& e : entries) {
    for (const auto& [peer, where] : e.talks_with) e.config.talks_with.push_back(peer);
    const auto& linked = links[e.config.name];
    e.config.neighbors.assign(linked.begin(), linked.end());
    servers.push_back(std::move(e.config));
  }
  return servers;
}

void read_tls(const Reader& r, const toml::table& t, const toml::node& table,
              const std::filesystem::path& base, TlsConfig& tls) {
  r.only_keys(t, "tls", {"ca", "cert", "key"});
  auto path = [&](std::string_view key) {
    auto n = t.get(key);
    if (!n)
      r.fail(table.source(), "tls." + std::string(key),
             "missing ([tls] needs ca, cert and key; `herdctl certs` makes them)");
    auto value = r.string(*n, "tls." + std::string(key));
    if (value.empty()) r.fail(n->source(), "tls." + std::string(key), "must not be empty");
    return resolve(base, value);
  };
  tls.ca = path("ca");
  tls.cert = path("cert");
  tls.key = path("key");
}

std::filesystem::path with_name(const std::filesystem::path& pattern, std::string_view server) {
  auto text = pattern.string();
  for (auto at = text.find("{name}"); at != std::string::npos; at = text.find("{name}", at))
    text.replace(at, 6, server), at += server.size();
  return text;
}

}  // namespace

std::filesystem::path TlsConfig::cert_of(std::string_view server) const {
  return with_name(cert, server);
}

std::filesystem::path TlsConfig::key_of(std::string_view server) const {
  return with_name(key, server);
}

std::string address_text(std::string_view host, std::uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

const ServerConfig& Config::server(std::string_view name) const {
  for (const auto& s : servers)
    if (s.name == name) return s;
  std::string names;
  for (const auto& s : servers) names += fmt::format("{}{}", names.empty() ? "" : ", ", s.name);
  throw ConfigError(fmt::format("{}: servers.{}: no such server (the file defines: {})",
                                file.string(), name, names));
}

Config parse_config(std::string_view text, const std::filesystem::path& file) {
  Reader r(file.string());
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    r.fail(e.source(), "syntax", e.description());
  }
  r.only_keys(root, "", {"places", "clients", "store", "log", "tls", "servers"});

  Config config;
  config.file = file;
  auto base = file.parent_path();
  config.log_dir = base / config.log_dir;
  config.store.dir = base / config.store.dir;
  if (auto n = root.get("places")) read_places(r, r.table(*n, "places"), base, config.places);
  if (auto n = root.get("clients")) {
    const auto& t = r.table(*n, "clients");
    r.only_keys(t, "clients", {"send_timeout_ms", "max_clock_skew_ms", "idle_timeout_ms",
                               "max_output_bytes", "max_total_output_bytes"});
    if (auto timeout = t.get("send_timeout_ms"))
      config.clients.send_timeout_ms =
          static_cast<int>(r.integer(*timeout, "clients.send_timeout_ms", 1, 3'600'000));
    if (auto skew = t.get("max_clock_skew_ms"))  // at most about ten years
      config.clients.max_clock_skew_ms =
          r.integer(*skew, "clients.max_clock_skew_ms", 0, 315'360'000'000);
    if (auto idle = t.get("idle_timeout_ms"))
      config.clients.idle_timeout_ms =
          static_cast<int>(r.integer(*idle, "clients.idle_timeout_ms", 1, 86'400'000));
    constexpr std::int64_t gib = 1024 * 1024 * 1024;
    if (auto cap = t.get("max_output_bytes"))
      config.clients.max_output_bytes = r.integer(*cap, "clients.max_output_bytes", 4096, gib);
    if (auto cap = t.get("max_total_output_bytes"))
      config.clients.max_total_output_bytes =
          r.integer(*cap, "clients.max_total_output_bytes", 65536, 1024 * gib);
  }
  if (auto n = root.get("store")) read_store(r, r.table(*n, "store"), base, config.store);
  if (auto n = root.get("log")) {
    const auto& t = r.table(*n, "log");
    r.only_keys(t, "log", {"dir", "level"});
    if (auto dir = t.get("dir")) {
      auto value = r.string(*dir, "log.dir");
      if (value.empty()) r.fail(dir->source(), "log.dir", "must not be empty");
      config.log_dir = resolve(base, value);
    }
    if (auto level = t.get("level")) config.log_level = read_log_level(r, *level);
  }
  if (auto n = root.get("tls")) read_tls(r, r.table(*n, "tls"), *n, base, config.tls);
  auto servers = root.get("servers");
  if (!servers)
    throw ConfigError(fmt::format("{}: servers: no [servers.NAME] tables", file.string()));
  config.servers = read_servers(r, *servers, config.tls.enabled());
  return config;
}

Config load_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the file", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file);
}

}  // namespace herd
