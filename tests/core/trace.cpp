// Tracing (core/trace.hpp) and stats as JSON (core/stats.hpp): every file and
// document is parsed back with a strict JSON reader (json_check.hpp) and its
// structure checked as a trace viewer reads it.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>        // setenv, unsetenv (POSIX)
#include <sys/resource.h>  // setrlimit (POSIX)
#include <unistd.h>

#include <algorithm>
#include <conveyor/conveyor.hpp>
#include <conveyor/core/trace.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/json_check.hpp"
#include "support/error_text.hpp"
#include "support/temp_dir.hpp"

namespace cy = conveyor;
using conveyor::test::contains;
using conveyor::test::error_text;
using conveyor::test::json_value;
using conveyor::test::parse_json;

namespace {

constexpr std::uint64_t rows = 1000;
constexpr std::size_t batch_rows = 50;
constexpr std::uint64_t batches = rows / batch_rows;

auto numbers() {
  return cy::generate<cy::dense<"x", float>>(rows, 3, [](std::uint64_t i, std::span<float> row) {
    for (std::size_t c = 0; c < row.size(); ++c) row[c] = static_cast<float>(i * 3 + c);
  });
}
// Doubles every value, so the test can check the batches tracing lets through.
auto doubled(std::string name) {
  return cy::map(std::move(name), [](auto&& b) {
    for (auto& v : b.template get<"x">().values()) v *= 2;
    return std::move(b);
  });
}
// The sum of every delivered value; the same whether tracing is on or off.
template <class Run>
double total(Run&& run) {
  double sum = 0;
  for (auto& b : run)
    for (float v : b.template get<"x">().values()) sum += v;
  return sum;
}
constexpr double expected_total = 2.0 * (3.0 * rows) * (3.0 * rows - 1) / 2;

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The trace file, parsed and indexed: X events by name, track names by tid.
struct trace_view {
  json_value document;
  std::vector<json_value> spans;
  std::map<double, std::string> thread_names;
  std::map<double, double> sort_index;

  explicit trace_view(const std::filesystem::path& path) : document(parse_json(slurp(path))) {
    REQUIRE(document.is_object());
    REQUIRE(document["traceEvents"].is_array());
    for (const auto& e : document["traceEvents"].array()) {
      REQUIRE(e.is_object());
      REQUIRE(e["ph"].is_string());
      REQUIRE(e["pid"].is_number());
      REQUIRE(e["tid"].is_number());
      if (e["ph"].string() == "M") {
        if (e["name"].string() == "thread_sort_index") {
          REQUIRE(e["args"]["sort_index"].is_number());
          sort_index[e["tid"].number()] = e["args"]["sort_index"].number();
          continue;
        }
        REQUIRE(e["args"]["name"].is_string());
        if (e["name"].string() == "thread_name") {
          CHECK(thread_names.count(e["tid"].number()) == 0);  // one name per track
          thread_names[e["tid"].number()] = e["args"]["name"].string();
        }
      } else {
        CHECK(e["ph"].string() == "X");
        REQUIRE(e["name"].is_string());
        REQUIRE(e["cat"].is_string());
        REQUIRE(e["ts"].is_number());
        REQUIRE(e["dur"].is_number());
        CHECK(e["ts"].number() >= 0);
        CHECK(e["dur"].number() >= 0);
        spans.push_back(e);
      }
    }
  }

