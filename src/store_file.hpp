// The store on disk: every record that changed the store, appended as a line, so that a server
// killed at any moment comes back with what it had. Records are last-writer-wins, so the file
// replays in any order and compacts to "every live record once" (a snapshot, then whatever was
// appended meanwhile).
//
// Format, one line each: "cccccccc PAYLOAD\n", where cccccccc is the CRC-32 of the payload in
// lowercase hex, and the payload is a record, "SEQ AT ..." (SEQ: the number of the change that
// stored it, see Store), or a resume point, "SYNCED NEIGHBOR EPOCH SEQ" (the neighbor's changes
// this server holds, written after the records they cover: docs/protocol.md, Catch-up). A torn
// last line (a crash mid-write) is dropped with a log line; a bad line with good lines after it
// is corruption, and the server refuses to start, naming the offset.
//
// Beside it, DIR/epoch holds the server's epoch in hex: made when the file is empty (new), kept
// as long as the file is.
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
#include <variant>

#include "config.hpp"
#include "log.hpp"

namespace herd {

// The file format, without I/O.
void append_record(std::string& out, std::uint64_t changed, std::string_view at_line);
void append_resume_point(std::string& out, std::string_view neighbor, std::uint64_t epoch,
                         std::uint64_t seq);
// About what a record takes in the file, for the compaction's estimate.
inline std::size_t record_bytes(std::string_view at_line) { return at_line.size() + 18; }

struct StoredRecord {
  std::uint64_t changed = 0;
  std::string_view at_line;
};
struct StoredResumePoint {
  std::string_view neighbor;
  std::uint64_t epoch = 0, seq = 0;
};
// A payload that passed its checksum: a record, a resume point, or neither (monostate). The
// AT line itself is the caller's to parse.
std::variant<std::monostate, StoredRecord, StoredResumePoint> parse_stored(std::string_view payload);

struct Scan {
  enum class End { clean, torn, corrupt };
  End end = End::clean;
  std::size_t records = 0;     // valid records read
  std::size_t good_bytes = 0;  // the prefix of whole valid records: where a bad one starts
  std::string problem;         // what is wrong at good_bytes
};

// Calls `record` with the payload of each valid line, in file order, up to the first bad one;
// `record` returns false for a line it cannot use (then the record is bad too). A bad record
// that is the file's last line is a torn tail; one with lines after it is corruption.
Scan scan_records(std::string_view bytes, const std::function<bool(std::string_view)>& record);

// DIR/records, appended by a thread of its own so that the herd's strand never waits for the
// disk. With Fsync::always, each batch is synced before `synced` is called with the number of
// the last record in it: many records share one fsync (group commit).
class StoreFile {
 public:
  using Fsync = StoreConfig::Fsync;

  // Creates DIR, takes its lock (two servers never share a file), opens DIR/records, drops
  // a torn last record (logged), so that appending is safe at once, reads DIR/epoch (or makes
  // a new one when the file is empty, or the epoch missing), and starts the writer thread.
  // Throws std::runtime_error naming the path when it cannot.
  StoreFile(const std::filesystem::path& dir, Fsync fsync, Log& log,
            std::function<void(std::uint64_t)> synced);
  ~StoreFile();  // writes what is pending, syncs it and stops the thread
  StoreFile(const StoreFile&) = delete;
  StoreFile& operator=(const StoreFile&) = delete;

  // Reads the records the file held when it was opened into `record` (see scan_records), from
  // any thread while records are appended. Returns the records read; throws on corruption,
  // naming the file and the offset. `record` may throw to abandon the load.
  std::size_t load(const std::function<bool(std::string_view)>& record);

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t epoch() const { return epoch_; }
  bool new_epoch() const { return new_epoch_; }  // made now, not read

  // From one thread at a time (the herd's strand). Each returns the line's number, from 1.
  std::uint64_t append(std::uint64_t changed, std::string_view at_line);
  std::uint64_t append_resume_point(std::string_view neighbor, std::uint64_t epoch,
                                    std::uint64_t seq);
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

  void drop_torn_tail();
  void read_or_make_epoch();
  template <typename Format>
  std::uint64_t append_formatted(Format format);
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
  std::uint64_t epoch_ = 0;
  bool new_epoch_ = false;
  std::uint64_t appended_ = 0;
  std::atomic<std::uint64_t> file_bytes_{0}, unwritten_bytes_{0};
  std::atomic<bool> rewriting_{false};
  std::uint64_t load_bytes_ = 0;  // the file's valid records when it was opened

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
