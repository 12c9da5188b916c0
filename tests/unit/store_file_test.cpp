#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "store_file.hpp"

using namespace herd;

namespace {

const std::string first = "AT Goloman +0.1 a.example +1+1 1.0";
const std::string second = "AT Hands +0.2 b.example +2+2 2.0";
const std::string third = "AT Welsh +0.3 c.example +3+3 3.0";

// Records numbered 1, 2, 3, ... in file order.
std::string file_of(const std::vector<std::string>& lines) {
  std::string bytes;
  std::uint64_t changed = 0;
  for (const auto& line : lines) append_record(bytes, ++changed, line);
  return bytes;
}

struct Read {
  Scan scan;
  std::vector<std::string> lines;  // the records' AT lines
  std::vector<std::uint64_t> changed;
  std::vector<std::string> resume_points;  // "NEIGHBOR EPOCH SEQ"
};

Read read(std::string_view bytes) {
  Read r;
  r.scan = scan_records(bytes, [&](std::string_view payload) {
    auto stored = parse_stored(payload);
    if (auto record = std::get_if<StoredRecord>(&stored)) {
      r.lines.emplace_back(record->at_line);
      r.changed.push_back(record->changed);
      return true;
    }
    if (auto point = std::get_if<StoredResumePoint>(&stored)) {
      r.resume_points.push_back(fmt::format("{} {:x} {}", point->neighbor, point->epoch, point->seq));
      return true;
    }
    return false;
  });
  return r;
}

}  // namespace

TEST_CASE("a record is the CRC-32 of its payload in hex, the change's number, the AT line",
          "[store_file]") {
  std::string bytes;
  append_record(bytes, 42, "AT x");
  CHECK(bytes == "ca74b305 42 AT x\n");  // zlib.crc32(b"42 AT x")
  CHECK(bytes.size() <= record_bytes("AT x"));
  auto r = read(file_of({first, second, third}));
  CHECK(r.scan.end == Scan::End::clean);
  CHECK(r.scan.records == 3);
  CHECK(r.lines == std::vector{first, second, third});
  CHECK(r.changed == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(read("").scan.end == Scan::End::clean);
}

TEST_CASE("a resume point is a line of its own, after the records it covers", "[store_file]") {
  std::string bytes;
  append_resume_point(bytes, "Hands", 0x00c0ffee12345678u, 300000);
  CHECK(bytes == "194a7b6e SYNCED Hands 00c0ffee12345678 300000\n");
  auto whole = file_of({first, second}) + bytes;
  append_record(whole, 3, third);
  auto r = read(whole);
  CHECK(r.scan.end == Scan::End::clean);
  CHECK(r.scan.records == 4);
  CHECK(r.lines == std::vector{first, second, third});
  CHECK(r.resume_points == std::vector<std::string>{"Hands c0ffee12345678 300000"});
}

TEST_CASE("payloads that are neither a record nor a resume point", "[store_file]") {
  auto payload = GENERATE(as<std::string_view>{}, "AT x", "0 AT x", "x AT x", "-1 AT x",
                          "+1 AT x", "18446744073709551616 AT x", "1 PUT 1 AT x", "1", "",
                          "SYNCED Hands 00c0ffee12345678", "SYNCED Hands - 1",
                          "SYNCED Hands 00c0ffee12345678 x", "SYNCED Hands 00c0ffee12345678 1 2",
                          "SYNCED Hands c0ffee 1", "synced Hands 00c0ffee12345678 1");
  CAPTURE(payload);
  CHECK(std::holds_alternative<std::monostate>(parse_stored(payload)));
}

TEST_CASE("a torn last record is dropped: what comes before it is kept", "[store_file]") {
  auto whole = file_of({first, second, third});
  auto good = file_of({first, second}).size();
  // Cut anywhere inside the last record: no newline, a short line, a wrong checksum.
  for (std::size_t cut = good + 1; cut < whole.size(); ++cut) {
    CAPTURE(cut);
    auto r = read(std::string_view(whole).substr(0, cut));
    CHECK(r.scan.end == Scan::End::torn);
    CHECK(r.scan.good_bytes == good);
    CHECK(r.scan.records == 2);
    CHECK(r.lines == std::vector{first, second});
  }
  // A whole last line with garbage in it (a page the crash left half written) is torn too.
  auto garbled = whole;
  garbled[whole.size() - 5] = 'X';
  auto r = read(garbled);
  CHECK(r.scan.end == Scan::End::torn);
  CHECK(r.scan.problem == "checksum mismatch");
  CHECK(r.scan.good_bytes == good);
}

TEST_CASE("a bad record with records after it is corruption, at its offset", "[store_file]") {
  auto whole = file_of({first, second, third});
  auto at = file_of({first}).size();
  struct Case {
    std::size_t offset;  // from the start of the second record
    char byte;
    std::string_view problem;
  };
  auto c = GENERATE(values<Case>({
      {12, 'Z', "checksum mismatch"},                              // in the AT line
      {0, 'g', "not a line of the store (expected \"CRC32 PAYLOAD\")"},  // in the checksum
      {8, '-', "not a line of the store (expected \"CRC32 PAYLOAD\")"},  // the separator
  }));
  auto bytes = whole;
  bytes[at + c.offset] = c.byte;
  auto r = read(bytes);
  CHECK(r.scan.end == Scan::End::corrupt);
  CHECK(r.scan.good_bytes == at);
  CHECK(r.scan.records == 1);
  CHECK(r.scan.problem == c.problem);

  // A line with a good checksum that the caller cannot use is bad too.
  auto not_at = file_of({first, "PUT 1 AT x", third});
  auto n = read(not_at);
  CHECK(n.scan.end == Scan::End::corrupt);
  CHECK(n.scan.problem == "not a record or a resume point");
  CHECK(n.scan.good_bytes == at);
  // An empty line in the middle.
  auto empty = file_of({first}) + "\n" + file_of({third});
  CHECK(read(empty).scan.end == Scan::End::corrupt);
}

namespace {

// A directory of its own under the system's temporary one, removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    auto tmpl = (std::filesystem::temp_directory_path() / "herd-store-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<std::string> load_all(StoreFile& file) {
  std::vector<std::string> lines;
  file.load([&](std::string_view line) {
    lines.emplace_back(line);
    return true;
  });
  return lines;
}

}  // namespace

