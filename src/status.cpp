#include "status.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "send.hpp"  // append_json_string

namespace herd::status {
using send::append_json_string;
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// A connected socket to host:port by `deadline`, or -1 with `error` set.
int connect_by(const std::string& host, std::uint16_t port, Clock::time_point deadline,
               std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    error = gai_strerror(rc);
    return -1;
  }
  int result = -1;
  for (auto* a = found; a && result < 0; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    int soerror = rc == 0 ? 0 : errno;
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      socklen_t length = sizeof soerror;
      soerror = ETIMEDOUT;
      if (poll(&p, 1, remaining_ms(deadline)) == 1)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerror, &length);
    }
    if (soerror == 0) {
      result = fd;
    } else {
      error = soerror == ETIMEDOUT ? "no connection in time" : std::strerror(soerror);
      close(fd);
    }
  }
  freeaddrinfo(found);
  return result;
}

// GET `path`: the whole response (the server closes after it), or nullopt with `error` set.
std::optional<std::string> http_get(const std::string& host, std::uint16_t port,
                                    std::string_view path, std::chrono::milliseconds timeout,
                                    std::string& error) {
  auto deadline = Clock::now() + timeout;
  int fd = connect_by(host, port, deadline, error);
  if (fd < 0) return std::nullopt;
  auto request =
      fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", path, host);
  std::string response;
  bool sent = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size());
  while (sent) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, remaining_ms(deadline)) != 1) {
      error = "no answer in time";
      break;
    }
    char chunk[16384];
    auto n = read(fd, chunk, sizeof chunk);
    if (n == 0) {
      close(fd);
      return response;
    }
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      error = std::strerror(errno);
      break;
    }
    if (n > 0) response.append(chunk, static_cast<std::size_t>(n));
  }
  if (!sent) error = std::strerror(errno);
  close(fd);
  return std::nullopt;
}

std::string duration_text(double seconds) {
  auto s = static_cast<long long>(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

}  // namespace

std::string ServerStatus::state() const {
  if (!metrics) return listening ? "listening" : "down";
  if (!answering) return listening ? "not answering" : "down";
  return links_down.empty() ? "ok" : "links down";
}

void read_metrics(const std::vector<Sample>& samples, ServerStatus& s) {
  auto value = [&](std::string_view name) { return sample_value(samples, name).value_or(0); };
  s.records = value("herd_records_stored");
  s.clients = value("herd_clients_connected");
  s.iamat_total = value("herd_iamat_total");
  s.uptime = value("herd_uptime_seconds");
  for (const auto& sample : samples) {
    if (sample.name != "herd_link_up") continue;
    ++s.links_total;
    if (sample.value == 1)
      ++s.links_up;
    else if (auto n = sample.labels.find("neighbor"); n != sample.labels.end())
      s.links_down.push_back(n->second);
  }
}

ServerStatus query(const ServerConfig& server, std::chrono::milliseconds timeout) {
  ServerStatus s;
  s.name = server.name;
  s.address = address_text(server.host, server.port);
  s.metrics = server.metrics_port != 0;
  std::string error;
  int fd = connect_by(server.host, server.port, Clock::now() + timeout, error);
  s.listening = fd >= 0;
  if (fd >= 0) close(fd);
  if (!s.metrics) return s;
  auto response = http_get(server.host, server.metrics_port, "/metrics", timeout, error);
  if (!response) {
    s.problem = error;
    return s;
  }
  auto body = response->find("\r\n\r\n");
  if (!response->starts_with("HTTP/1.1 200") || body == std::string::npos) {
    s.problem = "unexpected answer: " + response->substr(0, response->find('\r'));
    return s;
  }
  s.answering = true;
  read_metrics(parse_exposition(std::string_view(*response).substr(body + 4)), s);
  return s;
}

void rate_since_start(ServerStatus& now) {
  if (now.answering && now.uptime > 0) now.iamat_rate = now.iamat_total / now.uptime;
}

void rate_between(const ServerStatus& earlier, ServerStatus& now, double seconds) {
  // A restart in between starts the count afresh: then only the new count is known.
  if (!earlier.answering || !now.answering || seconds <= 0) return rate_since_start(now);
  if (now.iamat_total < earlier.iamat_total || now.uptime < earlier.uptime)
    return rate_since_start(now);
  now.iamat_rate = (now.iamat_total - earlier.iamat_total) / seconds;
}

std::string table(const std::vector<ServerStatus>& servers, std::string_view rate_title) {
  auto row = [](auto&&... fields) {
    return fmt::format("{:<12} {:<22} {:<14} {:<6} {:<18} {:>8} {:>8} {:>11} {:>8}\n", fields...);
  };
  auto text =
      row("NAME", "ADDRESS", "STATE", "LINKS", "DOWN", "RECORDS", "CLIENTS", rate_title, "UPTIME");
  for (const auto& s : servers) {
    if (!s.answering) {
      auto why = !s.metrics          ? std::string("metrics off")
                 : s.problem.empty() ? std::string("-")
                                     : s.problem;
      text += fmt::format("{:<12} {:<22} {:<14} {}\n", s.name, s.address, s.state(), why);
      continue;
    }
    std::string down;
    for (const auto& n : s.links_down) down += (down.empty() ? "" : ",") + n;
    text += row(s.name, s.address, s.state(), fmt::format("{}/{}", s.links_up, s.links_total),
                down.empty() ? "-" : down, fmt::format("{:.0f}", s.records),
                fmt::format("{:.0f}", s.clients),
                s.iamat_rate ? fmt::format("{:.1f}", *s.iamat_rate) : "-", duration_text(s.uptime));
  }
  return text;
}

std::string json_line(const ServerStatus& s) {
  std::string out = "{";
  auto key = [&](std::string_view name) {
    if (out.size() > 1) out += ", ";
    append_json_string(out, name);
    out += ": ";
  };
  auto string = [&](std::string_view name, std::string_view value) {
    key(name);
    append_json_string(out, value);
  };
  auto number = [&](std::string_view name, double value) {
    key(name);
    out += std::isfinite(value) ? fmt::format("{}", value) : "null";
  };
  auto boolean = [&](std::string_view name, bool value) {
    key(name);
    out += value ? "true" : "false";
  };
  string("server", s.name);
  string("address", s.address);
  string("state", s.state());
  boolean("listening", s.listening);
  boolean("metrics", s.metrics);
  boolean("answering", s.answering);
  if (!s.answering) {
    if (!s.problem.empty()) string("problem", s.problem);
    return out + "}";
  }
  number("links_up", s.links_up);
  number("links_total", s.links_total);
  key("links_down");
  out += "[";
  for (std::size_t i = 0; i < s.links_down.size(); ++i) {
    if (i) out += ", ";
    append_json_string(out, s.links_down[i]);
  }
  out += "]";
  number("records", s.records);
  number("clients", s.clients);
  number("iamat_total", s.iamat_total);
  key("iamat_per_second");
  out += s.iamat_rate ? fmt::format("{}", *s.iamat_rate) : "null";
  number("uptime_seconds", s.uptime);
  return out + "}";
}

}  // namespace herd::status
