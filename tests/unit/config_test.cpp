#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "config.hpp"

using namespace herd;

namespace {

constexpr std::string_view good = R"(
[places]
provider = "geonames"

[log]
dir = "logs"

[servers.Goloman]
host = "127.0.0.1"
port = 12000
talks_with = ["Hands", "Holiday", "Wilkes"]

[servers.Hands]
port = 12001
talks_with = ["Wilkes"]

[servers.Holiday]
port = 12002
talks_with = ["Welsh", "Wilkes"]

[servers.Welsh]
port = 12003

[servers.Wilkes]
port = 12004
)";

std::string error_of(std::string_view text) {
  try {
    parse_config(text, "/etc/herd/herd.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("the original herd: links are symmetric, servers keep the file's order", "[config]") {
  auto config = parse_config(good, "/etc/herd/herd.toml");
  REQUIRE(config.servers.size() == 5);
  CHECK(config.servers[0].name == "Goloman");
  CHECK(config.servers[4].name == "Wilkes");
  using names = std::vector<std::string>;
  CHECK(config.server("Goloman").neighbors == names{"Hands", "Holiday", "Wilkes"});
  CHECK(config.server("Hands").neighbors == names{"Goloman", "Wilkes"});
  CHECK(config.server("Holiday").neighbors == names{"Goloman", "Welsh", "Wilkes"});
  CHECK(config.server("Welsh").neighbors == names{"Holiday"});
  CHECK(config.server("Wilkes").neighbors == names{"Goloman", "Hands", "Holiday"});
  CHECK(config.server("Welsh").host == "127.0.0.1");
  CHECK(config.server("Welsh").port == 12003);
  CHECK(config.log_dir == "/etc/herd/logs");
  CHECK(config.places.provider == "geonames");
  CHECK(config.places.timeout_ms == 3000);
  CHECK(config.places.api_key_env == "GOOGLE_PLACES_API_KEY");
}

TEST_CASE("defaults: geonames, logs next to the file, localhost", "[config]") {
  auto config = parse_config("[servers.A]\nport = 1\n", "herd.toml");
  CHECK(config.places.provider == "geonames");
  CHECK(config.places.data.empty());
  CHECK(config.log_dir == "logs");
  CHECK(config.clients.send_timeout_ms == 60'000);
  CHECK(config.clients.max_clock_skew_ms == 86'400'000);
  CHECK(config.clients.idle_timeout_ms == 300'000);
  CHECK(config.clients.max_output_bytes == 1024 * 1024);
  CHECK(config.clients.max_total_output_bytes == 256 * 1024 * 1024);
  CHECK(config.servers.at(0).host == "127.0.0.1");
  CHECK(config.servers.at(0).neighbors.empty());
}

TEST_CASE("config errors name the file, line, column and key", "[config]") {
  struct Case {
    std::string_view text, error;
  };
  auto c = GENERATE(values<Case>({
      {"[servers.A]\nport = 1\nprot = 2\n",
       "/etc/herd/herd.toml:3:1: servers.A.prot: unknown key (expected one of: host, listen, "
       "port, peer_port, tls_port, metrics_port, talks_with)"},
      {"[place]\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:1:2: place: unknown key (expected one of: places, clients, "
       "store, log, tls, servers)"},
      {"[servers.A]\nport = 1\ntalks_with = [\"B\"]\n",
       "/etc/herd/herd.toml:3:15: servers.A.talks_with: unknown server \"B\""},
      {"[servers.A]\nport = 1\ntalks_with = [\"A\"]\n",
       "/etc/herd/herd.toml:3:15: servers.A.talks_with: a server cannot talk with itself"},
      {"[servers.A]\nport = 12000\n[servers.B]\nport = 12000\n",
       "/etc/herd/herd.toml:4:8: servers.B.port: port 12000 on 127.0.0.1 is already used by "
       "servers.A.port (line 2)"},
      {"[servers.A]\nport = 12000\n[servers.B]\nport = 12001\npeer_port = 22000\n",
       "/etc/herd/herd.toml:5:13: servers.B.peer_port: port 22000 on 127.0.0.1 is already used "
       "by servers.A.peer_port (port + 10000) (line 2)"},
      {"[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n[servers.A]\nport = 12000\ntls_port = "
       "12000\n",
       "/etc/herd/herd.toml:7:12: servers.A.tls_port: port 12000 on 127.0.0.1 is already used "
       "by servers.A.port (line 6)"},
      {"[servers.A]\nport = 12000\nmetrics_port = 22000\n",
       "/etc/herd/herd.toml:3:16: servers.A.metrics_port: port 22000 on 127.0.0.1 is already "
       "used by servers.A.peer_port (port + 10000) (line 2)"},
      {"[servers.A]\nport = 1\nmetrics_port = 0\n",
       "/etc/herd/herd.toml:3:16: servers.A.metrics_port: 0 is out of range 1..65535"},
      {"[servers.A]\nport = 60000\n",
       "/etc/herd/herd.toml:2:8: servers.A.peer_port: the default peer port, port + 10000 = "
       "70000, is past 65535: set peer_port"},
      {"[servers.A]\nport = 1\nlisten = \"\"\n",
       "/etc/herd/herd.toml:3:10: servers.A.listen: must not be empty"},
      {"[tls]\nca = \"ca.pem\"\ncert = \"{name}.pem\"\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:1:1: tls.key: missing ([tls] needs ca, cert and key; `herdctl certs` "
       "makes them)"},
      {"[servers.A]\nport = 1\ntls_port = 2\n",
       "/etc/herd/herd.toml:3:12: servers.A.tls_port: needs a [tls] table (its cert and key are "
       "the server's certificate)"},
      {"[tls]\nca = 1\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:6: tls.ca: expected a string, got an integer"},
      {"[servers.A]\nport = \"12000\"\n",
       "/etc/herd/herd.toml:2:8: servers.A.port: expected an integer, got a string"},
      {"[servers.A]\nport = 70000\n",
       "/etc/herd/herd.toml:2:8: servers.A.port: 70000 is out of range 1..65535"},
      {"[servers.A]\nhost = \"h\"\n",
       "/etc/herd/herd.toml:1:10: servers.A.port: missing (every server needs a port)"},
      {"[servers.A]\nport = 1\ntalks_with = \"B\"\n",
       "/etc/herd/herd.toml:3:14: servers.A.talks_with: expected an array of strings, got a "
       "string"},
      {"[servers.A]\nport = 1\ntalks_with = [1]\n",
       "/etc/herd/herd.toml:3:15: servers.A.talks_with: expected a string, got an integer"},
      {"[places]\nprovider = \"bing\"\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:12: places.provider: unknown provider \"bing\" (expected "
       "\"geonames\", \"google\" or \"google-legacy\")"},
      {"[places]\ntimeout_ms = 0\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:14: places.timeout_ms: 0 is out of range 1..600000"},
      {"[clients]\nsend_timeout_ms = 0\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:19: clients.send_timeout_ms: 0 is out of range 1..3600000"},
      {"[clients]\nsend_timeout = 5\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:1: clients.send_timeout: unknown key (expected one of: "
       "send_timeout_ms, max_clock_skew_ms, idle_timeout_ms, max_output_bytes, "
       "max_total_output_bytes)"},
      {"[clients]\nmax_output_bytes = 100\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:20: clients.max_output_bytes: 100 is out of range 4096..1073741824"},
      {"[clients]\nmax_output_bytes = 1.5\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:20: clients.max_output_bytes: expected an integer, got a float"},
      {"[clients]\nmax_total_output_bytes = 0\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:26: clients.max_total_output_bytes: 0 is out of range "
       "65536..1099511627776"},
      {"[clients]\nmax_total_output_bytes = \"1G\"\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:26: clients.max_total_output_bytes: expected an integer, got a "
       "string"},
      {"[clients]\nidle_timeout_ms = 0\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:19: clients.idle_timeout_ms: 0 is out of range 1..86400000"},
      {"[clients]\nidle_timeout_ms = \"5m\"\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:19: clients.idle_timeout_ms: expected an integer, got a string"},
      {"[clients]\nmax_clock_skew_ms = -1\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:21: clients.max_clock_skew_ms: -1 is out of range 0..315360000000"},
      {"[log]\ndir = 5\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:2:7: log.dir: expected a string, got an integer"},
      {"servers = 5\n", "/etc/herd/herd.toml:1:11: servers: expected a table, got an integer"},
      {"[servers.\"a b\"]\nport = 1\n",
       "/etc/herd/herd.toml:1:10: servers.a b: a server name may use only letters, digits, '-', "
       "'_' and '.'"},
      {"[servers.A]\nport = = 1\n", "/etc/herd/herd.toml:2:8: syntax: "},
      {"[log]\ndir = \"x\"\n", "/etc/herd/herd.toml: servers: no [servers.NAME] tables"},
  }));
  CAPTURE(c.text);
  CHECK_THAT(error_of(c.text), Catch::StartsWith(std::string(c.error)));
}

TEST_CASE("ports: peer_port is port + 10000 unless set; listen is host unless set", "[config]") {
  auto config = parse_config(
      "[tls]\nca = \"ca.pem\"\ncert = \"c\"\nkey = \"k\"\n"
      "[servers.A]\nport = 12000\n"
      "[servers.B]\nhost = \"b.example\"\nlisten = \"::\"\nport = 60000\npeer_port = 7000\n"
      "tls_port = 7001\nmetrics_port = 9100\n",
      "herd.toml");
  const auto& a = config.server("A");
  CHECK(a.peer_port == 22000);
  CHECK(a.tls_port == 0);
  CHECK(a.metrics_port == 0);  // off unless set
  CHECK(a.listen == "127.0.0.1");
  const auto& b = config.server("B");
  CHECK(b.host == "b.example");
  CHECK(b.listen == "::");
  CHECK(b.peer_port == 7000);
  CHECK(b.tls_port == 7001);
  CHECK(b.metrics_port == 9100);
  CHECK(address_text("::1", 12000) == "[::1]:12000");
  CHECK(address_text("127.0.0.1", 12000) == "127.0.0.1:12000");
}

TEST_CASE("[tls]: paths are relative to the file, {name} becomes the server's name", "[config]") {
  auto config = parse_config(
      "[tls]\nca = \"certs/ca.pem\"\ncert = \"certs/{name}.pem\"\n"
      "key = \"/keys/{name}-{name}.key\"\n[servers.A]\nport = 1\n",
      "/etc/herd/herd.toml");
  CHECK(config.tls.enabled());
  CHECK(config.tls.ca == "/etc/herd/certs/ca.pem");
  CHECK(config.tls.cert_of("Hands") == "/etc/herd/certs/Hands.pem");
  CHECK(config.tls.key_of("Hands") == "/keys/Hands-Hands.key");
}

TEST_CASE("an unknown server name is refused, naming the file and what it defines", "[config]") {
  auto config = parse_config(good, "herd.toml");
  CHECK_THROWS_WITH(config.server("Nobody"),
                    "herd.toml: servers.Nobody: no such server (the file defines: Goloman, Hands, "
                    "Holiday, Welsh, Wilkes)");
}

TEST_CASE("a missing file is a config error naming it", "[config]") {
  CHECK_THROWS_WITH(load_config("/nonexistent/herd.toml"),
                    "/nonexistent/herd.toml: cannot read the file");
}

TEST_CASE("log.level: debug, info (the default) or warn", "[config]") {
  auto level_of = [](std::string_view log) {
    return parse_config(fmt::format("{}\n[servers.A]\nport = 1\n", log), "herd.toml").log_level;
  };
  CHECK(level_of("") == LogLevel::info);
  CHECK(level_of("[log]\nlevel = \"debug\"") == LogLevel::debug);
  CHECK(level_of("[log]\nlevel = \"info\"") == LogLevel::info);
  CHECK(level_of("[log]\nlevel = \"warn\"") == LogLevel::warn);
  CHECK(error_of("[log]\nlevel = \"verbose\"\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:9: log.level: unknown level \"verbose\" (expected \"debug\", "
        "\"info\" or \"warn\")");
  CHECK(error_of("[log]\nlevel = \"WARN\"\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:9: log.level: unknown level \"WARN\" (expected \"debug\", "
        "\"info\" or \"warn\")");
  CHECK(error_of("[log]\nlevel = 2\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:9: log.level: expected a string, got an integer");
  CHECK(error_of("[log]\nlevels = \"info\"\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:1: log.levels: unknown key (expected one of: dir, level)");
}

TEST_CASE("[store]: dir relative to the file, \"\" turns it off; fsync always, everysec or no",
          "[config]") {
  auto store_of = [](std::string_view store) {
    return parse_config(fmt::format("{}\n[servers.A]\nport = 1\n", store), "/etc/herd/herd.toml")
        .store;
  };
  auto defaults = store_of("");
  CHECK(defaults.dir == "/etc/herd/state");
  CHECK(defaults.enabled());
  CHECK(defaults.fsync == StoreConfig::Fsync::everysec);
  CHECK(defaults.compact_min_mb == 64);
  CHECK(store_of("[store]\ndir = \"/var/lib/herd\"").dir == "/var/lib/herd");
  CHECK(store_of("[store]\ndir = \"s\"").dir == "/etc/herd/s");
  CHECK_FALSE(store_of("[store]\ndir = \"\"").enabled());
  CHECK(store_of("[store]\nfsync = \"always\"").fsync == StoreConfig::Fsync::always);
  CHECK(store_of("[store]\nfsync = \"no\"").fsync == StoreConfig::Fsync::no);
  CHECK(store_of("[store]\ncompact_min_mb = 0").compact_min_mb == 0);

  CHECK(error_of("[store]\nfsync = \"sometimes\"\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:9: store.fsync: unknown mode \"sometimes\" (expected \"always\", "
        "\"everysec\" or \"no\")");
  CHECK(error_of("[store]\nfsync = true\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:9: store.fsync: expected a string, got a boolean");
  CHECK(error_of("[store]\ndir = 1\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:7: store.dir: expected a string, got an integer");
  CHECK(error_of("[store]\ncompact_min_mb = -1\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:18: store.compact_min_mb: -1 is out of range 0..1048576");
  CHECK(error_of("[store]\nfsnyc = \"no\"\n[servers.A]\nport = 1\n") ==
        "/etc/herd/herd.toml:2:1: store.fsnyc: unknown key (expected one of: dir, fsync, "
        "compact_min_mb)");
}