TEST_CASE("opening a file drops its torn last record before anything is appended",
          "[store_file]") {
  TempDir dir;
  Log log(dir.path / "test.log");
  auto records = dir.path / "s" / "records";
  auto whole = file_of({first, second});
  struct Case {
    std::string bytes;
    std::size_t kept;
  };
  auto torn = file_of({third});
  auto bad_crc = torn;
  bad_crc[20] = 'X';
  auto c = GENERATE_COPY(values<Case>({
      {whole, whole.size()},                                    // clean
      {whole + torn.substr(0, 12), whole.size()},               // no newline at the end
      {whole + bad_crc, whole.size()},                          // a checksum that does not match
      {torn.substr(0, 12), 0},                                  // one torn record, nothing else
      {"", 0},                                                  // empty
      {whole + std::string(100000, 'z'), whole.size()},         // a long torn tail
  }));
  write_file(records, c.bytes);
  {
    StoreFile file(dir.path / "s", StoreConfig::Fsync::always, log, [](std::uint64_t) {});
    CHECK(std::filesystem::file_size(records) == c.kept);
    file.append(3, third);  // appended while the load runs, or before it
    CHECK(load_all(file).size() == c.kept / (whole.size() / 2));
  }
  // Reopened: what was kept, then the appended record, nothing torn.
  StoreFile again(dir.path / "s", StoreConfig::Fsync::always, log, [](std::uint64_t) {});
  auto lines = load_all(again);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back() == "3 " + third);
  CHECK(std::filesystem::file_size(records) == c.kept + torn.size());
}

TEST_CASE("a load names the offset of a bad record with records after it", "[store_file]") {
  TempDir dir;
  Log log(dir.path / "test.log");
  auto bytes = file_of({first, second, third});
  bytes[file_of({first}).size() + 3] ^= 1;  // the second record's checksum
  write_file(dir.path / "s" / "records", bytes);
  StoreFile file(dir.path / "s", StoreConfig::Fsync::no, log, [](std::uint64_t) {});
  CHECK_THROWS_WITH(load_all(file),
                    Catch::Contains(fmt::format("corrupt record at byte {}", file_of({first}).size())));
}
