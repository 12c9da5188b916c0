#include "log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace herd {
namespace {
constexpr std::size_t flush_threshold = 256 * 1024;
// Large writes end where the file reaches a multiple of this, and the rest waits for the next
// one, so that each starts on a boundary: ext4 takes such a write into the page cache a tenth
// to a fifth faster than one that starts and ends mid-page (measured here).
constexpr std::size_t write_alignment = 64 * 1024;

struct OpenedFile {
  int fd;              // -1 with errno set when the file could not be opened
  std::uint64_t size;  // where the next byte written lands
  bool ends_mid_line;  // a server killed between two writes left half a line
};

// Opens for appending; looks at the last byte through a descriptor of its own.
OpenedFile open_for_append(const std::filesystem::path& path) {
  OpenedFile file{::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666), 0, false};
  struct stat st {};
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0 || st.st_size == 0) return file;
  file.size = static_cast<std::uint64_t>(st.st_size);
  if (int reader = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); reader >= 0) {
    char last = '\n';
    file.ends_mid_line = ::pread(reader, &last, 1, st.st_size - 1) == 1 && last != '\n';
    ::close(reader);
  }
  return file;
}

bool plain(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u != 0x7f && c != '\\';
}

#ifdef __SSE2__
// Bit i set when byte i of the sixteen at `p` needs escaping.
unsigned special_mask(const char* p) {
  const __m128i below_space = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f),
                backslash = _mm_set1_epi8('\\');
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);
  __m128i special =
      _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(v, backslash)));
  return static_cast<unsigned>(_mm_movemask_epi8(special));
}
#endif

// The first byte in [p, end) that needs escaping (a control character, DEL or a backslash),
// or `end`. Every line logged goes through here, so it looks at sixteen bytes at a time; the
// last sixteen of the text are looked at in one (overlapping) step too, when the text from
// `begin` is that long.
const char* find_special(const char* begin, const char* p, const char* end) {
#ifdef __SSE2__
  for (; end - p >= 16; p += 16)
    if (unsigned mask = special_mask(p)) return p + __builtin_ctz(mask);
  if (p < end && end - begin >= 16) {
    unsigned mask = special_mask(end - 16) >> (16 - (end - p));  // only the bytes from p
    return mask ? p + __builtin_ctz(mask) : end;
  }
#endif
  while (p < end && plain(*p)) ++p;
  return p;
}

// Writes the escape of `c`, a byte that is not plain; returns the end.
char* write_escape(char* out, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  *out++ = '\\';
  if (c == '\\') {
    *out++ = '\\';
  } else {
    *out++ = 'x';
    *out++ = hex[c >> 4];
    *out++ = hex[c & 15];
  }
  return out;
}

// Escapes [p, end) up to the first newline; leaves `p` at that newline or at `end`.
char* write_escaped_line(char* out, const char* begin, const char*& p, const char* end) {
  while (p < end) {
    const char* run = p;
    p = find_special(begin, p, end);
    std::memcpy(out, run, static_cast<std::size_t>(p - run));  // the common case: all of it
    out += p - run;
    if (p == end || *p == '\n') break;
    out = write_escape(out, static_cast<unsigned char>(*p++));
  }
  return out;
}

// "00" to "99", for writing two digits at a time.
constexpr auto digit_pairs = [] {
  std::array<char, 200> pairs{};
  for (int i = 0; i < 100; ++i) {
    pairs[2 * i] = static_cast<char>('0' + i / 10);
    pairs[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return pairs;
}();

// Escapes `text` into raw memory with room for 4 * text.size() bytes; returns the end. A
// newline is escaped like any control character. Sixteen bytes are stored at a time whether
// or not they are all plain, and the output moves on only past the plain ones: no copy call
// per run, which matters for a WHATSAT reply of ~10 KB in ~340 lines. The room suffices, as
// at least sixteen bytes of text (four times as much room) are left whenever sixteen are
// stored.
char* write_escaped(char* out, std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
#ifdef __SSE2__
  while (end - p >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const unsigned mask = special_mask(p);
    if (mask == 0) {
      p += 16;
      out += 16;
      continue;
    }
    const int plain_bytes = __builtin_ctz(mask);
    p += plain_bytes;
    out = write_escape(out + plain_bytes, static_cast<unsigned char>(*p++));
  }
#endif
  for (; p < end; ++p) {
    if (plain(*p)) {
      *out++ = *p;
    } else {
      out = write_escape(out, static_cast<unsigned char>(*p));
    }
  }
  return out;
}

// The first "\n\n" in [p, end), or null. A reply's JSON has a newline every ~30 bytes, so
// looking for the pair sixteen bytes at a time beats a memchr call for each newline.
const char* find_empty_line(const char* p, const char* end) {
#ifdef __SSE2__
  const __m128i newline = _mm_set1_epi8('\n');
  for (; end - p >= 17; p += 16) {
    const __m128i here =
        _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), newline);
    const __m128i next =
        _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1)), newline);
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(here, next))))
      return p + __builtin_ctz(mask);
  }
