#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <conveyor/conveyor.hpp>
#include <string>
#include <thread>
#include <vector>

namespace cy = conveyor;
using x_batch = cy::record_batch<cy::dense<"x", float>>;

namespace {
// Each record is its index, so a batch's content can be checked against its indices.
auto records(std::uint64_t n, std::uint64_t fail_at = ~0ull) {
  return cy::generate<cy::dense<"x", float>>(n, 3, [fail_at](std::uint64_t i, std::span<float> row) {
    if (i == fail_at) throw cy::data_error("record is malformed", "records.bin", i, i * 12);
    for (auto& v : row) v = static_cast<float>(i);
  });
}

template <class Pipe>
std::vector<std::uint64_t> run_order(Pipe& pipe, std::uint64_t epoch) {
  std::vector<std::uint64_t> order;
  for (auto& b : pipe.epoch(epoch)) {
    auto& x = b.template get<"x">();
    for (std::size_t r = 0; r < b.rows(); ++r) {
      REQUIRE(x(r, 0) == static_cast<float>(b.indices()[r]));
      order.push_back(b.indices()[r]);
    }
  }
  return order;
}

auto slow_identity(std::chrono::microseconds delay) {
  return cy::map("slow", [delay](x_batch&& b) {
    std::this_thread::sleep_for(delay * static_cast<int>(b.indices()[0] % 3));
    return std::move(b);
  });
}
}  // namespace

TEST_CASE("order is the same for 1..8 workers, with and without prefetch") {
  auto reference_pipe = records(1000) | cy::shuffle(11) | cy::shard(1, 3) | cy::batch(16);
  auto reference = run_order(reference_pipe, 4);
  CHECK(reference.size() == 333);
  for (unsigned workers = 1; workers <= 8; ++workers) {
    auto pipe = records(1000) | cy::shuffle(11) | cy::shard(1, 3) | cy::batch(16) | slow_identity(std::chrono::microseconds(50)) |
                cy::parallel(workers) | cy::prefetch(3);
    CHECK(run_order(pipe, 4) == reference);
    auto no_prefetch = records(1000) | cy::shuffle(11) | cy::shard(1, 3) | cy::batch(16) | cy::parallel(workers);
    CHECK(run_order(no_prefetch, 4) == reference);
  }
  auto prefetch_only = records(1000) | cy::shuffle(11) | cy::shard(1, 3) | cy::batch(16) | cy::prefetch(1);
  CHECK(run_order(prefetch_only, 4) == reference);
}

TEST_CASE("an exception from the source reaches the consumer with stage and location") {
  auto check = [](auto&& pipe, const std::string& stage) {
    std::vector<std::uint64_t> delivered;
    try {
      for (auto& b : pipe.epoch(0)) delivered.push_back(b.number());
      FAIL("no exception");
    } catch (const cy::stage_error& e) {
      CHECK(e.stage() == stage);
      CHECK(e.where().file == "records.bin");
      CHECK(e.where().record == 37);
      CHECK(e.where().offset == 37 * 12);
      CHECK(e.batch() == 37 / 8);
      CHECK(std::string(e.what()).find("record is malformed") != std::string::npos);
    }
    // Batches before the failing one arrive, in order, first.
    std::vector<std::uint64_t> expected;
    for (std::uint64_t b = 0; b < 37 / 8; ++b) expected.push_back(b);
    CHECK(delivered == expected);
  };
  check(records(100, 37) | cy::batch(8), "generate");
  check(records(100, 37) | cy::batch(8) | cy::parallel(3), "generate");
  check(records(100, 37) | cy::batch(8) | cy::prefetch(2), "generate");
  check(records(100, 37) | cy::batch(8) | cy::parallel(2) | cy::prefetch(2), "generate");
}

