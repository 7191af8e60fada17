// Wrap and stream stages written by a user with the public names of
// core/stream.hpp alone (build_env, batch_function, batch_stream, as_stream,
// run_stage): a wrap stage before parallel(n) sees every batch and its errors
// reach the consumer as a stage_error naming it; a stream stage in the middle
// of a chain is started and stopped once per epoch, also when the loop breaks
// early, with or without an execution stage before it.
#include <doctest/doctest.h>

#include <atomic>
#include <conveyor/conveyor.hpp>
#include <conveyor/core/stream.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace cy = conveyor;

namespace {

auto numbers(std::uint64_t n) {
  return cy::generate<cy::dense<"x", float>>(
      n, 1, [](std::uint64_t i, std::span<float> row) { row[0] = static_cast<float>(i); });
}

// A wrap stage: counts the rows upstream produced; fails on batch `fail_at`.
template <cy::batch_function Up>
struct counted_function {
  using batch_type = typename Up::batch_type;
  Up up;
  std::shared_ptr<std::atomic<std::uint64_t>> rows;
  std::uint64_t fail_at;
  cy::stage_counters* counters;

  batch_type produce(std::span<const std::uint64_t> indices, cy::batch_info info) const {
    return cy::run_stage("count_rows", info, [&] {
      if (info.number == fail_at) throw std::runtime_error("batch refused");
      batch_type out = up.produce(indices, info);
      rows->fetch_add(out.rows());
      counters->add_batch(out.rows(), out.size_bytes(), std::chrono::nanoseconds(0));
      return out;
    });
  }
};

struct count_rows {
  static constexpr cy::stage_kind kind = cy::stage_kind::wrap;
  static constexpr cy::stage_placement placement{.needs_batches = true, .before_streams = true};
  CONVEYOR_STAGE_MESSAGES("count_rows()")
  template <class In>
  using output = In;

  std::shared_ptr<std::atomic<std::uint64_t>> rows = std::make_shared<std::atomic<std::uint64_t>>(0);
  std::uint64_t fail_at = ~std::uint64_t{0};

  [[nodiscard]] std::string_view name() const noexcept { return "count_rows"; }
  template <cy::batch_function Up>
  auto attach(Up&& up, cy::build_env& env) const {
    return counted_function<std::remove_cvref_t<Up>>{std::forward<Up>(up), rows, fail_at,
                                                     &env.counters_for("count_rows")};
  }
};

// A stream stage: passes batches on, recording start() and stop().
struct lifecycle {
  std::atomic<int> starts{0}, stops{0};
  std::atomic<std::uint64_t> rows{0};
};

template <cy::batch_stream Up>
struct watched_stream {
  using batch_type = typename Up::batch_type;
  Up up;
  std::shared_ptr<lifecycle> life;

  void start(const cy::epoch_plan& plan, std::uint64_t first) {
    life->starts.fetch_add(1);
    up.start(plan, first);
  }
  std::optional<batch_type> next() {
    auto batch = up.next();
    if (batch) life->rows.fetch_add(batch->rows());
    return batch;
  }
  void stop() noexcept {
    life->stops.fetch_add(1);
    up.stop();
  }
};

struct watched {
  static constexpr cy::stage_kind kind = cy::stage_kind::stream;
  CONVEYOR_STAGE_MESSAGES("watched()")
  template <class In>
  using output = In;

  std::shared_ptr<lifecycle> life = std::make_shared<lifecycle>();

  [[nodiscard]] std::string_view name() const noexcept { return "watched"; }
  template <class Up>
  auto attach(Up&& up, cy::build_env&) const {
    auto stream = cy::as_stream(std::forward<Up>(up));
    static_assert(cy::batch_stream<decltype(stream)>);
    return watched_stream<decltype(stream)>{std::move(stream), life};
  }
};

std::uint64_t rows_of(auto& pipe, std::uint64_t epoch) {
  std::uint64_t rows = 0;
  for (auto& batch : pipe.epoch(epoch)) rows += batch.rows();
  return rows;
}

}  // namespace

TEST_CASE("a user's wrap stage before parallel(n) sees every batch and appears in stats") {
  count_rows counter;
  auto pipe = cy::append_stage(numbers(100) | cy::shuffle(3) | cy::batch(7), counter) |
              cy::parallel(2);
  CHECK(rows_of(pipe, 0) == 100);
  CHECK(counter.rows->load() == 100);
  CHECK(rows_of(pipe, 1) == 100);
  CHECK(counter.rows->load() == 200);
  const auto stats = pipe.stats();
  bool listed = false;
  for (const auto& stage : stats.stages)
    if (stage.name == "count_rows") {
      listed = true;
      CHECK(stage.rows == 200);
    }
  CHECK(listed);
}

TEST_CASE("an error in a user's wrap stage reaches the consumer as a stage_error naming it") {
  count_rows counter;
  counter.fail_at = 3;
  auto pipe = cy::append_stage(numbers(100) | cy::batch(10), counter) | cy::parallel(2);
  std::uint64_t delivered = 0;
  try {
    for (auto& batch : pipe.epoch(0)) delivered += batch.rows();
    FAIL("the epoch ended without the stage's error");
  } catch (const cy::stage_error& error) {
    CHECK(error.stage() == "count_rows");
    CHECK(error.epoch() == 0);
    CHECK(error.batch() == 3);
    CHECK(std::string(error.what()).find("batch refused") != std::string::npos);
  }
  CHECK(delivered == 30);  // batches 0-2, in order, before the failed one
}

TEST_CASE("a user's stream stage is started and stopped once per epoch, also on break") {
  SUBCASE("after parallel(n), before prefetch(n)") {
    watched stage;
    auto pipe = cy::append_stage(numbers(95) | cy::batch(10) | cy::parallel(2), stage) |
                cy::prefetch(2);
    CHECK(rows_of(pipe, 0) == 95);
    CHECK(stage.life->starts == 1);
    CHECK(stage.life->stops == 1);
    CHECK(stage.life->rows == 95);
    for (auto& batch : pipe.epoch(1)) {
      CHECK(batch.rows() == 10);
      break;
    }
    CHECK(stage.life->starts == 2);
    CHECK(stage.life->stops == 2);
  }
  SUBCASE("with no execution stage: as_stream runs the batch function on the consumer's thread") {
    watched stage;
    auto pipe = cy::append_stage(numbers(30) | cy::batch(10), stage);
    CHECK(rows_of(pipe, 0) == 30);
    CHECK(stage.life->starts == 1);
    CHECK(stage.life->stops == 1);
    CHECK(stage.life->rows == 30);
  }
}
