#include "log.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

namespace herd {
namespace {
constexpr std::size_t flush_threshold = 256 * 1024;

// Eight bytes at a time: none is a control character, DEL or a backslash.
bool all_plain(const char* p) {
  constexpr std::uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  auto has_zero = [&](std::uint64_t v) { return (v - ones) & ~v & highs; };
  auto has_less_than_space = (w - ones * 0x20) & ~w & highs;
  return !(has_less_than_space | has_zero(w ^ (ones * 0x7f)) | has_zero(w ^ (ones * '\\')));
}
}  // namespace

void append_escaped(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  auto plain = [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f && c != '\\';
  };
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const char* run = p;
    while (end - p >= 8 && all_plain(p)) p += 8;
    while (p < end && plain(*p)) ++p;
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

Log::Log(const std::filesystem::path& file) : path_(file) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  file_ = std::fopen(file.c_str(), "ab");
  if (!file_)
    throw std::runtime_error(fmt::format("cannot open log file {}: {}", file.string(), std::strerror(errno)));
  buffer_.reserve(flush_threshold * 2);
}

Log::~Log() {
  flush();
  std::fclose(file_);
}

void Log::received(std::string_view who, std::string_view text) { append(who, "<", text); }
void Log::sent(std::string_view who, std::string_view text) { append(who, ">", text); }
void Log::event(std::string_view who, std::string_view text) { append(who, "-", text); }

void Log::append(std::string_view who, std::string_view direction, std::string_view text) {
  std::lock_guard lock(mutex_);
  stamp();
  do {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    buffer_.append(stamp_).append(who).append(" ").append(direction).append(" ");
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
  fmt::format_to(stamp_ + 20, "{:06}Z ", now.tv_nsec / 1000);
  stamp_[28] = '\0';
}

void Log::flush() {
  std::lock_guard lock(mutex_);
  if (!buffer_.empty()) std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
  std::fflush(file_);
  buffer_.clear();
}

}  // namespace herd
