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
       "/etc/herd/herd.toml:3:1: servers.A.prot: unknown key (expected one of: host, port, "
       "talks_with)"},
      {"[place]\n[servers.A]\nport = 1\n",
       "/etc/herd/herd.toml:1:2: place: unknown key (expected one of: places, clients, log, "
       "servers)"},
      {"[servers.A]\nport = 1\ntalks_with = [\"B\"]\n",
       "/etc/herd/herd.toml:3:15: servers.A.talks_with: unknown server \"B\""},
      {"[servers.A]\nport = 1\ntalks_with = [\"A\"]\n",
       "/etc/herd/herd.toml:3:15: servers.A.talks_with: a server cannot talk with itself"},
      {"[servers.A]\nport = 12000\n[servers.B]\nport = 12000\n",
       "/etc/herd/herd.toml:4:8: servers.B.port: port 12000 on 127.0.0.1 is already used by "
       "servers.A (line 2)"},
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