  [[nodiscard]] std::vector<json_value> named(const std::string& name) const {
    std::vector<json_value> out;
    for (const auto& s : spans)
      if (s["name"].string() == name) out.push_back(s);
    return out;
  }
  [[nodiscard]] std::string track_of(const json_value& span) const {
    auto it = thread_names.find(span["tid"].number());
    return it == thread_names.end() ? std::string("<unnamed>") : it->second;
  }
  // The (epoch, batch) args of every span called `name`.
  [[nodiscard]] std::multiset<std::pair<double, double>> batches_of(const std::string& name) const {
    std::multiset<std::pair<double, double>> out;
    for (const auto& s : named(name))
      out.emplace(s["args"]["epoch"].number(), s["args"]["batch"].number());
    return out;
  }
};

std::multiset<std::pair<double, double>> every_batch(std::initializer_list<double> epochs) {
  std::multiset<std::pair<double, double>> out;
  for (double e : epochs)
    for (std::uint64_t b = 0; b < batches; ++b) out.emplace(e, static_cast<double>(b));
  return out;
}

// Spans on one track must nest (a trace viewer draws them as a stack): sorted
// by start, each either ends before the next starts or contains it.
void check_nesting(const trace_view& trace) {
  struct interval {
    double begin, end;
    std::string name;
  };
  std::map<double, std::vector<interval>> by_track;
  for (const auto& s : trace.spans)
    by_track[s["tid"].number()].push_back(
        {s["ts"].number(), s["ts"].number() + s["dur"].number(),
         s["name"].string() +
             (s.has("args") ? " (epoch " + std::to_string(s["args"]["epoch"].number()) +
                                  ", batch " + std::to_string(s["args"]["batch"].number()) + ")"
                            : std::string())});
  for (auto& [tid, spans] : by_track) {
    std::sort(spans.begin(), spans.end(), [](const interval& a, const interval& b) {
      return a.begin < b.begin || (a.begin == b.begin && a.end > b.end);
    });
    std::vector<const interval*> open;
    for (const auto& span : spans) {
      while (!open.empty() && open.back()->end <= span.begin) open.pop_back();
      if (!open.empty())
        CHECK_MESSAGE(span.end <= open.back()->end,
                      "track " << trace.thread_names.at(tid) << ": " << span.name << " ["
                               << span.begin << ", " << span.end << "] overlaps "
                               << open.back()->name << " [" << open.back()->begin << ", "
                               << open.back()->end << "]");
      open.push_back(&span);
    }
  }
}

// Captures what this process writes to stderr (file descriptor 2) while alive.
class stderr_capture {
 public:
  explicit stderr_capture(std::filesystem::path file) : file_(std::move(file)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~stderr_capture() { restore(); }
  std::string text() {
    restore();
    return slurp(file_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::filesystem::path file_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("the JSON reader the trace tests rely on rejects what is not JSON") {
  CHECK(parse_json(R"({"a":[1,-2.5e3,"x\"y\\z\u0001",true,null],"b":{}})")["a"].array().size() ==
        5);
  CHECK_THROWS(parse_json(R"({"a":1,})"));
  CHECK_THROWS(parse_json(R"({"a":1} x)"));
  CHECK_THROWS(parse_json("[\"a\nb\"]"));  // raw control character in a string
  CHECK_THROWS(parse_json(R"(["\q"])"));
  CHECK_THROWS(parse_json(R"({"a":01})"));
  CHECK_THROWS(parse_json(R"({"a":1,"a":2})"));
  CHECK_THROWS(parse_json(R"([1,2)"));
  CHECK_THROWS(parse_json("{\"a\":nan}"));
}

TEST_CASE(
    "stats().to_json() is valid JSON with every stage, names escaped and counts as in the "
    "snapshot") {
  const std::string odd = "we\"ird \\ name\n\t\x01\x7f caf\xc3\xa9";
  auto pipe = numbers() | cy::batch(batch_rows) | doubled(odd) | cy::parallel(2) | cy::prefetch(2);
  CHECK(total(pipe.epoch(0)) == expected_total);
  auto stats = pipe.stats();
  auto json = parse_json(stats.to_json());
  REQUIRE(json["stages"].is_array());
  const auto& stages = json["stages"].array();
  REQUIRE(stages.size() == stats.stages.size());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    CAPTURE(i);
    CHECK(stages[i]["name"].string() == stats.stages[i].name);
    CHECK(stages[i]["batches"].number() == static_cast<double>(stats.stages[i].batches));
    CHECK(stages[i]["rows"].number() == static_cast<double>(stats.stages[i].rows));
    CHECK(stages[i]["bytes"].number() == static_cast<double>(stats.stages[i].bytes));
    CHECK(stages[i]["busy_ns"].number() == static_cast<double>(stats.stages[i].busy.count()));
    CHECK(stages[i]["starved_ns"].number() == static_cast<double>(stats.stages[i].starved.count()));
    CHECK(stages[i]["blocked_ns"].number() == static_cast<double>(stats.stages[i].blocked.count()));
    CHECK(stages[i]["p99_ns"].number() == static_cast<double>(stats.stages[i].p99.count()));
    CHECK(stages[i]["skipped"].number() == 0);
    CHECK(stages[i]["queue_mean"].is_number());
  }
  CHECK(stages[1]["name"].string() == odd);  // the map stage, byte for byte
  CHECK(stages[1]["rows"].number() == static_cast<double>(rows));
  CHECK(json["rows_delivered"].number() == static_cast<double>(rows));
  CHECK(json["wall_ns"].number() == static_cast<double>(stats.wall.count()));
  REQUIRE(json["bottleneck"].is_string());
  CHECK(json["bottleneck"].string() == stats.bottleneck()->name);
}

TEST_CASE("stats().to_json() of a pipeline that has not run is valid JSON with zero counts") {
  auto pipe = numbers() | cy::batch(batch_rows);
  auto json = parse_json(pipe.stats().to_json());
  CHECK(json["stages"].array().empty());
  CHECK(json["bottleneck"].is_null());
  CHECK(json["rows_per_second"].number() == 0);
}

TEST_CASE(
    "a traced pipeline writes a Chrome trace: a named track per thread, a span per call, wait and "
    "handoff") {
  cy::test::temp_dir dir("trace");
  auto path = dir.file("run.json");
  {
    auto pipe = numbers() | cy::batch(batch_rows) | doubled("double") | cy::parallel(2) |
                cy::prefetch(2) | cy::with_trace(path.string());
    CHECK(total(pipe.epoch(0)) == expected_total);
  }
  trace_view trace(path);
  CHECK(trace.document["displayTimeUnit"].is_string());
  // One span per batch for each stage call, each wait for a batch and each handoff.
  CHECK(trace.batches_of("generate") == every_batch({0}));
  CHECK(trace.batches_of("double") == every_batch({0}));
  CHECK(trace.batches_of("parallel: waiting for upstream") == every_batch({0}));
  CHECK(trace.batches_of("parallel: waiting for room downstream") == every_batch({0}));
  CHECK(trace.batches_of("prefetch: handoff") == every_batch({0}));
  // prefetch's consumer asks once more than there are batches (the end), as does the loop.
  CHECK(trace.named("prefetch: waiting for upstream").size() == batches + 1);
  CHECK(trace.named("next batch").size() == batches + 1);
  for (const auto& s : trace.named("generate")) CHECK(s["cat"].string() == "stage");
  for (const auto& s : trace.named("prefetch: waiting for upstream"))
    CHECK(s["cat"].string() == "wait");
  for (const auto& s : trace.named("prefetch: handoff")) CHECK(s["cat"].string() == "handoff");

  // Every span's track is named, and each kind of work is on the thread that does it.
  for (const auto& s : trace.spans) CHECK(trace.thread_names.count(s["tid"].number()) == 1);
  for (const auto& s : trace.named("generate"))
    CHECK(trace.track_of(s).starts_with("parallel worker"));
  for (const auto& s : trace.named("parallel: waiting for upstream"))
    CHECK(trace.track_of(s) == "prefetch");
  for (const auto& s : trace.named("prefetch: handoff")) CHECK(trace.track_of(s) == "prefetch");
  for (const auto& s : trace.named("next batch")) CHECK(trace.track_of(s) == "consumer");
  std::set<std::string> tracks;
  for (const auto& s : trace.spans) tracks.insert(trace.track_of(s));
  CHECK(tracks.count("consumer") == 1);
  CHECK(tracks.count("prefetch") == 1);
  // Viewers put the consumer's track on top, then prefetch, then the workers.
  std::map<std::string, double> order;
  for (const auto& [tid, name] : trace.thread_names) order[name] = trace.sort_index.at(tid);
  CHECK(order.at("consumer") < order.at("prefetch"));
  for (const auto& [name, index] : order)
    if (name.starts_with("parallel worker")) CHECK(order.at("prefetch") < index);
  check_nesting(trace);
}

TEST_CASE(
    "a trace file is complete JSON after every epoch, and later epochs reuse the worker tracks") {
  cy::test::temp_dir dir("trace");
  auto path = dir.file("epochs.json");
  auto pipe = numbers() | cy::batch(batch_rows) | cy::parallel(2) | cy::with_trace(path.string());
  for (std::uint64_t e = 0; e < 3; ++e) {
    CHECK(total(pipe.epoch(e)) == expected_total / 2);
    trace_view trace(path);  // read while the pipeline and its trace file are still open
    std::initializer_list<double> so_far[] = {{0}, {0, 1}, {0, 1, 2}};
    CHECK(trace.batches_of("generate") == every_batch(so_far[e]));
    std::set<std::string> worker_tracks;
    for (const auto& s : trace.named("generate")) worker_tracks.insert(trace.track_of(s));
    CHECK(worker_tracks.size() <= 2);  // two workers per epoch, whichever epoch
    check_nesting(trace);
  }
}

TEST_CASE("one trace_file shared by two pipelines that run at once on two named threads") {
  cy::test::temp_dir dir("trace");
  auto path = dir.file("shared.json");
  auto file = std::make_shared<cy::trace_file>(path.string());
  auto train = numbers() | cy::batch(batch_rows) | doubled("train decode") | cy::parallel(2) |
               cy::prefetch(2) | cy::with_trace(file);
  auto validation = numbers() | cy::batch(batch_rows) | doubled("validation decode") |
                    cy::parallel(2) | cy::with_trace(file);
  double train_sum = 0, validation_sum = 0;
  {
    std::thread a([&] {
      cy::trace_thread_name("trainer");
      for (std::uint64_t e = 0; e < 3; ++e) train_sum += total(train.epoch(e));
    });
    std::thread b([&] {
      cy::trace_thread_name("validator");
      for (std::uint64_t e = 0; e < 3; ++e) validation_sum += total(validation.epoch(e));
    });
    a.join();
    b.join();
  }
  CHECK(train_sum == 3 * expected_total);
  CHECK(validation_sum == 3 * expected_total);
  file->flush();
  CHECK(file->error().empty());
  CHECK(file->events_dropped() == 0);
  trace_view trace(path);
  CHECK(trace.batches_of("train decode") == every_batch({0, 1, 2}));
  CHECK(trace.batches_of("validation decode") == every_batch({0, 1, 2}));
  CHECK(trace.spans.size() == file->events_written());
  for (const auto& s : trace.named("train decode"))
    CHECK(trace.track_of(s).starts_with("parallel worker"));
  std::set<std::string> loops;
  for (const auto& s : trace.named("next batch")) loops.insert(trace.track_of(s));
  CHECK(loops == std::set<std::string>{"trainer", "validator"});
  check_nesting(trace);
}

TEST_CASE(
    "with_trace to a path that cannot be written throws io_error naming the path and the reason") {
  cy::test::temp_dir dir("trace");
  auto missing = (dir.path() / "no-such-directory" / "run.json").string();
  auto text =
      error_text([&] { (void)(numbers() | cy::batch(batch_rows) | cy::with_trace(missing)); });
  CHECK(contains(text, missing));
  CHECK(contains(text, "cannot open the trace file for writing"));
  CHECK(contains(text, "No such file or directory"));
  CHECK_THROWS_AS((void)cy::trace_file(dir.path().string()), cy::io_error);  // a directory
  if (std::filesystem::exists("/dev/full")) {  // opens, but every write fails (ENOSPC)
    auto full = error_text([] { cy::trace_file file("/dev/full"); });
    CHECK(contains(full, "cannot write the trace file"));
    CHECK(contains(full, "No space left on device"));
  }
  CHECK_THROWS_AS((void)cy::with_trace(std::shared_ptr<cy::trace_file>()), std::invalid_argument);
}

TEST_CASE(
    "CONVEYOR_TRACE traces every pipeline without a trace of its own; an unwritable one only "
    "warns") {
  cy::test::temp_dir dir("trace");
  auto run = [] {
    auto pipe = numbers() | cy::batch(batch_rows) | doubled("from environment") | cy::parallel(2);
    return total(pipe.epoch(0));
  };

  auto bad = (dir.path() / "missing" / "env.json").string();
  REQUIRE(::setenv("CONVEYOR_TRACE", bad.c_str(), 1) == 0);
  double sum = 0;
  std::string warning;
  {
    stderr_capture capture(dir.file("stderr.txt"));
    sum = run();
    sum += run();  // the failure is reported once
    warning = capture.text();
  }
  CHECK(sum == 2 * expected_total);
  CHECK(contains(warning, "CONVEYOR_TRACE=" + bad));
  CHECK(contains(warning, "No such file or directory"));
  CHECK(contains(warning, "tracing stays off"));
  CHECK(warning.find("CONVEYOR_TRACE") == warning.rfind("CONVEYOR_TRACE"));

  auto good = dir.file("env.json");
  REQUIRE(::setenv("CONVEYOR_TRACE", good.string().c_str(), 1) == 0);
  CHECK(run() == expected_total);
  REQUIRE(::unsetenv("CONVEYOR_TRACE") == 0);
  CHECK(run() == expected_total);  // not traced: the variable is gone
  trace_view trace(good);
  CHECK(trace.batches_of("from environment") == every_batch({0}));
}

TEST_CASE(
    "a trace write that fails mid-run (file size limit) warns once, stops the file, and changes no "
    "batch") {
  cy::test::temp_dir dir("trace");
  auto path = dir.file("limited.json");
  auto pipe = numbers() | cy::batch(batch_rows) | doubled("limited") | cy::parallel(2) |
              cy::with_trace(path.string());  // opened (header written) before the limit
  // Writes past 4 KiB now fail with EFBIG instead of raising SIGXFSZ.
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit previous{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &previous) == 0);
  rlimit limited = previous;
  limited.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  double sums[3] = {};
  std::string warning;
  {
    stderr_capture capture(dir.file("stderr.txt"));
    for (std::uint64_t e = 0; e < 3; ++e) sums[e] = total(pipe.epoch(e));
    warning = capture.text();
  }
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &previous) == 0);
  std::signal(SIGXFSZ, previous_handler);
  for (double sum : sums) CHECK(sum == expected_total);
  CHECK(contains(warning, path.string()));
  CHECK(contains(warning, "cannot write the trace file"));
  CHECK(contains(warning, "File too large"));
  CHECK(warning.find("conveyor: trace file") ==
        warning.rfind("conveyor: trace file"));  // once, not per epoch
  // The later epochs' spans were dropped, not kept in memory.
  CHECK(std::filesystem::file_size(path) <= 4096);
}

TEST_CASE("stats().to_json() writes a number that has no JSON spelling as null") {
  cy::pipeline_stats stats;
  stats.stages.emplace_back();
  stats.stages[0].name = "odd";
  stats.stages[0].queue_mean = std::numeric_limits<double>::quiet_NaN();
  stats.stages.emplace_back();
  stats.stages[1].name = "odder";
  stats.stages[1].queue_mean = std::numeric_limits<double>::infinity();
  auto json = parse_json(stats.to_json());
  CHECK(json["stages"].array()[0]["queue_mean"].is_null());
  CHECK(json["stages"].array()[1]["queue_mean"].is_null());
  CHECK(json["stages"].array()[1]["name"].string() == "odder");
}
