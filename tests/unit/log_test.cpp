#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "log.hpp"

TEST_CASE("control characters and backslashes are escaped", "[log]") {
  std::string out;
  herd::append_escaped(out, std::string("a\x01"
                                        "b\\c\x7f\x1b[31m\r",
                                        12));
  CHECK(out == "a\\x01b\\\\c\\x7f\\x1b[31m\\x0d");
}

TEST_CASE("each line becomes a timestamped entry", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-test";
  std::filesystem::remove_all(dir);
  {
    herd::Log log(dir / "sub" / "A.log");
    log.received("client 1", "IAMAT kiwi +1+1 1");
    log.sent("client 1", "AT A +0.000000000 kiwi +1+1 1\n? x\n");
    log.event("peer B", "link up");
  }
  std::ifstream in(dir / "sub" / "A.log");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].substr(28) == "client 1 < IAMAT kiwi +1+1 1");
  CHECK(lines[1].substr(28) == "client 1 > AT A +0.000000000 kiwi +1+1 1");
  CHECK(lines[2].substr(28) == "client 1 > ? x");
  CHECK(lines[3].substr(28) == "peer B - link up");
  CHECK(lines[0].size() > 28);
  CHECK(lines[0][10] == 'T');
  CHECK(lines[0][26] == 'Z');
  std::filesystem::remove_all(dir);
}

TEST_CASE("escaping agrees with a byte-at-a-time reference at every position", "[log]") {
  auto reference = [](std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
      if (c == '\\')
        out += "\\\\";
      else if (c < 0x20 || c == 0x7f)
        out += fmt::format("\\x{:02x}", c);
      else
        out += static_cast<char>(c);
    }
    return out;
  };
  std::minstd_rand random(7);
  const std::string alphabet = std::string("abcXYZ 09\xc3\xa9\x80\xff~\\\x7f\x1f\x01\t", 19);
  for (int round = 0; round < 5000; ++round) {
    std::string text(random() % 100, ' ');
    for (auto& c : text)
      c = random() % 4 ? 'a' + static_cast<char>(random() % 26)
                       : alphabet[random() % alphabet.size()];
    std::string out;
    herd::append_escaped(out, text);
    REQUIRE(out == reference(text));
  }
}

TEST_CASE("an entry of many lines splits at each newline and escapes the rest", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-lines-test";
  std::filesystem::remove_all(dir);
  std::minstd_rand random(11);
  std::vector<std::string> expected;
  std::string text;
  for (int line = 0; line < 200; ++line) {
    std::string plain(random() % 40, 'x');
    for (auto& c : plain) c = random() % 8 ? 'a' + static_cast<char>(random() % 26) : '\x01';
    std::string escaped;
    herd::append_escaped(escaped, plain);
    expected.push_back("client 9 > " + escaped);
    text += plain + (line + 1 < 200 ? "\n" : "");
  }
  {
    herd::Log log(dir / "B.log");
    log.sent("client 9", text);
  }
  std::ifstream in(dir / "B.log");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line.substr(28));
  CHECK(lines == expected);
  std::filesystem::remove_all(dir);
}