TEST_CASE("an exception from a map stage names that stage, wherever it runs") {
  auto failing = [](std::string name) {
    return cy::map(std::move(name), [](x_batch&& b) {
      if (b.number() == 5) throw std::runtime_error("decoder exploded");
      return std::move(b);
    });
  };
  auto check = [](auto&& pipe, const std::string& stage) {
    std::uint64_t count = 0;
    try {
      for (auto& b : pipe.epoch(0)) {
        CHECK(b.number() == count);
        ++count;
      }
      FAIL("no exception");
    } catch (const cy::stage_error& e) {
      CHECK(e.stage() == stage);
      CHECK(e.batch() == 5);
      CHECK(std::string(e.what()).find("decoder exploded") != std::string::npos);
    }
    CHECK(count == 5);
  };
  check(records(100) | cy::batch(4) | failing("before-parallel") | cy::parallel(2), "before-parallel");
  check(records(100) | cy::batch(4) | cy::parallel(2) | failing("after-parallel"), "after-parallel");
  check(records(100) | cy::batch(4) | cy::prefetch(2) | failing("after-prefetch"), "after-prefetch");
  check(records(100) | cy::batch(4) | failing("before-prefetch") | cy::prefetch(2), "before-prefetch");
}

TEST_CASE("skip drops bad records, counts them, and keeps the batch count") {
  auto pipe = records(100, 37) | cy::batch(8) | cy::parallel(2) | cy::on_errors(cy::on_error::skip);
  std::uint64_t rows = 0, batches = 0;
  for (auto& b : pipe.epoch(0)) {
    ++batches;
    rows += b.rows();
    for (auto i : b.indices()) CHECK(i != 37);
    auto& x = b.get<"x">();
    for (std::size_t r = 0; r < b.rows(); ++r) CHECK(x(r, 2) == static_cast<float>(b.indices()[r]));
  }
  CHECK(batches == 13);
  CHECK(rows == 99);
  CHECK(pipe.stats().stages[0].skipped == 1);
}

namespace {
// A source whose reads fail with io_error a set number of times.
struct flaky_source {
  using batch_type = x_batch;
  std::shared_ptr<std::atomic<int>> failures_left;
  [[nodiscard]] std::uint64_t size() const { return 20; }
  [[nodiscard]] std::string_view name() const { return "flaky"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    if (failures_left->fetch_sub(1) > 0) throw cy::io_error("connection reset", "flaky://host/data");
    batch_type out(ctx.pool, ctx.info, indices);
    out.get<"x">() = cy::dense_column<float>(ctx.pool, indices.size(), 1);
    for (std::size_t r = 0; r < indices.size(); ++r) out.get<"x">()(r, 0) = static_cast<float>(indices[r]);
    return out;
  }
};
static_assert(cy::record_source<flaky_source>);
}  // namespace

TEST_CASE("retry(n) repeats failed reads, then fails with the I/O error") {
  auto failures = std::make_shared<std::atomic<int>>(2);
  auto pipe = flaky_source{failures} | cy::batch(10) | cy::on_errors(cy::on_error::retry(3));
  std::uint64_t rows = 0;
  for (auto& b : pipe.epoch(0)) rows += b.rows();
  CHECK(rows == 20);
  CHECK(pipe.stats().stages[0].retries == 2);

  failures->store(5);
  auto strict = flaky_source{failures} | cy::batch(10) | cy::on_errors(cy::on_error::retry(2));
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : strict.epoch(0)) (void)b;
      }(),
      doctest::Contains("connection reset"), cy::stage_error);
}

TEST_CASE("breaking out early stops every thread promptly") {
  std::atomic<int> produced{0};
  auto pipe = cy::generate<cy::dense<"x", float>>(1'000'000, 1,
                                                  [&](std::uint64_t i, std::span<float> row) {
                                                    produced.fetch_add(1, std::memory_order_relaxed);
                                                    row[0] = static_cast<float>(i);
                                                  }) |
              cy::batch(100) | cy::parallel(4) | cy::prefetch(4);
  for (int round = 0; round < 20; ++round) {
    int seen = 0;
    for (auto& b : pipe.epoch(static_cast<std::uint64_t>(round))) {
      (void)b;
      if (++seen == 3) break;
    }
    CHECK(seen == 3);
  }
  // Bounded work: 20 rounds x (3 delivered + queue + reorder window + in flight) batches, far below the epoch.
  CHECK(produced.load() < 20 * 100 * 30);
}

