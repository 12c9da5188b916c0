#include "store_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "protocol.hpp"

namespace herd {
namespace {

using namespace std::chrono_literals;

constexpr auto gather_time = 10ms;           // without fsync "always": appends per write
constexpr std::size_t gather_bytes = 1 << 20;  // ... unless this many are waiting

std::uint32_t crc_of(std::string_view text, std::uint32_t crc = 0) {
  return static_cast<std::uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
}

// "cccccccc " for the CRC-32 of the payload, then the payload's parts and a newline.
void append_line(std::string& out, std::string_view head, std::string_view rest) {
  // By hand rather than through fmt: it runs on the herd's strand for every record.
  char prefix[9];
  auto crc = crc_of(rest, crc_of(head));
  for (int i = 7; i >= 0; --i, crc >>= 4) prefix[i] = "0123456789abcdef"[crc & 0xf];
  prefix[8] = ' ';
  out.append(prefix, sizeof prefix).append(head).append(rest).push_back('\n');
}

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text[0] == '+' || ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

std::optional<std::uint32_t> parse_hex8(std::string_view text) {
  std::uint32_t value = 0;
  for (char c : text) {
    std::uint32_t digit;
    if (c >= '0' && c <= '9')
      digit = static_cast<std::uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    else
      return std::nullopt;
    value = value << 4 | digit;
  }
  return value;
}

// Why a whole line is not a valid record, or empty when it is one.
std::string_view problem_of(std::string_view line) {
  constexpr std::string_view expected = "not a line of the store (expected \"CRC32 PAYLOAD\")";
  if (line.size() < 10 || line[8] != ' ') return expected;
  auto crc = parse_hex8(line.substr(0, 8));
  if (!crc) return expected;
  if (*crc != crc_of(line.substr(9))) return "checksum mismatch";
  return {};
}

std::string errno_text() { return std::strerror(errno); }

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

void append_record(std::string& out, std::uint64_t changed, std::string_view at_line) {
  char number[21];
  auto end = std::to_chars(number, number + sizeof number - 1, changed).ptr;
  *end++ = ' ';
  append_line(out, std::string_view(number, static_cast<std::size_t>(end - number)), at_line);
}

void append_resume_point(std::string& out, std::string_view neighbor, std::uint64_t epoch,
                         std::uint64_t seq) {
  append_line(out, "", fmt::format("SYNCED {} {} {}", neighbor, format_epoch(epoch), seq));
}

std::variant<std::monostate, StoredRecord, StoredResumePoint> parse_stored(std::string_view payload) {
  auto space = payload.find(' ');
  if (space == std::string_view::npos) return {};
  auto head = payload.substr(0, space);
  if (head == "SYNCED") {
    auto f = split_fields(payload);
    if (f.size() != 4) return {};
    auto epoch = parse_epoch(f[2]);
    auto seq = parse_number(f[3]);
    if (!epoch || *epoch == 0 || !seq) return {};
    return StoredResumePoint{f[1], *epoch, *seq};
  }
  auto changed = parse_number(head);
  auto at_line = payload.substr(space + 1);
  if (!changed || *changed == 0 || !at_line.starts_with("AT ")) return {};
  return StoredRecord{*changed, at_line};
}

Scan scan_records(std::string_view bytes, const std::function<bool(std::string_view)>& record) {
  Scan scan;
  while (scan.good_bytes < bytes.size()) {
    auto rest = bytes.substr(scan.good_bytes);
    auto newline = rest.find('\n');
    auto line = rest.substr(0, newline);
    auto problem = newline == std::string_view::npos ? "no newline at the end" : problem_of(line);
    if (problem.empty() && !record(line.substr(9))) problem = "not a record or a resume point";
    if (!problem.empty()) {
      bool last = newline == std::string_view::npos || newline + 1 == rest.size();
      scan.end = last ? Scan::End::torn : Scan::End::corrupt;
      scan.problem = problem;
      return scan;
    }
    scan.good_bytes += newline + 1;
    ++scan.records;
  }
  return scan;
}

StoreFile::StoreFile(const std::filesystem::path& dir, Fsync fsync, Log& log,
                     std::function<void(std::uint64_t)> synced)
    : dir_(dir),
      path_(dir / "records"),
      rewrite_path_(dir / "records.rewrite"),
      fsync_(fsync),
      log_(log),
      synced_(std::move(synced)) {
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error)
    throw std::runtime_error(fmt::format("[store] cannot create {}: {}", dir_.string(),
                                         error.message()));
  auto lock_path = dir_ / "lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error(fmt::format("[store] cannot lock {}: {}", lock_path.string(),
                                         errno == EWOULDBLOCK ? "another server uses this directory"
                                                              : errno_text()));
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(fmt::format("[store] cannot open {}: {}", path_.string(), errno_text()));
  std::filesystem::remove(rewrite_path_, error);  // a rewrite cut short by a crash
  drop_torn_tail();
  read_or_make_epoch();
  last_sync_ = std::chrono::steady_clock::now();
  writer_ = std::thread([this] { run(); });
}

