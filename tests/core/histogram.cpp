#include "conveyor/core/histogram.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;

TEST_CASE("latency_histogram percentiles are within one bucket of the truth") {
  conveyor::latency_histogram h;
  CHECK(h.percentile(0.5) == 0ns);
  for (int i = 1; i <= 1000; ++i) h.record(std::chrono::microseconds(i));
  CHECK(h.count() == 1000);
  auto p50 = h.percentile(0.50);
  auto p99 = h.percentile(0.99);
  CHECK(p50 >= 500us);
  CHECK(p50 <= 500us * 1.125);
  CHECK(p99 >= 990us);
  CHECK(p99 <= 990us * 1.125);
  CHECK(h.percentile(0.0) >= 1us);
}

TEST_CASE("latency_histogram merges and copies") {
  conveyor::latency_histogram a, b;
  a.record(5ns);
  b.record(7ns);
  b.record(7ns);
  a.merge(b);
  CHECK(a.count() == 3);
  CHECK(a.percentile(1.0) == 7ns);
  conveyor::latency_histogram c = a;
  CHECK(c.count() == 3);
  c.reset();
  CHECK(c.count() == 0);
}
