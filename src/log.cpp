#include "log.hpp"

#include <cerrno>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
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

void append_escaped(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const char* run = p;
    p = find_special(p, end);
    out.append(run, static_cast<std::size_t>(p - run));  // the common case: all of it
    if (p == end) break;
    auto u = static_cast<unsigned char>(*p++);
    if (u == '\\') {
      out.append("\\\\");
    } else {
      char escaped[4] = {'\\', 'x', hex[u >> 4], hex[u & 15]};
      out.append(escaped, 4);
    }
  }
}

Log::Log(const std::filesystem::path& file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  file_ = std::fopen(file.c_str(), "ab");
  if (!file_)
    throw std::runtime_error(
        fmt::format("cannot open log file {}: {}", file.string(), std::strerror(errno)));
  buffer_.reserve(flush_threshold * 2);
}

Log::~Log() {
  flush();
  std::fclose(file_);
}

void Log::received(std::string_view who, std::string_view text) {
  append(who, "<", text);
}
void Log::sent(std::string_view who, std::string_view text) {
  append(who, ">", text);
}
void Log::event(std::string_view who, std::string_view text) {
  append(who, "-", text);
}

void Log::append(std::string_view who, std::string_view direction, std::string_view text) {
  std::lock_guard lock(mutex_);
  stamp();
  // "timestamp who direction " starts every line of the entry; later lines copy the first's.
  const auto prefix_at = buffer_.size();
  buffer_.append(stamp_, 28).append(who).append(" ").append(direction).append(" ");
  const auto prefix_size = buffer_.size() - prefix_at;
  bool first = true;
  do {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    if (!std::exchange(first, false)) buffer_.append(buffer_, prefix_at, prefix_size);
    append_escaped(buffer_, line);
    buffer_.push_back('\n');
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  } while (!text.empty());
  if (buffer_.size() >= flush_threshold) {
    std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
    std::fflush(file_);
    buffer_.clear();
  }
}

// Writes "2026-11-22T03:04:05.123456Z " into stamp_, reformatting the date once a second.
void Log::stamp() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  if (now.tv_sec != stamp_second_) {
    std::tm tm{};
    gmtime_r(&now.tv_sec, &tm);
    std::strftime(stamp_, sizeof stamp_, "%Y-%m-%dT%H:%M:%S.", &tm);
    stamp_second_ = now.tv_sec;
  }
  auto micros = now.tv_nsec / 1000;
  for (int i = 25; i >= 20; --i, micros /= 10) stamp_[i] = static_cast<char>('0' + micros % 10);
  stamp_[26] = 'Z';
  stamp_[27] = ' ';
  stamp_[28] = '\0';
}

void Log::flush() {
  std::lock_guard lock(mutex_);
  if (!buffer_.empty()) std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
  std::fflush(file_);
  buffer_.clear();
}

}  // namespace herd
