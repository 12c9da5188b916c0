#include "log.hpp"

#include <cerrno>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace herd {
namespace {
constexpr std::size_t flush_threshold = 256 * 1024;

bool plain(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u != 0x7f && c != '\\';
}

// The first byte that needs escaping (a control character, DEL or a backslash), or `end`.
// Every line logged goes through here, so it looks at sixteen bytes at a time.
const char* find_special(const char* p, const char* end) {
#ifdef __SSE2__
  const __m128i below_space = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f),
                backslash = _mm_set1_epi8('\\');
  for (; end - p >= 16; p += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);
    __m128i special =
        _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(v, backslash)));
    if (int mask = _mm_movemask_epi8(special))
      return p + __builtin_ctz(static_cast<unsigned>(mask));
  }
#endif
  while (p < end && plain(*p)) ++p;
  return p;
}
}  // namespace

char* write_escaped(char* out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const char* run = p;
    p = find_special(p, end);
    std::memcpy(out, run, static_cast<std::size_t>(p - run));  // the common case: all of it
    out += p - run;
    if (p == end) break;
    auto u = static_cast<unsigned char>(*p++);
    *out++ = '\\';
    if (u == '\\') {
      *out++ = '\\';
    } else {
      *out++ = 'x';
      *out++ = hex[u >> 4];
      *out++ = hex[u & 15];
    }
  }
  return out;
}

void append_escaped(std::string& out, std::string_view text) {
  auto size = out.size();
  out.resize(size + 4 * text.size());
  out.resize(static_cast<std::size_t>(write_escaped(out.data() + size, text) - out.data()));
}

Log::Log(const std::filesystem::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  file_ = std::fopen(file.c_str(), "ab");
  if (!file_)
    throw std::runtime_error(
        fmt::format("cannot open log file {}: {}", file.string(), std::strerror(errno)));
  capacity_ = flush_threshold * 2;
  buffer_ = std::make_unique<char[]>(capacity_);
}

Log::~Log() {
  flush();
  std::fclose(file_);
}

namespace {
Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<std::int32_t>(ts.tv_nsec)};
}
}  // namespace

void Log::received(std::string_view who, std::string_view text) {
  append(who, "<", text, now());
}
void Log::received(std::string_view who, std::string_view text, Timestamp at) {
  append(who, "<", text, at);
}
void Log::sent(std::string_view who, std::string_view text) {
  append(who, ">", text, now());
}
void Log::event(std::string_view who, std::string_view text) {
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
                 Timestamp at) {
  std::lock_guard lock(mutex_);
  stamp(at);
  // "timestamp who direction " starts every line of the entry.
  const std::size_t prefix_size = 28 + who.size() + direction.size() + 2;
  do {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    char* out = room_for(prefix_size + 4 * line.size() + 1);
    std::memcpy(out, stamp_, 28);
    std::memcpy(out + 28, who.data(), who.size());
    out += 28 + who.size();
    *out++ = ' ';
    std::memcpy(out, direction.data(), direction.size());
    out += direction.size();
    *out++ = ' ';
    out = write_escaped(out, line);
    *out++ = '\n';
    used_ = static_cast<std::size_t>(out - buffer_.get());
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  } while (!text.empty());
  if (used_ >= flush_threshold) write_out();
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
  for (int i = 25; i >= 20; --i, micros /= 10) stamp_[i] = static_cast<char>('0' + micros % 10);
  stamp_[26] = 'Z';
  stamp_[27] = ' ';
  stamp_[28] = '\0';
}

void Log::write_out() {
  if (used_ > 0) std::fwrite(buffer_.get(), 1, used_, file_);
  std::fflush(file_);
  used_ = 0;
}

void Log::flush() {
  std::lock_guard lock(mutex_);
  write_out();
}

}  // namespace herd
