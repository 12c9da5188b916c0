// Every request the fake receives, kept for tests to read back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "http.hpp"
#include "json.hpp"

namespace fake_places {

class Recorder {
 public:
  explicit Recorder(std::size_t capacity) : capacity_(capacity) {}

  // Also appends each request to `path`, one JSON object a line.
  bool open_file(const std::string& path) {
    file_.reset(std::fopen(path.c_str(), "a"));
    return file_ != nullptr;
  }

  void record(const http::Request& request, std::uint64_t connection, std::int64_t received_ms) {
    std::string entry;
    entry.reserve(request.head.size() + request.body().size() + 128);
    JsonWriter json(entry, compact_style);
    json.object();
    json.member("seq", ++sequence_);
    json.member("connection", connection);
    json.member("received_ms", received_ms);
    json.member("method", request.method);
    json.key("path");
    write_bytes(json, request.target);
    write_headers(json, request);
    json.key("body");
    write_bytes(json, request.body());
    json.end();

    if (file_) {
      std::fwrite(entry.data(), 1, entry.size(), file_.get());
      std::fputc('\n', file_.get());
      unflushed_ = true;
    }
    if (entries_.size() == capacity_) entries_.pop_front();
    entries_.push_back(std::move(entry));
  }

  // Pushes recorded lines to the file: once per batch of requests, before any of them is answered.
  void flush() {
    if (unflushed_) std::fflush(file_.get());
    unflushed_ = false;
  }

  // A JSON array, oldest first.
  std::string requests_json() const {
    if (entries_.empty()) return "[]\n";
    std::size_t size = 4;
    for (const auto& entry : entries_) size += entry.size() + 2;
    std::string out;
    out.reserve(size);
    out += "[\n";
    for (const auto& entry : entries_) {
      if (out.size() > 2) out += ",\n";
      out += entry;
    }
    out += "\n]\n";
    return out;
  }

  // Forgets the requests, not the sequence numbers; returns how many it forgot.
  std::size_t reset() { return std::exchange(entries_, {}).size(); }

 private:
  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };

  // Bytes that are not UTF-8 are written as the code points of the same value (Latin-1).
  static void write_bytes(JsonWriter& json, std::string_view bytes) {
    if (simdjson::validate_utf8(bytes.data(), bytes.size())) {
      json.value(bytes);
      return;
    }
    std::string text;
    for (char c : bytes) {
      auto byte = static_cast<unsigned char>(c);
      if (byte < 0x80) {
        text += c;
      } else {
        text += static_cast<char>(0xc0 | (byte >> 6));
        text += static_cast<char>(0x80 | (byte & 0x3f));
      }
    }
    json.value(text);
  }

  // Names in lower case; a repeated header joined with ", " as HTTP allows.
  static void write_headers(JsonWriter& json, const http::Request& request) {
    std::vector<std::pair<std::string, std::string>> headers;
    for (const http::Header& header : request) {
      std::string name(header.name);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
      auto same = std::find_if(headers.begin(), headers.end(),
                               [&](const auto& h) { return h.first == name; });
      if (same == headers.end()) {
        headers.emplace_back(std::move(name), header.value);
      } else {
        same->second.append(", ").append(header.value);
      }
    }
    json.key("headers").object();
    for (const auto& [name, value] : headers) {
      json.key(name);
      write_bytes(json, value);
    }
    json.end();
  }

  std::size_t capacity_;
  std::deque<std::string> entries_;  // compact JSON objects
  std::uint64_t sequence_ = 0;
  std::unique_ptr<std::FILE, FileCloser> file_;
  bool unflushed_ = false;
};

}  // namespace fake_places