TEST_CASE("reopen starts a new file once the old one has been moved away", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-reopen-test";
  std::filesystem::remove_all(dir);
  auto read = [](const std::filesystem::path& path) {
    std::ifstream in(path);
    std::vector<std::string> entries;
    for (std::string line; std::getline(in, line);) entries.push_back(line.substr(28));
    return entries;
  };
  {
    herd::Log log(dir / "A.log");
    log.event("server", "one");
    log.flush();
    std::filesystem::rename(dir / "A.log", dir / "A.log.1");  // as logrotate does
    log.event("server", "two");                               // buffered: belongs to the old file
    CHECK_FALSE(log.reopen());
    log.event("server", "three");
  }
  CHECK(read(dir / "A.log.1") == std::vector<std::string>{"server - one", "server - two"});
  CHECK(read(dir / "A.log") == std::vector<std::string>{"server - three"});

  {
    herd::Log log(dir / "gone" / "B.log");
    log.event("server", "kept");
    std::filesystem::remove_all(dir / "gone");  // the directory is gone: nowhere to reopen
    auto failed = log.reopen();
    REQUIRE(failed);
    CHECK_THAT(*failed, Catch::Contains("B.log"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a large log is written in order, each large write ending on a 64 KiB boundary",
          "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-large-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto path = dir / "A.log";
  std::ofstream(path) << "an older line, from before a restart\n";
  auto older = std::filesystem::file_size(path);
  std::vector<std::string> expected{"an older line, from before a restart"};
  {
    herd::Log log(path);
    for (int i = 0; i < 20000; ++i) {
      auto line = fmt::format("IAMAT client{} +34.068930-118.445127 1764085175.{:09}", i, i);
      log.received("client 3", line);
      expected.push_back("client 3 < " + line);
    }
    // More than a write's worth went out; the file ends on a boundary and the rest waits.
    auto size = std::filesystem::file_size(path);
    CHECK(size > older + 1024 * 1024);
    CHECK(size % (64 * 1024) == 0);
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(lines.empty() ? line : line.substr(28));
  CHECK(lines == expected);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a log left ending mid-line gets its next entry on a line of its own", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-mid-line-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto path = dir / "A.log";
  std::ofstream(path) << "2026-11-25T16:19:54.191595Z client 3 < IAMAT half";  // killed here
  {
    herd::Log log(path);
    log.event("server", "restarted");
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "2026-11-25T16:19:54.191595Z client 3 < IAMAT half");
  CHECK(lines[1].substr(28) == "server - restarted");
  std::filesystem::remove_all(dir);
}

namespace {
std::vector<std::string> entries_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> entries;
  for (std::string line; std::getline(in, line);) entries.push_back(line.substr(28));
  return entries;
}
}  // namespace

TEST_CASE("a WHATSAT reply is one entry, its newlines escaped", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-whatsat-test";
  std::filesystem::remove_all(dir);
  {
    herd::Log log(dir / "A.log");
    log.sent(
        "client 1",
        "AT A +0.1 k +1+1 1\n{\n   \"results\" : []\n}\n\n? WHATSAT x 1 1\nAT A +0.2 k +1+1 2\n");
  }
  CHECK(entries_of(dir / "A.log") ==
        std::vector<std::string>{
            "client 1 > AT A +0.1 k +1+1 1\\x0a{\\x0a   \"results\" : []\\x0a}\\x0a",
            "client 1 > ? WHATSAT x 1 1", "client 1 > AT A +0.2 k +1+1 2"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("a WHATSAT reply ends at its empty line wherever that falls", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-whatsat-lengths-test";
  std::filesystem::remove_all(dir);
  for (std::size_t length = 1; length < 70; ++length) {
    const std::string xs(length, 'x');
    {
      herd::Log log(dir / "A.log");
      log.sent("client 1", "AT A +0.1 k +1+1 1\n{\n" + xs + "\n}\n\nAT A +0.2 k +1+1 2\n");
    }
    CHECK(entries_of(dir / "A.log") ==
          std::vector<std::string>{"client 1 > AT A +0.1 k +1+1 1\\x0a{\\x0a" + xs + "\\x0a}\\x0a",
                                   "client 1 > AT A +0.2 k +1+1 2"});
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("the level decides what is logged", "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-level-test";
  std::filesystem::remove_all(dir);
  auto log_at = [&](herd::LogLevel level) {
    auto path = dir / fmt::format("{}.log", static_cast<int>(level));
    {
      herd::Log log(path, level);
      log.received("client 1", "IAMAT k +1+1 1");
      log.sent("client 1", "AT A +0.1 k +1+1 1");
      log.received("peer B", "PUT 1 AT A +0.1 k +1+1 1", herd::LogLevel::debug);
      log.sent("peer B", "ACK 1", herd::LogLevel::debug);
      log.event("peer B", "link up");
      log.warning("peer B", "link down");
    }
    return entries_of(path);
  };
  using entries = std::vector<std::string>;
  CHECK(log_at(herd::LogLevel::debug) ==
        entries{"client 1 < IAMAT k +1+1 1", "client 1 > AT A +0.1 k +1+1 1",
                "peer B < PUT 1 AT A +0.1 k +1+1 1", "peer B > ACK 1", "peer B - link up",
                "peer B - link down"});
  CHECK(log_at(herd::LogLevel::info) == entries{"client 1 < IAMAT k +1+1 1",
                                                "client 1 > AT A +0.1 k +1+1 1", "peer B - link up",
                                                "peer B - link down"});
  CHECK(log_at(herd::LogLevel::warn) == entries{"peer B - link down"});
  herd::Log log(dir / "x.log", herd::LogLevel::info);
  CHECK(log.logs(herd::LogLevel::info));
  CHECK_FALSE(log.logs(herd::LogLevel::debug));
  std::filesystem::remove_all(dir);
}

// Writes fail past the file size limit (EFBIG) as they do on a full disk (ENOSPC), and work
// again once it is raised: a disk that fills and frees, without needing root.
TEST_CASE("failed writes are said once on stderr and counted in the log when writing resumes",
          "[log]") {
  auto dir = std::filesystem::temp_directory_path() / "herd-log-full-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto path = dir / "A.log";
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  std::fflush(stderr);
  int saved_stderr = ::dup(2);
  int said[2];  // stderr, caught in a pipe: a file would be past the size limit too
  REQUIRE(::pipe(said) == 0);
  {
    herd::Log log(path);
    log.event("server", "before");
    log.flush();
    // Room for 50 more bytes: the next write stops in the middle of an entry.
    rlimit full{static_cast<rlim_t>(std::filesystem::file_size(path)) + 50, old_limit.rlim_max};
    ::dup2(said[1], 2);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &full) == 0);
    for (int i = 0; i < 1000; ++i) {
      log.event("client 1", fmt::format("entry {} that the full disk loses", i));
      if (i % 100 == 99) log.flush();
    }
    setrlimit(RLIMIT_FSIZE, &old_limit);
    std::fflush(stderr);
    ::dup2(saved_stderr, 2);
    ::close(said[1]);
    log.event("server", "after");
  }
  ::close(saved_stderr);
  std::signal(SIGXFSZ, old_handler);
  auto lines = entries_of(path);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "server - before");
  CHECK(lines[1] == "client 1 - entry 0 tha");  // the 50 bytes that fitted
  CHECK(lines[2] == "log - 1000 entries lost: the log file could not be written (File too large)");
  CHECK(lines[3] == "server - after");
  std::string stderr_text(4096, '\0');
  auto n = ::read(said[0], stderr_text.data(), stderr_text.size());
  ::close(said[0]);
  stderr_text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  std::vector<std::string> reports;
  std::istringstream lines_said(stderr_text);
  for (std::string line; std::getline(lines_said, line);) reports.push_back(line);
  REQUIRE(reports.size() == 1);
  CHECK_THAT(reports[0], Catch::Contains("cannot write the log file") &&
                             Catch::Contains("A.log: File too large"));
  std::filesystem::remove_all(dir);
}
