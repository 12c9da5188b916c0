// The store on disk: every record that changed the store, appended as a line, so that a server
// killed at any moment comes back with what it had. Records are last-writer-wins, so the file
// replays in any order and compacts to "every live record once" (a snapshot, then whatever was
// appended meanwhile).
//
// Format, one record a line: "cccccccc AT ...\n", where cccccccc is the CRC-32 of the AT line in
// lowercase hex. A torn last line (a crash mid-write) is dropped with a log line; a bad line
// with good lines after it is corruption, and the server refuses to start, naming the offset.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "config.hpp"
#include "log.hpp"

namespace herd {

// The file format, without I/O.
void append_record(std::string& out, std::string_view at_line);
inline std::size_t record_bytes(std::string_view at_line) { return at_line.size() + 10; }

struct Scan {
  enum class End { clean, torn, corrupt };
  End end = End::clean;
  std::size_t records = 0;     // valid records read
  std::size_t good_bytes = 0;  // the prefix of whole valid records: where a bad one starts
  std::string problem;         // what is wrong at good_bytes
};

// Calls `record` with the AT line of each valid record, in file order, up to the first bad one;
// `record` returns false for a line it cannot use (then the record is bad too). A bad record
// that is the file's last line is a torn tail; one with lines after it is corruption.
Scan scan_records(std::string_view bytes, const std::function<bool(std::string_view)>& record);

// DIR/records, appended by a thread of its own so that the herd's strand never waits for the
// disk. With Fsync::always, each batch is synced before `synced` is called with the number of
// the last record in it: many records share one fsync (group commit).
class StoreFile {
 public:
  using Fsync = StoreConfig::Fsync;

  // Creates DIR, takes its lock (two servers never share a file) and opens DIR/records.
  // Throws std::runtime_error naming the path when it cannot.
  StoreFile(const std::filesystem::path& dir, Fsync fsync, Log& log,
            std::function<void(std::uint64_t)> synced);
  // Writes what is pending (also when stopped before start(), once loaded), syncs it and
  // stops the thread.
  ~StoreFile();
  StoreFile(const StoreFile&) = delete;
  StoreFile& operator=(const StoreFile&) = delete;

  // Before start(): reads the file into `record` (see scan_records). Returns the records read.
  // Truncates a torn tail (logged); throws on corruption, naming the file and the offset.
  std::size_t load(const std::function<bool(std::string_view)>& record);
  void start();  // the writer thread

  const std::filesystem::path& path() const { return path_; }

  // From one thread at a time (the herd's strand).
  std::uint64_t append(std::string_view at_line);  // returns the record's number, from 1
  std::uint64_t appended() const { return appended_; }
  // The file's size once what was appended is written.
  std::uint64_t file_bytes() const {
    return file_bytes_.load(std::memory_order_relaxed) +
           unwritten_bytes_.load(std::memory_order_relaxed);
  }
  bool rewriting() const { return rewriting_.load(std::memory_order_relaxed); }
  // A rewrite: begin, the live records in chunks (append_record's format), end. Records
  // appended in between go to both files, so the new file misses nothing.
  void begin_rewrite();
  void rewrite(std::string records);
  void end_rewrite();

 private:
  struct Batch {
    std::string records;
    std::uint64_t last = 0;
    std::deque<std::string> rewritten;
    bool begin_rewrite = false, end_rewrite = false, stopping = false;
  };

  void run();
  void write_batch(Batch& batch);
  void finish_rewrite();
  void sync(int fd);
  [[noreturn]] void fail(const std::string& what);

  std::filesystem::path dir_, path_, rewrite_path_;
  Fsync fsync_;
  Log& log_;
  std::function<void(std::uint64_t)> synced_;
  int fd_ = -1, lock_fd_ = -1;
  std::uint64_t appended_ = 0;
  std::atomic<std::uint64_t> file_bytes_{0}, unwritten_bytes_{0};
  std::atomic<bool> rewriting_{false};
  std::atomic<bool> loaded_{false};  // load() is done: appending is safe

  // The writer thread's own.
  int rewrite_fd_ = -1;
  std::uint64_t rewrite_bytes_ = 0;
  bool dirty_ = false;  // written since the last sync (everysec)
  std::chrono::steady_clock::time_point last_sync_;

  std::mutex mutex_;  // guards next_
  std::condition_variable wake_;
  Batch next_;
  std::thread writer_;
};

}  // namespace herd
