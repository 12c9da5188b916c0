#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store_file.hpp"

using namespace herd;

namespace {

const std::string first = "AT Goloman +0.1 a.example +1+1 1.0";
const std::string second = "AT Hands +0.2 b.example +2+2 2.0";
const std::string third = "AT Welsh +0.3 c.example +3+3 3.0";

std::string file_of(const std::vector<std::string>& lines) {
  std::string bytes;
  for (const auto& line : lines) append_record(bytes, line);
  return bytes;
}

struct Read {
  Scan scan;
  std::vector<std::string> lines;
};

Read read(std::string_view bytes) {
  Read r;
  r.scan = scan_records(bytes, [&](std::string_view line) {
    r.lines.emplace_back(line);
    return line.starts_with("AT ");
  });
  return r;
}

}  // namespace

TEST_CASE("a record is the CRC-32 of its AT line in hex, the line, a newline", "[store_file]") {
  std::string bytes;
  append_record(bytes, "AT x");
  CHECK(bytes == "a203bb84 AT x\n");  // zlib.crc32(b"AT x")
  CHECK(bytes.size() == record_bytes("AT x"));
  auto r = read(file_of({first, second, third}));
  CHECK(r.scan.end == Scan::End::clean);
  CHECK(r.scan.records == 3);
  CHECK(r.lines == std::vector{first, second, third});
  CHECK(read("").scan.end == Scan::End::clean);
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
      {0, 'g', "not a record (expected \"CRC32 AT ...\")"},        // in the checksum
      {8, '-', "not a record (expected \"CRC32 AT ...\")"},        // the separator
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
  CHECK(n.scan.problem == "not an AT line");
  CHECK(n.scan.good_bytes == at);
  // An empty line in the middle.
  auto empty = file_of({first}) + "\n" + file_of({third});
  CHECK(read(empty).scan.end == Scan::End::corrupt);
}
