// One log file per server: every line received and sent, connects, drops and errors,
// each with a UTC timestamp. Buffered; flushed by the server's timer, when large, and at exit.
#pragma once

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

namespace herd {

class Log {
 public:
  // Opens (creating the directory) for appending; throws std::runtime_error naming the path.
  explicit Log(const std::filesystem::path& file);
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  ~Log();

  // `who` names the connection ("client 7", "peer Hands"); text may hold several lines,
  // each becomes an entry. Control characters and backslashes are escaped.
  void received(std::string_view who, std::string_view text);
  void sent(std::string_view who, std::string_view text);
  void event(std::string_view who, std::string_view text);

  void flush();

 private:
  void append(std::string_view who, std::string_view direction, std::string_view text);
  void stamp();

  std::FILE* file_ = nullptr;
  std::mutex mutex_;
  std::string buffer_;
  long stamp_second_ = -1;
  char stamp_[32] = {};
};

// "\x01" for control characters, "\\" for backslash; everything else as is.
void append_escaped(std::string& out, std::string_view text);

}  // namespace herd
