// What the fake answers to a request: routes, fault modes and the recorded-requests endpoints.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "front_end.hpp"
#include "google_api.hpp"
#include "http.hpp"
#include "legacy_api.hpp"
#include "new_api.hpp"
#include "recorder.hpp"

namespace fake_places {

enum class Mode { ok, zero, denied, quota, invalid, unavailable, garbage, hang, slow, close };

inline constexpr std::array<std::string_view, 10> mode_table{
    "ok", "zero", "denied", "quota", "invalid", "5xx", "garbage", "hang", "slow", "close"};
inline constexpr std::string_view mode_names =
    "ok zero denied quota invalid 5xx garbage hang slow close";

inline std::optional<Mode> parse_mode(std::string_view name) {  // "5xx" is Mode::unavailable
  for (std::size_t i = 0; i < mode_table.size(); ++i) {
    if (mode_table[i] == name) return static_cast<Mode>(i);
  }
  return std::nullopt;
}

inline Fault fault_of(Mode mode) {
  if (mode == Mode::zero) return Fault::zero;
  if (mode == Mode::denied) return Fault::denied;
  if (mode == Mode::quota) return Fault::quota;
  if (mode == Mode::invalid) return Fault::invalid;
  return Fault::none;
}

struct Options {
  std::string key = "test-key";
  Mode mode = Mode::ok;
  std::chrono::milliseconds delay{1000};
};

class Service {
 public:
  Service(Options options, Recorder& recorder)
      : options_(std::move(options)), recorder_(recorder) {}

  Reply handle(const http::Request& request, std::uint64_t connection, std::int64_t received_ms) {
    if (auto reply = control(request)) return std::move(*reply);
    recorder_.record(request, connection, received_ms);

    std::string_view path = request.path();
    Mode mode = options_.mode;
    if (path.starts_with("/_mode/")) {
      path.remove_prefix(7);
      auto slash = path.find('/');
      auto name = path.substr(0, slash);
      auto chosen = parse_mode(name);
      if (!chosen) {
        return front_end::page(
            400, front_end::text_type, front_end::fake_server,
            fmt::format("fake_places: unknown mode \"{}\"; modes are: {}\n", name, mode_names));
      }
      mode = *chosen;
      path = slash == std::string_view::npos ? "/" : path.substr(slash);
    }
    std::string decoded;
    if (path.find('%') != std::string_view::npos) {
      path = decoded = http::percent_decode(path, false);
    }
    if (request.method == "GET" && path == legacy_path) return answer(Api::legacy, mode, request);
    if (request.method == "POST" && path == new_path) return answer(Api::places_new, mode, request);
    return front_end::not_found(path);
  }

  // Called once the requests of one read are handled, before they are answered.
  void end_batch() { recorder_.flush(); }

 private:
  enum class Api { legacy, places_new };

  static constexpr std::string_view legacy_path = "/maps/api/place/nearbysearch/json";
  static constexpr std::string_view new_path = "/v1/places:searchNearby";
  static constexpr std::size_t cache_capacity = 4096;
  static constexpr std::size_t cache_max_bytes = 64 * 1024 * 1024;
  static constexpr std::size_t max_cached_request = 8192;

  struct Cached {
    int status;
    std::shared_ptr<const std::string> body;
  };

  std::optional<Reply> control(const http::Request& request) {
    using namespace front_end;
    auto path = request.path();
    if (path != "/_requests" && path != "/_reset") return std::nullopt;
    if (path == "/_requests" && request.method == "GET") {
      return page(200, json_type, fake_server, recorder_.requests_json());
    }
    if (path == "/_reset" && request.method == "POST") {
      return page(200, json_type, fake_server,
                  fmt::format("{{\"cleared\":{}}}\n", recorder_.reset()));
    }
    return page(
        405, text_type, fake_server,
        "fake_places: GET /_requests reads the recorded requests, POST /_reset clears them\n");
  }

  Reply answer(Api api, Mode mode, const http::Request& request) {
    Reply reply;
    if (mode == Mode::hang) reply.action = Reply::Action::hang;
    if (mode == Mode::close) reply.action = Reply::Action::close;
    if (reply.action != Reply::Action::answer) return reply;
    if (mode == Mode::unavailable) return front_end::unavailable();
    if (mode == Mode::garbage) return front_end::garbage(api == Api::legacy);
    if (mode == Mode::slow) reply.delay = options_.delay;
    reply.content_type = front_end::json_type;
    reply.server = api == Api::legacy ? front_end::legacy_server : front_end::new_server;
    reply.body = api_body(api, fault_of(mode), request, reply.status);
    return reply;
  }

  // The APIs are pure functions of the request, so equal requests share one reply body.
  std::shared_ptr<const std::string> api_body(Api api, Fault fault, const http::Request& request,
                                              int& status) {
    places_new::SearchNearbyCall call;
    call.query = request.query();
    if (api == Api::places_new) {
      auto key = request.header("X-Goog-Api-Key");
      auto mask = request.header("X-Goog-FieldMask");
      call.has_api_key_header = key.has_value();
      call.api_key_header = key.value_or(std::string_view());
      call.has_field_mask_header = mask.has_value();
      call.field_mask_header = mask.value_or(std::string_view());
      call.body = request.body();
    }

    cache_key_.clear();
    cache_key_ += static_cast<char>('0' + static_cast<int>(api));
    cache_key_ += static_cast<char>('0' + static_cast<int>(fault));
    cache_key_.append(call.query).append(1, '\0');
    cache_key_.append(call.has_api_key_header ? "k" : "").append(call.api_key_header);
    cache_key_.append(1, '\0');
    cache_key_.append(call.has_field_mask_header ? "m" : "").append(call.field_mask_header);
    cache_key_.append(1, '\0').append(call.body);
    if (auto hit = cache_.find(cache_key_); hit != cache_.end()) {
      status = hit->second.status;
      return hit->second.body;
    }

    ApiReply reply = api == Api::legacy ? legacy::nearby_search(call.query, options_.key, fault)
                                        : places_new::search_nearby(call, options_.key, fault);
    status = reply.status;
    auto body = front_end::shared(std::move(reply.body));
    if (cache_key_.size() <= max_cached_request) {
      if (cache_.size() == cache_capacity || cache_bytes_ + body->size() > cache_max_bytes) {
        cache_.clear();
        cache_bytes_ = 0;
      }
      cache_.emplace(cache_key_, Cached{status, body});
      cache_bytes_ += cache_key_.size() + body->size();
    }
    return body;
  }

  Options options_;
  Recorder& recorder_;
  std::unordered_map<std::string, Cached> cache_;
  std::size_t cache_bytes_ = 0;
  std::string cache_key_;
};

}  // namespace fake_places
