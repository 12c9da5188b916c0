// One log file per server: lines received and sent, connects, drops and errors, each with a
// UTC timestamp, as far as the level asks. Buffered; flushed by the server's timer, when large,
// and at exit. reopen() starts a new file at the same path once the old one has been moved
// away (log rotation: the server reopens on SIGHUP). A write that fails (a full disk) loses
// what was buffered: said once on stderr, and counted in the log once writing works again.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "protocol.hpp"  // Timestamp

namespace herd {

// debug: also every neighbor's line; info: every client line, links and summaries of their
// traffic; warn: only what went wrong.
enum class LogLevel { debug, info, warn };

class Log {
 public:
  // Opens (creating the directory) for appending; throws std::runtime_error naming the path.
  explicit Log(const std::filesystem::path& file, LogLevel level = LogLevel::info);
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  ~Log();

  bool logs(LogLevel level) const { return level >= level_.load(std::memory_order_relaxed); }
  // From any thread (a config reload): entries from now on follow the new level.
  void set_level(LogLevel level) { level_.store(level, std::memory_order_relaxed); }

  // `who` names the connection ("client 7", "peer Hands"); text may hold several lines,
  // each becomes an entry. Control characters and backslashes are escaped. Lines are traffic
  // of `level` (a client's are info, a neighbor's debug).
  void received(std::string_view who, std::string_view text, LogLevel level = LogLevel::info);
  // The same, stamped with the time the text was read (the time its AT replies measure from).
  void received(std::string_view who, std::string_view text, Timestamp at,
                LogLevel level = LogLevel::info);
  // Each reply is an entry: a WHATSAT reply's lines are one, its newlines escaped.
  void sent(std::string_view who, std::string_view text, LogLevel level = LogLevel::info);
  void event(std::string_view who, std::string_view text);    // info
  void warning(std::string_view who, std::string_view text);  // warn
  // What an operator asked for and its outcome (a config reload): written at every level.
  void notice(std::string_view who, std::string_view text) { warning(who, text); }

  void flush();
  // Bytes written to the file so far (any file, across reopen()); from any thread.
  std::uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  // Writes out what is buffered, then appends to the file now at the path, creating it.
  // When that fails, keeps writing to the old file and returns why.
  std::optional<std::string> reopen();

 private:
  // `replies`: an entry runs to the end of a WHATSAT reply, not of its first line.
  void append(std::string_view who, std::string_view direction, std::string_view text, Timestamp at,
              bool replies = false);
  void stamp(Timestamp at);
  char* room_for(std::size_t bytes);  // where `bytes` more can be written into the buffer
  // Writes the buffer out: all of it, or up to where the file reaches a write_alignment boundary.
  // Between two writes the file may end mid-line; the rest follows within the flush interval.
  void write_out(bool all);
  std::size_t write_fully(const char* data, std::size_t size, int& error);  // what went out
  bool write_lost_count();  // after a failed write: whether the log says now what was lost
  void adopt(int fd, std::uint64_t size, bool ends_mid_line);  // the file to append to

  std::filesystem::path path_;
  std::atomic<LogLevel> level_;
  int file_ = -1;
  std::uint64_t file_size_ = 0;  // where the next byte written lands
  std::mutex mutex_;
  // Entries not yet written: a plain array, so that an entry costs a bounds check and copies.
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0, capacity_ = 0;
  std::int64_t stamp_second_ = -1;
  std::uint64_t lost_ = 0;      // entries dropped since writing last failed, not yet reported
  int failed_errno_ = 0;        // why writing failed; 0 while it works
  bool file_mid_line_ = false;  // a write that failed part way left half an entry in the file
  char stamp_[32] = {};
  std::atomic<std::uint64_t> bytes_written_{0};
};

// "\x01" for control characters, "\\" for backslash; everything else as is.
void append_escaped(std::string& out, std::string_view text);

}  // namespace herd
