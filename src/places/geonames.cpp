#include "places/geonames.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include "places/legacy_json.hpp"

namespace herd::places {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail_with_errno(const std::filesystem::path& data, const char* what) {
  throw std::runtime_error(fmt::format("{}: {} ({})", data.string(), what, std::strerror(errno)));
}

// What shows without reading the file, so that the server refuses to start over it.
void check_usable(const std::filesystem::path& data) {
  struct stat about {};
  if (::stat(data.c_str(), &about) != 0 || ::access(data.c_str(), R_OK) != 0)
    fail_with_errno(data, "cannot open");
  if (S_ISDIR(about.st_mode))
    throw std::runtime_error(fmt::format("{}: is a directory", data.string()));
  if (S_ISREG(about.st_mode) && about.st_size == 0)
    throw std::runtime_error(fmt::format("{}: empty file, no records", data.string()));
}

struct Descriptor {
  int fd;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// All of `data`; nullopt once `stop` is requested. poll() keeps a pipe that nobody writes
// (a FIFO as the data) from holding up the server's exit.
std::optional<std::string> read_all(const std::filesystem::path& data, std::stop_token stop) {
  Descriptor file{::open(data.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  if (file.fd < 0) fail_with_errno(data, "cannot open");
  Descriptor wake{::eventfd(0, EFD_CLOEXEC)};
  if (wake.fd < 0) fail_with_errno(data, "cannot wait to read");
  std::stop_callback on_stop(stop, [fd = wake.fd] {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
  });
  constexpr std::size_t chunk = 1 << 20;
  struct stat about {};
  std::string bytes;
  if (::fstat(file.fd, &about) == 0 && S_ISREG(about.st_mode))
    bytes.reserve(static_cast<std::size_t>(about.st_size) + chunk);
  for (;;) {
    pollfd ready[2] = {{file.fd, POLLIN, 0}, {wake.fd, POLLIN, 0}};
    if (::poll(ready, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail_with_errno(data, "cannot wait to read");
    }
    if (ready[1].revents != 0) return std::nullopt;
    auto size = bytes.size();
    bytes.resize(size + chunk);
    auto n = ::read(file.fd, bytes.data() + size, chunk);
    bytes.resize(size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n == 0) return bytes;
    if (n < 0 && errno != EAGAIN && errno != EINTR) fail_with_errno(data, "read error");
  }
}

// What the calling thread has run so far: the load's own cost, whatever else the machine runs.
std::chrono::milliseconds thread_cpu_time() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return std::chrono::milliseconds(t.tv_sec * 1000 + t.tv_nsec / 1'000'000);
}

std::string error_reply(std::string status, std::string message) {
  PlacesReply reply;
  reply.status = std::move(status);
  reply.error_message = std::move(message);
  return to_legacy_json(reply);
}

std::string answer(const Gazetteer& gazetteer, const NearbyQuery& query) {
  PlacesReply reply;
  reply.html_attributions.push_back(
      "Places from <a href=\"https://www.geonames.org/\">GeoNames</a>, CC BY 4.0");
  for (const City* city : gazetteer.nearby(query.lat, query.lng, query.radius_km, query.bound)) {
    Place place;
    place.name = city->name;
    place.lat = city->lat;
    place.lng = city->lng;
    place.place_id = fmt::format("geonames:{}", city->id);
    place.vicinity = fmt::format("{}, {}, {}", city->name, city->admin_code, city->country);
    place.types = {"locality", "political"};
    reply.results.push_back(std::move(place));
  }
  reply.status = reply.results.empty() ? "ZERO_RESULTS" : "OK";
  return to_legacy_json(reply);
}

}  // namespace

GeonamesProvider::GeonamesProvider(asio::io_context& io, std::filesystem::path data,
                                   std::chrono::milliseconds wait, Log& log)
    : data_(std::move(data)),
      wait_(wait),
      log_(log),
      strand_(asio::make_strand(io)),
      deadline_timer_(strand_) {
  check_usable(data_);
}

GeonamesProvider::~GeonamesProvider() = default;

void GeonamesProvider::start(std::function<void(std::string)> failed) {
  on_failure_ = std::move(failed);
  loader_ = std::jthread([this](std::stop_token stop) { load(std::move(stop)); });
}

void GeonamesProvider::load(std::stop_token stop) {
  auto started = Clock::now();
  try {
    auto bytes = read_all(data_, stop);
    if (!bytes) return;
    auto gazetteer = std::make_shared<std::unique_ptr<const Gazetteer>>(
        std::make_unique<const Gazetteer>(Gazetteer::decode(data_, *bytes)));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    asio::post(strand_, [this, gazetteer, took, cpu = thread_cpu_time()] {
      loaded(std::move(*gazetteer), took, cpu);
    });
  } catch (const std::exception& e) {
    asio::post(strand_, [this, why = std::string(e.what())] { failed_to_load(why); });
  }
}

void GeonamesProvider::nearby(const NearbyQuery& query, std::function<void(std::string)> done) {
  if (const Gazetteer* gazetteer = ready_.load(std::memory_order_acquire))
    return done(answer(*gazetteer, query));
  asio::dispatch(strand_,
                 [this, waiter = Waiter{query, std::move(done), Clock::now() + wait_}]() mutable {
                   wait_for_load(std::move(waiter));
                 });
}

void GeonamesProvider::wait_for_load(Waiter waiter) {
  if (gazetteer_) return waiter.done(answer(*gazetteer_, waiter.query));
  if (stopped_) return waiter.done(error_reply("UNKNOWN_ERROR", "the server is shutting down"));
  if (failure_)
    return waiter.done(error_reply("UNKNOWN_ERROR", "the places data could not be loaded"));
  waiting_.push_back(std::move(waiter));
  if (waiting_.size() == 1) wait_for_first_deadline();
}

void GeonamesProvider::wait_for_first_deadline() {
  deadline_timer_.expires_at(waiting_.front().deadline);
  deadline_timer_.async_wait([this](const asio::error_code& error) {
    if (!error) expire_waiters();
  });
}

void GeonamesProvider::expire_waiters() {
  auto now = Clock::now();
  while (!waiting_.empty() && waiting_.front().deadline <= now) {
    waiting_.front().done(
        error_reply("UNKNOWN_ERROR",
                    fmt::format("the places data is still loading after {} ms", wait_.count())));
    waiting_.pop_front();
  }
  if (!waiting_.empty()) wait_for_first_deadline();
}

void GeonamesProvider::loaded(std::unique_ptr<const Gazetteer> gazetteer,
                              std::chrono::milliseconds took, std::chrono::milliseconds cpu) {
  gazetteer_ = std::move(gazetteer);
  ready_.store(gazetteer_.get(), std::memory_order_release);
  log_.event(
      "places",
      fmt::format("{} places loaded from {} in {} ms ({} ms of CPU); lookups that waited: {}",
                  gazetteer_->size(), data_.string(), took.count(), cpu.count(), waiting_.size()));
  deadline_timer_.cancel();
  // Answered off the strand, so that with several threads they are written at once.
  for (auto& waiter : waiting_)
    asio::post(strand_.get_inner_executor(), [g = gazetteer_.get(), waiter = std::move(waiter)] {
      waiter.done(answer(*g, waiter.query));
    });
  waiting_.clear();
}

void GeonamesProvider::failed_to_load(std::string why) {
  failure_ = why;
  answer_waiters("UNKNOWN_ERROR", "the places data could not be loaded");
  if (on_failure_ && !stopped_) on_failure_(std::move(why));
}

void GeonamesProvider::answer_waiters(const std::string& status, const std::string& message) {
  deadline_timer_.cancel();
  for (auto& waiter : waiting_) waiter.done(error_reply(status, message));
  waiting_.clear();
}

void GeonamesProvider::shutdown() {
  loader_.request_stop();
  asio::dispatch(strand_, [this] {
    if (stopped_) return;
    stopped_ = true;
    answer_waiters("UNKNOWN_ERROR", "the server is shutting down");
  });
}

// An installed program first takes the data installed beside it (BINDIR/../share/herd), so
// that an install moved elsewhere (meson install --destdir, a tarball) still finds its own.
std::vector<std::filesystem::path> default_geonames_paths() {
  std::vector<std::filesystem::path> paths;
  std::error_code error;
  auto program = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error && *HERD_DATA_FROM_BINDIR)
    paths.push_back(
        (program.parent_path() / HERD_DATA_FROM_BINDIR / "cities.pbf").lexically_normal());
  paths.push_back(std::filesystem::path(HERD_DATA_DIR) / "geonames" / "cities.pbf");
  paths.push_back(std::filesystem::path(HERD_INSTALLED_DATA_DIR) / "cities.pbf");
  return paths;
}

}  // namespace herd::places
