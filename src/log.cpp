#include "log.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

namespace herd {
namespace {
constexpr std::size_t flush_threshold = 256 * 1024;
}

void append_escaped(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f && c != '\\') {
      out.push_back(c);
    } else if (c == '\\') {
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
  do {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    stamp();
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