// A crash mid-write leaves at most the last line torn: no newline at its end, or a checksum
// that does not match. Only the end of the file is read, so the server need not wait for a
// whole load before it appends.
void StoreFile::drop_torn_tail() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw std::runtime_error(fmt::format("[store] cannot read {}: {}", path_.string(), errno_text()));
  auto size = static_cast<std::uint64_t>(st.st_size);
  auto read = [&](std::uint64_t at, std::uint64_t length) {
    std::string bytes(length, '\0');
    if (::pread(fd_, bytes.data(), length, static_cast<off_t>(at)) != static_cast<ssize_t>(length))
      throw std::runtime_error(fmt::format("[store] cannot read {}: {}", path_.string(), errno_text()));
    return bytes;
  };
  // Where the line that ends at `end` starts: after the last newline before it, searched
  // backwards a chunk at a time.
  auto line_start = [&](std::uint64_t end) -> std::uint64_t {
    while (end > 0) {
      auto chunk = std::min<std::uint64_t>(end, 64 << 10);
      auto newline = read(end - chunk, chunk).rfind('\n');
      if (newline != std::string::npos) return end - chunk + newline + 1;
      end -= chunk;
    }
    return 0;
  };
  std::uint64_t good = size;
  std::string_view problem;
  if (size > 0 && read(size - 1, 1) != "\n") {
    good = line_start(size);
    problem = "no newline at the end";
  } else if (size > 0) {
    auto start = line_start(size - 1);
    problem = problem_of(read(start, size - 1 - start));
    if (!problem.empty()) good = start;
  }
  if (good < size) {
    log_.warning("store", fmt::format("{}: dropped a torn last record at byte {} ({}, {} bytes)",
                                      path_.string(), good, problem, size - good));
    if (::ftruncate(fd_, static_cast<off_t>(good)) != 0)
      throw std::runtime_error(
          fmt::format("[store] cannot truncate {}: {}", path_.string(), errno_text()));
  }
  load_bytes_ = good;
  file_bytes_ = good;
}

// An epoch names the numbering of this server's changes: kept while the file is, new when the
// file starts empty (a neighbor's resume point for an older epoch then brings everything back).
void StoreFile::read_or_make_epoch() {
  auto epoch_path = dir_ / "epoch";
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw std::runtime_error(fmt::format("[store] cannot read {}: {}", path_.string(), errno_text()));
  if (st.st_size > 0) {
    std::ifstream in(epoch_path);
    std::string text;
    in >> text;
    if (auto epoch = parse_epoch(text); epoch && *epoch != 0) {
      epoch_ = *epoch;
      return;
    }
    log_.warning("store", fmt::format("{} is missing or not an epoch: starting a new one (the "
                                      "neighbors send everything once)",
                                      epoch_path.string()));
  }
  std::random_device random;
  while (epoch_ == 0) epoch_ = std::uint64_t(random()) << 32 | random();
  new_epoch_ = true;
  auto temporary = dir_ / "epoch.new";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  auto text = format_epoch(epoch_) + "\n";
  bool written = fd >= 0 && write_all(fd, text) && ::fdatasync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!written || ::rename(temporary.c_str(), epoch_path.c_str()) != 0)
    throw std::runtime_error(
        fmt::format("[store] cannot write {}: {}", epoch_path.string(), errno_text()));
  int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