#endif
  for (; end - p >= 2; ++p)
    if (p[0] == '\n' && p[1] == '\n') return p;
  return nullptr;
}

// Where the reply starting at `p` ends: at the newline after its line, or, for a WHATSAT
// reply (an AT line followed by the JSON, which opens with '{'), at the newline of the empty
// line that ends it. When the text ends first (a write cut the reply), at its last newline.
const char* reply_end(const char* p, const char* end) {
  auto newline = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
  if (!newline) return end;
  if (end - newline < 2 || newline[1] != '{') return newline;
  if (const char* empty_line = find_empty_line(newline, end)) return empty_line + 1;
  return end[-1] == '\n' ? end - 1 : end;
}
}  // namespace

void append_escaped(std::string& out, std::string_view text) {
  auto size = out.size();
  out.resize(size + 4 * text.size());
  out.resize(static_cast<std::size_t>(write_escaped(out.data() + size, text) - out.data()));
}

Log::Log(const std::filesystem::path& file, LogLevel level) : path_(file), level_(level) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  auto opened = open_for_append(file);
  if (opened.fd < 0)
    throw std::runtime_error(
        fmt::format("cannot open log file {}: {}", file.string(), std::strerror(errno)));
  capacity_ = flush_threshold * 2;
  buffer_ = std::make_unique<char[]>(capacity_);
  adopt(opened.fd, opened.size, opened.ends_mid_line);
}

void Log::adopt(int fd, std::uint64_t size, bool ends_mid_line) {
  file_ = fd;
  file_size_ = size;
  file_mid_line_ = false;
  if (ends_mid_line) buffer_[used_++] = '\n';  // the next entry starts a line of its own
}

Log::~Log() {
  flush();
  ::close(file_);
}

namespace {
Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<std::int32_t>(ts.tv_nsec)};
}
}  // namespace

void Log::received(std::string_view who, std::string_view text, LogLevel level) {
  if (logs(level)) append(who, "<", text, now());
}
void Log::received(std::string_view who, std::string_view text, Timestamp at, LogLevel level) {
  if (logs(level)) append(who, "<", text, at);
}
void Log::sent(std::string_view who, std::string_view text, LogLevel level) {
  if (logs(level)) append(who, ">", text, now(), true);
}
void Log::event(std::string_view who, std::string_view text) {
  if (logs(LogLevel::info)) append(who, "-", text, now());
}
void Log::warning(std::string_view who, std::string_view text) {
  append(who, "-", text, now());
}

char* Log::room_for(std::size_t bytes) {
  if (used_ + bytes > capacity_) {
    capacity_ = std::max(capacity_ * 2, used_ + bytes);
    auto bigger = std::make_unique<char[]>(capacity_);
    std::memcpy(bigger.get(), buffer_.get(), used_);
    buffer_ = std::move(bigger);
  }
  return buffer_.get() + used_;
}

