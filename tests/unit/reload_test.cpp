#include <string>

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "reload.hpp"

using namespace herd;

namespace {

// A herd of three in a line, Alpha - Beta - Gamma, and what a test adds or replaces.
std::string herd_toml(std::string_view beta = "talks_with = [\"Alpha\", \"Gamma\"]",
                      std::string_view rest = "", std::string_view head = "") {
  return fmt::format(R"({}
[log]
dir = "logs"

[servers.Alpha]
port = 12000

[servers.Beta]
port = 12001
{}

[servers.Gamma]
port = 12002
{})",
                     head, beta, rest);
}

Config config(const std::string& text) {
  return parse_config(text, "/etc/herd/herd.toml");
}

std::vector<std::string> names(const std::vector<ServerConfig>& servers) {
  std::vector<std::string> out;
  for (const auto& s : servers) out.push_back(s.name);
  return out;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("a reload of the same file changes nothing", "[reload]") {
  auto plan = plan_reload(config(herd_toml()), config(herd_toml()), "Beta");
  CHECK_FALSE(plan.refused());
  CHECK(plan.added.empty());
  CHECK(plan.removed.empty());
  CHECK_FALSE(plan.log_level);
  CHECK(plan.summary() == "nothing changed");
}

TEST_CASE("neighbors added and removed on either side of the link", "[reload]") {
  auto grown = herd_toml("talks_with = [\"Alpha\"]",
                         "talks_with = [\"Delta\"]\n\n[servers.Delta]\nport = 12003\n"
                         "talks_with = [\"Beta\"]\n\n[servers.Eps]\nport = 12004\n");
  auto plan = plan_reload(config(herd_toml()), config(grown), "Beta");
  CHECK_FALSE(plan.refused());
  CHECK(names(plan.added) == Names{"Delta"});
  CHECK(plan.added[0].peer_port == 22003);
  CHECK(plan.removed == Names{"Gamma"});
  CHECK(plan.summary() == "neighbors: +Delta, -Gamma");

  // Gamma's side: Beta went, and Delta, declared by Gamma, came.
  auto gamma = plan_reload(config(herd_toml()), config(grown), "Gamma");
  CHECK(names(gamma.added) == Names{"Delta"});
  CHECK(gamma.removed == Names{"Beta"});
  // Alpha keeps Beta; a server that nobody links with changes nothing.
  CHECK(plan_reload(config(herd_toml()), config(grown), "Alpha").summary() == "nothing changed");
}

TEST_CASE("a neighbor whose address changed is relinked; other servers' ports do not matter",
          "[reload]") {
  auto moved = herd_toml("talks_with = [\"Alpha\", \"Gamma\"]",
                         "host = \"127.0.0.2\"\nmetrics_port = 13002\n");
  auto plan = plan_reload(config(herd_toml()), config(moved), "Beta");
  CHECK_FALSE(plan.refused());
  CHECK(plan.moved == Names{"Gamma"});
  CHECK(plan.removed == Names{"Gamma"});
  CHECK(names(plan.added) == Names{"Gamma"});
  CHECK(plan.added[0].host == "127.0.0.2");
  CHECK(plan.summary() == "Gamma moved to 127.0.0.2:22002");
  // Gamma's metrics port is nothing to Alpha, which does not even talk with Gamma.
  CHECK(plan_reload(config(herd_toml()), config(moved), "Alpha").summary() == "nothing changed");
}

TEST_CASE("the log level changes in place", "[reload]") {
  auto debug = herd_toml();
  debug.replace(debug.find("dir = \"logs\""), 12, "dir = \"logs\"\nlevel = \"debug\"");
  auto plan = plan_reload(config(herd_toml()), config(debug), "Alpha");
  CHECK_FALSE(plan.refused());
  REQUIRE(plan.log_level);
  CHECK(*plan.log_level == LogLevel::debug);
  CHECK(plan.summary() == "log level debug");
}

TEST_CASE("what a running server cannot change is refused, every key of it named", "[reload]") {
  struct Row {
    std::string file;
    std::string self;
    std::string needs_restart;
  };
  auto moved_port = herd_toml();
  moved_port.replace(moved_port.find("port = 12001"), 12, "port = 12005");
  auto own_listen = herd_toml("listen = \"0.0.0.0\"\ntalks_with = [\"Alpha\", \"Gamma\"]");
  auto metrics = herd_toml("metrics_port = 13001\ntalks_with = [\"Gamma\"]");
  auto places = herd_toml("talks_with = []", "",
                          "[places]\ntimeout_ms = 4000\n"
                          "[clients]\nidle_timeout_ms = 1000\n");
  auto store = herd_toml("talks_with = []", "", "[store]\nfsync = \"always\"\ndir = \"/var/lib/herd\"\n");
  auto log_dir = herd_toml();
  log_dir.replace(log_dir.find("\"logs\""), 6, "\"/var/log/herd\"");
  auto gone = herd_toml();
  gone.replace(gone.find("[servers.Gamma]\nport = 12002"), 28, "");
  gone.replace(gone.find("\"Alpha\", \"Gamma\""), 16, "\"Alpha\"");
  auto tls =
      herd_toml("", "", "[tls]\nca = \"ca.pem\"\ncert = \"{name}.pem\"\nkey = \"{name}.key\"\n");
  auto table = GENERATE_COPY(values<Row>({
      {moved_port, "Beta",
       "servers.Beta.port 12001 -> 12005, "
       "servers.Beta.peer_port 22001 -> 22005"},
      {own_listen, "Beta", "servers.Beta.listen \"127.0.0.1\" -> \"0.0.0.0\""},
      {metrics, "Beta", "servers.Beta.metrics_port 0 -> 13001"},
      {places, "Alpha", "places.timeout_ms 3000 -> 4000, clients.idle_timeout_ms 300000 -> 1000"},
      {log_dir, "Gamma", "log.dir \"/etc/herd/logs\" -> \"/var/log/herd\""},
      {store, "Alpha",
       "store.dir \"/etc/herd/state\" -> \"/var/lib/herd\", store.fsync \"everysec\" -> \"always\""},
      {gone, "Gamma", "the file no longer defines servers.Gamma"},
      {tls, "Alpha",
       "tls.ca (none) -> \"/etc/herd/ca.pem\", tls.cert (none) -> "
       "\"/etc/herd/{name}.pem\", tls.key (none) -> \"/etc/herd/{name}.key\""},
  }));
  auto plan = plan_reload(config(herd_toml()), config(table.file), table.self);
  CHECK(plan.needs_restart == table.needs_restart);
  CHECK(plan.added.empty());  // all or nothing: a refused reload applies no part of it
  CHECK(plan.removed.empty());
  CHECK_FALSE(plan.log_level);
}

TEST_CASE("another server's port changes nothing here, a neighbor's peer port relinks",
          "[reload]") {
  auto alpha_port = herd_toml();
  alpha_port.replace(alpha_port.find("port = 12000"), 12, "port = 12010\npeer_port = 22000");
  // Alpha's client port moved but its peer port stayed: Beta's link to it is untouched.
  CHECK(plan_reload(config(herd_toml()), config(alpha_port), "Beta").summary() ==
        "nothing changed");
  auto alpha_peer = herd_toml();
  alpha_peer.replace(alpha_peer.find("port = 12000"), 12, "port = 12000\npeer_port = 23000");
  CHECK(plan_reload(config(herd_toml()), config(alpha_peer), "Beta").summary() ==
        "Alpha moved to 127.0.0.1:23000");
}

TEST_CASE("herdctl reload reads the outcome back from the log's new lines", "[reload]") {
  constexpr std::string_view stamp = "2026-11-30T12:00:00.000000Z ";
  auto line = [&](std::string_view who_and_text) {
    return fmt::format("{}{}\n", stamp, who_and_text);
  };
  CHECK_FALSE(find_reload_outcome(""));
  CHECK_FALSE(find_reload_outcome(line("server - SIGHUP received; reopening the log file")));
  // A client may say anything; only the server's own entry counts, and only once complete.
  CHECK_FALSE(find_reload_outcome(line("client 3 < server - config reloaded: x")));
  CHECK_FALSE(find_reload_outcome(fmt::format("{}server - config reloaded: neighbors", stamp)));

  auto ok = find_reload_outcome(line("server - log file reopened") +
                                line("server - config reloaded: neighbors: +Dee"));
  REQUIRE(ok);
  CHECK(ok->reloaded);
  CHECK(ok->text == "neighbors: +Dee");

  auto refused = find_reload_outcome(
      line("server - config reload refused: needs a restart: servers.A.port 1 -> 2; keeping the "
           "running config") +
      line("server - config reloaded: nothing changed"));
  REQUIRE(refused);
  CHECK_FALSE(refused->reloaded);
  CHECK(refused->text == "needs a restart: servers.A.port 1 -> 2");
}
