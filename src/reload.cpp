#include "reload.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace herd {
namespace {

// Collects "key old -> new" for each setting that differs.
class Differences {
 public:
  template <typename T>
  void compare(std::string_view key, const T& running, const T& file) {
    if (running == file) return;
    text_ +=
        fmt::format("{}{} {} -> {}", text_.empty() ? "" : ", ", key, shown(running), shown(file));
  }
  void note(std::string_view what) {
    text_ += fmt::format("{}{}", text_.empty() ? "" : ", ", what);
  }
  std::string text() && { return std::move(text_); }

 private:
  template <typename T>
  static std::string shown(const T& value) {
    if constexpr (std::is_same_v<T, std::filesystem::path>)
      return value.empty() ? "(none)" : fmt::format("\"{}\"", value.string());
    else if constexpr (std::is_same_v<T, std::string>)
      return fmt::format("\"{}\"", value);
    else
      return fmt::format("{}", value);
  }
  std::string text_;
};

void compare_own(Differences& d, const ServerConfig& running, const ServerConfig& file) {
  auto key = [&](std::string_view name) { return fmt::format("servers.{}.{}", file.name, name); };
  d.compare(key("host"), running.host, file.host);
  d.compare(key("listen"), running.listen, file.listen);
  d.compare(key("port"), running.port, file.port);
  d.compare(key("peer_port"), running.peer_port, file.peer_port);
  d.compare(key("tls_port"), running.tls_port, file.tls_port);
  d.compare(key("metrics_port"), running.metrics_port, file.metrics_port);
}

void compare_shared(Differences& d, const Config& running, const Config& file) {
  d.compare("places.provider", running.places.provider, file.places.provider);
  d.compare("places.data", running.places.data, file.places.data);
  d.compare("places.endpoint", running.places.endpoint, file.places.endpoint);
  d.compare("places.api_key_env", running.places.api_key_env, file.places.api_key_env);
  d.compare("places.timeout_ms", running.places.timeout_ms, file.places.timeout_ms);
  d.compare("places.max_concurrent", running.places.max_concurrent, file.places.max_concurrent);
  const auto &rc = running.clients, &fc = file.clients;
  d.compare("clients.send_timeout_ms", rc.send_timeout_ms, fc.send_timeout_ms);
  d.compare("clients.max_clock_skew_ms", rc.max_clock_skew_ms, fc.max_clock_skew_ms);
  d.compare("clients.idle_timeout_ms", rc.idle_timeout_ms, fc.idle_timeout_ms);
  d.compare("clients.max_output_bytes", rc.max_output_bytes, fc.max_output_bytes);
  d.compare("clients.max_total_output_bytes", rc.max_total_output_bytes, fc.max_total_output_bytes);
  d.compare("log.dir", running.log_dir, file.log_dir);
  auto fsync = [](StoreConfig::Fsync mode) -> std::string {
    using enum StoreConfig::Fsync;
    return mode == always ? "always" : mode == everysec ? "everysec" : "no";
  };
  d.compare("store.dir", running.store.dir, file.store.dir);
  d.compare("store.fsync", fsync(running.store.fsync), fsync(file.store.fsync));
  d.compare("store.compact_min_mb", running.store.compact_min_mb, file.store.compact_min_mb);
  d.compare("tls.ca", running.tls.ca, file.tls.ca);
  d.compare("tls.cert", running.tls.cert, file.tls.cert);
  d.compare("tls.key", running.tls.key, file.tls.key);
}

const ServerConfig* find(const Config& config, std::string_view name) {
  auto s = std::find_if(config.servers.begin(), config.servers.end(),
                        [&](const auto& server) { return server.name == name; });
  return s == config.servers.end() ? nullptr : &*s;
}

}  // namespace

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    default:
      return "warn";
  }
}

ReloadPlan plan_reload(const Config& running, const Config& file, std::string_view self) {
  ReloadPlan plan;
  const auto& was = running.server(self);
  auto now = find(file, self);
  if (!now) {
    plan.needs_restart = fmt::format("the file no longer defines servers.{}", self);
    return plan;
  }
  Differences d;
  compare_own(d, was, *now);
  compare_shared(d, running, file);
  plan.needs_restart = std::move(d).text();
  if (plan.refused()) return plan;

  if (running.log_level != file.log_level) plan.log_level = file.log_level;
  for (const auto& name : was.neighbors) {
    auto after = std::find(now->neighbors.begin(), now->neighbors.end(), name);
    if (after == now->neighbors.end()) {
      plan.removed.push_back(name);
      continue;
    }
    const auto &before = running.server(name), &moved = file.server(name);
    if (before.host == moved.host && before.peer_port == moved.peer_port) continue;
    plan.moved.push_back(name);
    plan.removed.push_back(name);
    plan.added.push_back(moved);
  }
  for (const auto& name : now->neighbors)
    if (std::find(was.neighbors.begin(), was.neighbors.end(), name) == was.neighbors.end())
      plan.added.push_back(file.server(name));
  std::sort(plan.added.begin(), plan.added.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return plan;
}

std::optional<ReloadOutcome> find_reload_outcome(std::string_view log_lines) {
  constexpr std::string_view reloaded = " server - config reloaded: ";
  constexpr std::string_view refused = " server - config reload refused: ";
  constexpr std::string_view kept = "; keeping the running config";
  while (!log_lines.empty()) {
    auto end = log_lines.find('\n');
    if (end == std::string_view::npos) break;  // a line not yet written whole
    auto line = log_lines.substr(0, end);
    log_lines.remove_prefix(end + 1);
    // After the timestamp ("2026-11-22T03:04:05.123456Z"), so that no client line matches.
    auto entry = line.substr(std::min<std::size_t>(line.size(), 27));
    if (entry.starts_with(reloaded))
      return ReloadOutcome{true, std::string(entry.substr(reloaded.size()))};
    if (entry.starts_with(refused)) {
      auto why = entry.substr(refused.size());
      if (why.ends_with(kept)) why.remove_suffix(kept.size());
      return ReloadOutcome{false, std::string(why)};
    }
  }
  return std::nullopt;
}

std::string ReloadPlan::summary() const {
  std::vector<std::string> parts;
  std::string neighbors;
  auto list = [&](char sign, std::string_view name) {
    if (std::find(moved.begin(), moved.end(), name) != moved.end()) return;
    neighbors += fmt::format("{}{}{}", neighbors.empty() ? "neighbors: " : ", ", sign, name);
  };
  for (const auto& server : added) list('+', server.name);
  for (const auto& name : removed) list('-', name);
  if (!neighbors.empty()) parts.push_back(std::move(neighbors));
  for (const auto& name : moved) {
    auto to =
        std::find_if(added.begin(), added.end(), [&](const auto& s) { return s.name == name; });
    parts.push_back(fmt::format("{} moved to {}", name, address_text(to->host, to->peer_port)));
  }
  if (log_level) parts.push_back(fmt::format("log level {}", level_name(*log_level)));
  if (parts.empty()) return "nothing changed";
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : "; ") + part;
  return text;
}

}  // namespace herd
