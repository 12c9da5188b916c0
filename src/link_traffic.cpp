#include "link_traffic.hpp"

#include <fmt/format.h>

namespace herd {

std::optional<std::string> LinkTraffic::summary(Clock::time_point now, bool final) {
  bool counted = in.records || in.acks || in.bytes || out.records || out.acks || out.bytes;
  if (!counted || (!final && now - since_ < interval)) return std::nullopt;
  std::chrono::duration<double> took = now - since_;
  auto line = fmt::format(
      "traffic in {:.1f} s: received {} records ({} PUTs, {} changed the store), {} ACKs, {} "
      "bytes",
      took.count(), in.records, in.puts, changed, in.acks, in.bytes);
  if (refused) line += fmt::format(", {} refused", refused);
  line += fmt::format("; sent {} records ({} PUTs), {} ACKs, {} bytes", out.records, out.puts,
                      out.acks, out.bytes);
  *this = LinkTraffic(now);
  return line;
}

}  // namespace herd