TEST_CASE("a destroyed run that was never iterated starts no thread and does not hang") {
  auto pipe = records(100) | cy::batch(10) | cy::parallel(2) | cy::prefetch(2);
  { auto run = pipe.epoch(0); }
  auto run = pipe.epoch(0);
  auto it = run.begin();
  CHECK(it->number() == 0);
  run.finish();
  CHECK(it == run.end());
}

TEST_CASE("a checkpoint resumes to exactly the remaining sequence, also through text") {
  auto make = [] { return records(500) | cy::shuffle(3) | cy::shard(0, 2) | cy::batch(7) | cy::parallel(3) | cy::prefetch(2); };
  auto full = make();
  std::vector<std::vector<std::uint64_t>> uninterrupted;
  for (auto& b : full.epoch(2)) uninterrupted.emplace_back(b.indices().begin(), b.indices().end());

  auto first = make();
  std::string saved;
  std::vector<std::vector<std::uint64_t>> resumed;
  {
    auto run = first.epoch(2);
    for (auto& b : run) {
      resumed.emplace_back(b.indices().begin(), b.indices().end());
      if (resumed.size() == 11) {
        saved = run.state().serialize();
        CHECK(first.state() == run.state());
        break;
      }
    }
  }
  auto second = make();  // stands in for a new process: only the text survives
  for (auto& b : second.resume(cy::pipeline_state::parse(saved)))
    resumed.emplace_back(b.indices().begin(), b.indices().end());
  CHECK(resumed == uninterrupted);

  auto other_plan = records(500) | cy::shuffle(4) | cy::shard(0, 2) | cy::batch(7);
  CHECK_THROWS_AS(other_plan.restore(cy::pipeline_state::parse(saved)), cy::data_error);
  CHECK_THROWS_AS(cy::pipeline_state::parse("conveyor-state 1 epoch=x"), cy::data_error);
}

TEST_CASE("stats count every stage and show queue use") {
  auto pipe = records(256) | cy::batch(16) | slow_identity(std::chrono::microseconds(100)) | cy::parallel(2) |
              cy::prefetch(2);
  for (auto& b : pipe.epoch(0)) (void)b;
  auto s = pipe.stats();
  REQUIRE(s.stages.size() == 4);
  CHECK(s.stages[0].name == "generate");
  CHECK(s.stages[1].name == "slow");
  CHECK(s.stages[2].name == "parallel");
  CHECK(s.stages[3].name == "prefetch");
  for (const auto& stage : s.stages) {
    CHECK(stage.batches == 16);
    CHECK(stage.rows == 256);
  }
  CHECK(s.stages[1].busy > std::chrono::microseconds(100) * 5);
  CHECK(s.stages[1].p99 >= s.stages[1].p50);
  CHECK(s.stages[3].queue_capacity == 2);
  CHECK(s.rows_delivered == 256);
}

TEST_CASE("spsc_ring stress: every value arrives once, in order, under blocking and cancel") {
  for (std::size_t capacity : {1u, 2u, 7u, 64u}) {
    cy::spsc_ring<std::vector<int>> ring(capacity);
    constexpr int count = 20000;
    std::thread producer([&] {
      for (int i = 0; i < count; ++i) REQUIRE(ring.push(std::vector<int>{i, -i}));
      ring.close();
    });
    int expected = 0;
    while (auto v = ring.pop()) {
      REQUIRE((*v)[0] == expected);
      REQUIRE((*v)[1] == -expected);
      ++expected;
    }
    producer.join();
    CHECK(expected == count);
  }
  cy::spsc_ring<int> ring(2);
  std::atomic<bool> returned{false};
  std::thread producer([&] {
    while (ring.push(1)) {
    }
    returned = true;
  });
  CHECK(ring.pop().has_value());
  ring.cancel();
  producer.join();
  CHECK(returned.load());
}
