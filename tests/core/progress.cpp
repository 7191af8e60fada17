// progress_line (core/progress.hpp): the line's text and when it prints, with
// the times given, so nothing depends on how fast the machine is.
#include <doctest/doctest.h>

#include <chrono>
#include <conveyor/core/progress.hpp>
#include <sstream>
#include <string>

namespace cy = conveyor;
using namespace std::chrono_literals;
using progress_clock = cy::progress_line::clock;

TEST_CASE("a progress line shows rows done of the total, the rate and the time left") {
  std::ostringstream out;
  auto t0 = progress_clock::time_point{} + 100s;
  cy::progress_line line(1000, out, {.label = "epoch 1", .overwrite = false}, t0);
  line.add(100, t0 + 1s);
  CHECK(out.str() == "epoch 1  100/1,000 rows (10.0%)  100 rows/s  ETA 0:09\n");
  CHECK(line.text(t0 + 2s) == "epoch 1  100/1,000 rows (10.0%)  50 rows/s  ETA 0:18");
  CHECK(line.text(t0 + 2s, "loss 0.5") ==
        "epoch 1  100/1,000 rows (10.0%)  50 rows/s  ETA 0:18  loss 0.5");
  CHECK(line.done() == 100);
  CHECK(line.total() == 1000);
}

TEST_CASE("a progress line prints at most once per interval, and finish() always prints") {
  std::ostringstream out;
  auto t0 = progress_clock::time_point{} + 100s;
  cy::progress_line line(1000, out, {.interval = 500ms, .overwrite = false}, t0);
  line.add(10, t0 + 100ms);  // before the first interval: nothing
  CHECK(out.str().empty());
  line.add(10, t0 + 600ms);
  line.add(10, t0 + 900ms);  // 300 ms after the last line
  line.add(10, t0 + 1100ms);
  line.finish(t0 + 1200ms);
  line.add(10, t0 + 5s);  // after finish: counted, not printed
  std::istringstream lines(out.str());
  std::string first, second, third, extra;
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, third);
  CHECK(first.starts_with("20/1,000 rows"));
  CHECK(second.starts_with("40/1,000 rows"));
  CHECK(third.starts_with("40/1,000 rows"));  // the final line
  CHECK_FALSE(std::getline(lines, extra));
  CHECK(line.done() == 50);
}

TEST_CASE("on a terminal a progress line rewrites itself and finish() erases it") {
  std::ostringstream out;
  auto t0 = progress_clock::time_point{} + 100s;
  cy::progress_line line(0, out, {.overwrite = true}, t0);
  line.add(250, t0 + 1s);
  line.add(250, t0 + 2s);
  CHECK(out.str() == "\r250 rows  250 rows/s\033[K\r500 rows  250 rows/s\033[K");
  line.finish(t0 + 2s);
  CHECK(out.str().ends_with("\r\033[K"));
}

TEST_CASE("rates, counts and durations are written compactly and locale-free") {
  std::ostringstream out;
  auto t0 = progress_clock::time_point{} + 100s;
  cy::progress_line fast(10'000'000, out, {}, t0);
  fast.add(1'250'000, t0 + 1s);
  CHECK(fast.text(t0 + 1s) == "1,250,000/10,000,000 rows (12.5%)  1.25M rows/s  ETA 0:07");
  cy::progress_line medium(0, out, {}, t0);
  medium.add(48'200, t0 + 1s);
  CHECK(medium.text(t0 + 1s) == "48,200 rows  48.2k rows/s");
  cy::progress_line slow(3724, out, {}, t0);
  slow.add(1, t0 + 1s);
  CHECK(slow.text(t0 + 1s) == "1/3,724 rows (0.0%)  1 rows/s  ETA 1:02:03");
  cy::progress_line over(100, out, {}, t0);
  over.add(150, t0 + 1s);
  CHECK(over.text(t0 + 1s) == "150/100 rows (100.0%)  150 rows/s  ETA 0:00");
  cy::progress_line idle(100, out, {}, t0);
  CHECK(idle.text(t0) == "0/100 rows (0.0%)  - rows/s  ETA -");
}

TEST_CASE("a disabled progress line prints nothing but still counts") {
  std::ostringstream out;
  auto t0 = progress_clock::time_point{} + 100s;
  {
    cy::progress_line line(100, out, {.overwrite = false, .enabled = false}, t0);
    line.add(60, t0 + 1s);
    line.add(60, t0 + 2s);
    line.finish(t0 + 3s);
    CHECK(line.done() == 120);
  }
  CHECK(out.str().empty());
}