StoreFile::~StoreFile() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      next_.stopping = true;
    }
    wake_.notify_one();
    writer_.join();
  }
  if (rewrite_fd_ >= 0) ::close(rewrite_fd_);
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::size_t StoreFile::load(const std::function<bool(std::string_view)>& record) {
  // A descriptor of its own: the writer thread appends through fd_ meanwhile.
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error(fmt::format("[store] cannot read {}: {}", path_.string(), errno_text()));
  std::string bytes(load_bytes_, '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    auto n = ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto why = n < 0 ? errno_text() : "shorter than its size";
      ::close(fd);
      throw std::runtime_error(fmt::format("[store] cannot read {}: {}", path_.string(), why));
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  // The last line was checked at open: a bad record here has records after it.
  auto scan = scan_records(bytes, record);
  if (scan.end != Scan::End::clean)
    throw std::runtime_error(fmt::format(
        "[store] {}: corrupt record at byte {} ({}) with records after it; move the file away "
        "to start without it (the neighbors' catch-up brings the herd's records back), or cut "
        "it at that byte to keep what comes before",
        path_.string(), scan.good_bytes, scan.problem));
  return scan.records;
}

std::uint64_t StoreFile::append(std::uint64_t changed, std::string_view at_line) {
  return append_formatted([&](std::string& out) { append_record(out, changed, at_line); });
}

std::uint64_t StoreFile::append_resume_point(std::string_view neighbor, std::uint64_t epoch,
                                             std::uint64_t seq) {
  return append_formatted(
      [&](std::string& out) { herd::append_resume_point(out, neighbor, epoch, seq); });
}

template <typename Format>
std::uint64_t StoreFile::append_formatted(Format format) {
  bool wake;
  std::size_t added;
  {
    std::lock_guard lock(mutex_);
    auto before = next_.records.size();
    format(next_.records);
    added = next_.records.size() - before;
    next_.last = ++appended_;
    wake = before == 0 || (before < gather_bytes && next_.records.size() >= gather_bytes);
  }
  unwritten_bytes_ += added;
  if (wake) wake_.notify_one();
  return appended_;
}

void StoreFile::begin_rewrite() {
  rewriting_ = true;
  std::lock_guard lock(mutex_);
  next_.begin_rewrite = true;
}

void StoreFile::rewrite(std::string records) {
  {
    std::lock_guard lock(mutex_);
    next_.rewritten.push_back(std::move(records));
  }
  wake_.notify_one();
}

void StoreFile::end_rewrite() {
  {
    std::lock_guard lock(mutex_);
    next_.end_rewrite = true;
  }
  wake_.notify_one();
}

void StoreFile::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    auto idle = [this] {
      return next_.records.empty() && next_.rewritten.empty() && !next_.begin_rewrite &&
             !next_.end_rewrite && !next_.stopping;
    };
    if (idle()) {
      if (dirty_)  // everysec: what was written is synced within the second
        wake_.wait_until(lock, last_sync_ + 1s);
      else
        wake_.wait(lock);
    }
    // Without "always" nobody waits for the write: gather appends for a few milliseconds, so
    // that a busy server makes a hundred writes a second rather than one per IAMAT, each of
    // which would wake this thread and take a core from the strand.
    if (fsync_ != Fsync::always)
      wake_.wait_until(lock, std::chrono::steady_clock::now() + gather_time, [this] {
        return next_.records.size() >= gather_bytes || next_.begin_rewrite ||
               next_.end_rewrite || next_.stopping;
      });
    Batch batch;
    std::swap(batch, next_);
    lock.unlock();
    write_batch(batch);
    if (batch.stopping) break;
    lock.lock();
  }
  if (fsync_ != Fsync::no) sync(fd_);
}

void StoreFile::write_batch(Batch& batch) {
  if (batch.begin_rewrite) {
    rewrite_fd_ = ::open(rewrite_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rewrite_fd_ < 0) fail(fmt::format("cannot create {}: {}", rewrite_path_.string(), errno_text()));
    rewrite_bytes_ = 0;
  }
  if (!batch.records.empty()) {
    if (!write_all(fd_, batch.records))
      fail(fmt::format("cannot write {}: {}", path_.string(), errno_text()));
    file_bytes_ += batch.records.size();
    unwritten_bytes_ -= batch.records.size();
    dirty_ = fsync_ == Fsync::everysec;
  }
  if (rewrite_fd_ >= 0) {
    for (const auto& chunk : batch.rewritten) {
      if (!write_all(rewrite_fd_, chunk))
        fail(fmt::format("cannot write {}: {}", rewrite_path_.string(), errno_text()));
      rewrite_bytes_ += chunk.size();
    }
    if (!write_all(rewrite_fd_, batch.records))
      fail(fmt::format("cannot write {}: {}", rewrite_path_.string(), errno_text()));
    rewrite_bytes_ += batch.records.size();
  }
  if (batch.end_rewrite) finish_rewrite();
  auto now = std::chrono::steady_clock::now();
  bool due = fsync_ == Fsync::always ? !batch.records.empty()
                                     : fsync_ == Fsync::everysec && dirty_ && now - last_sync_ >= 1s;
  if (due) sync(fd_);
  if (fsync_ == Fsync::always && batch.last) synced_(batch.last);
}

// The new file holds every live record and all appended since the rewrite began: it is synced,
// then takes the old one's place in one rename.
void StoreFile::finish_rewrite() {
  auto before = file_bytes_.load();
  sync(rewrite_fd_);
  if (::rename(rewrite_path_.c_str(), path_.c_str()) != 0)
    fail(fmt::format("cannot rename {} to {}: {}", rewrite_path_.string(), path_.string(),
                     errno_text()));
  int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  ::close(fd_);
  fd_ = rewrite_fd_;
  rewrite_fd_ = -1;
  file_bytes_ = rewrite_bytes_;
  rewriting_ = false;
  log_.event("store", fmt::format("{} rewritten: {} bytes, from {}", path_.string(),
                                  rewrite_bytes_, before));
}

void StoreFile::sync(int fd) {
  if (::fdatasync(fd) != 0) fail(fmt::format("cannot sync {}: {}", path_.string(), errno_text()));
  last_sync_ = std::chrono::steady_clock::now();
  dirty_ = false;
}

// A server that cannot keep its records stops rather than answer for what it may lose; its
// neighbors hold the herd's records, and catch it up when it is back.
void StoreFile::fail(const std::string& what) {
  log_.warning("store", what + "; stopping");
  log_.flush();
  fmt::print(stderr, "herd-server: [store] {}\n", what);
  std::_Exit(1);
}

}  // namespace herd