void Log::append(std::string_view who, std::string_view direction, std::string_view text,
                 Timestamp at, bool replies) {
  std::lock_guard lock(mutex_);
  stamp(at);
  // "timestamp who direction " starts every line of the entry.
  const std::size_t prefix_size = 28 + who.size() + direction.size() + 2;
  const char* p = text.data();
  const char* end = p + text.size();
  // Later lines copy the first line's prefix (a WHATSAT reply has hundreds of lines); by
  // offset, since room_for may move the buffer.
  std::size_t first_prefix_at = SIZE_MAX;
  do {
    char* out = room_for(prefix_size + 4 * static_cast<std::size_t>(end - p) + 1);
    if (first_prefix_at == SIZE_MAX) {
      first_prefix_at = used_;
      std::memcpy(out, stamp_, 28);
      std::memcpy(out + 28, who.data(), who.size());
      out[28 + who.size()] = ' ';
      std::memcpy(out + 29 + who.size(), direction.data(), direction.size());
      out[prefix_size - 1] = ' ';
    } else {
      std::memcpy(out, buffer_.get() + first_prefix_at, prefix_size);
    }
    out += prefix_size;
    if (replies) {
      const char* reply = std::exchange(p, reply_end(p, end));
      out = write_escaped(out, {reply, static_cast<std::size_t>(p - reply)});
    } else {
      out = write_escaped_line(out, text.data(), p, end);
    }
    *out++ = '\n';
    used_ = static_cast<std::size_t>(out - buffer_.get());
    if (p < end) ++p;  // past the newline
  } while (p < end);
  if (used_ >= flush_threshold) write_out(false);
}

// Writes "2026-11-22T03:04:05.123456Z " into stamp_, reformatting the date once a second.
void Log::stamp(Timestamp at) {
  if (at.seconds != stamp_second_) {
    std::tm tm{};
    std::time_t seconds = at.seconds;
    gmtime_r(&seconds, &tm);
    std::strftime(stamp_, sizeof stamp_, "%Y-%m-%dT%H:%M:%S.", &tm);
    stamp_second_ = at.seconds;
  }
  auto micros = at.nanos / 1000;
  for (int i = 24; i >= 20; i -= 2, micros /= 100)
    std::memcpy(stamp_ + i, &digit_pairs[2 * (micros % 100)], 2);
  stamp_[26] = 'Z';
  stamp_[27] = ' ';
  stamp_[28] = '\0';
}

void Log::write_out(bool all) {
  std::size_t n = used_;
  if (!all) n -= (file_size_ + used_) % write_alignment;
  if (n == 0) return;
  int error = 0;
  std::size_t done = lost_ == 0 || write_lost_count() ? write_fully(buffer_.get(), n, error) : 0;
  if (done > 0) file_mid_line_ = buffer_[done - 1] != '\n';
  if (done < n) {
    // A full disk: what cannot be written is dropped, not retried (the server goes on
    // serving), and counted; the log says how many once it can be written again.
    n = used_;
    lost_ += static_cast<std::uint64_t>(std::count(buffer_.get() + done, buffer_.get() + n, '\n'));
    if (failed_errno_ == 0 && error != 0) {
      failed_errno_ = error;
      // stdio, not fmt::print, which would throw if stderr is on the full disk too.
      std::fprintf(stderr,
                   "herd-server: cannot write the log file %s: %s; entries are dropped until it "
                   "can be written again, then the log says how many\n",
                   path_.c_str(), std::strerror(error));
    }
  }
  std::memmove(buffer_.get(), buffer_.get() + n, used_ - n);
  used_ -= n;
}

std::size_t Log::write_fully(const char* data, std::size_t size, int& error) {
  std::size_t done = 0;
  while (done < size) {
    auto written = ::write(file_, data + done, size - done);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      error = written < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(written);
    file_size_ += static_cast<std::size_t>(written);
    bytes_written_.fetch_add(static_cast<std::uint64_t>(written), std::memory_order_relaxed);
  }
  return done;
}

bool Log::write_lost_count() {
  stamp(now());
  auto line = fmt::format("{}{}log - {} entries lost: the log file could not be written ({})\n",
                          file_mid_line_ ? "\n" : "", stamp_, lost_, std::strerror(failed_errno_));
  int error = 0;
  auto done = write_fully(line.data(), line.size(), error);
  if (done > 0) file_mid_line_ = line[done - 1] != '\n';
  if (done < line.size()) return false;
  lost_ = 0;
  failed_errno_ = 0;
  return true;
}

void Log::flush() {
  std::lock_guard lock(mutex_);
  write_out(true);
}

std::optional<std::string> Log::reopen() {
  std::lock_guard lock(mutex_);
  write_out(true);
  auto fresh = open_for_append(path_);
  if (fresh.fd < 0) return fmt::format("cannot open {}: {}", path_.string(), std::strerror(errno));
  ::close(file_);
  adopt(fresh.fd, fresh.size, fresh.ends_mid_line);
  return std::nullopt;
}

}  // namespace herd
