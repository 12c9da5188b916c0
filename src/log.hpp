// One log file per server: every line received and sent, connects, drops and errors,
// each with a UTC timestamp. Buffered; flushed by the server's timer, when large, and at exit.
// reopen() starts a new file at the same path once the old one has been moved away
// (log rotation: the server reopens on SIGHUP).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "protocol.hpp"  // Timestamp

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
  // The same, stamped with the time the text was read (the time its AT replies measure from).
  void received(std::string_view who, std::string_view text, Timestamp at);
  void sent(std::string_view who, std::string_view text);
  void event(std::string_view who, std::string_view text);

  void flush();
  // Writes out what is buffered, then appends to the file now at the path, creating it.
  // When that fails, keeps writing to the old file and returns why.
  std::optional<std::string> reopen();

 private:
  void append(std::string_view who, std::string_view direction, std::string_view text,
              Timestamp at);
  void stamp(Timestamp at);
  char* room_for(std::size_t bytes);  // where `bytes` more can be written into the buffer
  // Writes the buffer out: all of it, or up to where the file reaches a write_alignment boundary.
  // Between two writes the file may end mid-line; the rest follows within the flush interval.
  void write_out(bool all);
  void adopt(int fd, std::uint64_t size, bool ends_mid_line);  // the file to append to

  std::filesystem::path path_;
  int file_ = -1;
  std::uint64_t file_size_ = 0;  // where the next byte written lands
  std::mutex mutex_;
  // Entries not yet written: a plain array, so that an entry costs a bounds check and copies.
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0, capacity_ = 0;
  std::int64_t stamp_second_ = -1;
  char stamp_[32] = {};
};

// "\x01" for control characters, "\\" for backslash; everything else as is.
void append_escaped(std::string& out, std::string_view text);

}  // namespace herd
