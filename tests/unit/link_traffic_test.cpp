#include <catch2/catch.hpp>

#include "link_traffic.hpp"

using herd::LinkTraffic;
using namespace std::chrono_literals;

TEST_CASE("a link's traffic is one line every few seconds, and only when there was some",
          "[link_traffic]") {
  LinkTraffic::Clock::time_point start{};
  LinkTraffic traffic(start);
  CHECK_FALSE(traffic.summary(start + 60s));  // nothing crossed the link
  CHECK_FALSE(traffic.summary(start + 60s, true));
  for (int i = 0; i < 1'000'000; ++i) {  // a catch-up: a million records, one summary
    ++traffic.in.records;
    traffic.in.bytes += 60;
  }
  traffic.changed = 999'000;
  traffic.in.acks = 3;
  traffic.out.records = traffic.out.puts = 2;
  traffic.out.acks = 1;
  traffic.out.bytes = 150;
  CHECK_FALSE(traffic.summary(start + 4s));  // not yet
  CHECK(traffic.summary(start + 5s) ==
        "traffic in 5.0 s: received 1000000 records (0 PUTs, 999000 changed the store), 3 ACKs, "
        "60000000 bytes; sent 2 records (2 PUTs), 1 ACKs, 150 bytes");
  CHECK_FALSE(traffic.summary(start + 60s));  // counting started afresh
  traffic.in.records = traffic.in.puts = 1;
  traffic.in.bytes = 70;
  traffic.refused = 2;
  CHECK_FALSE(traffic.summary(start + 6s));   // 1 s after the last summary
  CHECK(traffic.summary(start + 6s, true) ==  // the link went down: what is left, at once
        "traffic in 1.0 s: received 1 records (1 PUTs, 0 changed the store), 0 ACKs, 70 bytes, "
        "2 refused; sent 0 records (0 PUTs), 0 ACKs, 0 bytes");
}
