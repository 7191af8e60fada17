#include <doctest/doctest.h>

#include <atomic>
#include <conveyor/conveyor.hpp>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace cy = conveyor;

namespace {
auto squares(std::uint64_t n) {
  return cy::generate<cy::dense<"x", float>>(n, 2, [](std::uint64_t i, std::span<float> row) {
    row[0] = static_cast<float>(i);
    row[1] = static_cast<float>(i * i);
  });
}
}  // namespace

TEST_CASE("a sequential pipeline yields every record once, in order, in batches") {
  auto pipe = squares(10) | cy::batch(4);
  static_assert(std::is_same_v<decltype(pipe)::batch_type, cy::record_batch<cy::dense<"x", float>>>);
  std::vector<std::uint64_t> seen;
  std::vector<std::size_t> sizes;
  for (auto& b : pipe.epoch(0)) {
    sizes.push_back(b.rows());
    auto& x = b.get<"x">();
    CHECK(x.width() == 2);
    for (std::size_t r = 0; r < b.rows(); ++r) {
      CHECK(x(r, 0) == static_cast<float>(b.indices()[r]));
      CHECK(x(r, 1) == static_cast<float>(b.indices()[r] * b.indices()[r]));
      seen.push_back(b.indices()[r]);
    }
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(seen == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("both call forms and composed closures give the same pipeline") {
  auto a = cy::batch(cy::shuffle(squares(100), 7), 8);
  auto chain = cy::shuffle(7) | cy::batch(8);
  auto b = squares(100) | chain;
  static_assert(std::is_same_v<decltype(a), decltype(b)>);
  CHECK(a.plan() == b.plan());
  std::vector<std::uint64_t> ia, ib;
  for (auto& x : a.epoch(3)) ia.insert(ia.end(), x.indices().begin(), x.indices().end());
  for (auto& x : b.epoch(3)) ib.insert(ib.end(), x.indices().begin(), x.indices().end());
  CHECK(ia == ib);
  CHECK(ia.size() == 100);
}

TEST_CASE("map stages change the batch type and run in order") {
  auto pipe = squares(6) | cy::batch(3) |
              cy::map("sum", [](cy::record_batch<cy::dense<"x", float>>&& in, const cy::stage_context& ctx) {
                cy::record_batch<cy::dense<"s", double>> out(ctx.pool, in.info(), in.indices());
                auto& s = out.get<"s">();
                s = cy::dense_column<double>(ctx.pool, in.rows(), 1);
                for (std::size_t r = 0; r < in.rows(); ++r) s(r, 0) = in.get<"x">()(r, 0) + in.get<"x">()(r, 1);
                return out;
              });
  double total = 0;
  for (auto& b : pipe.epoch(0))
    for (std::size_t r = 0; r < b.rows(); ++r) total += b.get<"s">()(r, 0);
  CHECK(total == doctest::Approx(0 + 2 + 6 + 12 + 20 + 30));
  auto stats = pipe.stats();
  REQUIRE(stats.stages.size() == 2);
  CHECK(stats.stages[0].name == "generate");
  CHECK(stats.stages[1].name == "sum");
  CHECK(stats.stages[1].rows == 6);
  CHECK(stats.rows_delivered == 6);
  std::ostringstream table;
  table << stats;
  CHECK(table.str().find("sum") != std::string::npos);
}

TEST_CASE("any_pipeline holds pipelines of different types behind one type") {
  using batch_t = cy::record_batch<cy::dense<"x", float>>;
  std::vector<cy::any_pipeline<batch_t>> loaders;
  loaders.emplace_back(squares(10) | cy::batch(3));
  loaders.emplace_back(squares(10) | cy::shuffle(1) | cy::batch(5) | cy::parallel(2) | cy::prefetch(2));
  std::vector<std::size_t> rows;
  for (auto& loader : loaders) {
    std::size_t n = 0;
    for (auto& b : loader.epoch(0)) {
      for (std::size_t r = 0; r < b.rows(); ++r) CHECK(b.get<"x">()(r, 0) == static_cast<float>(b.indices()[r]));
      n += b.rows();
    }
    rows.push_back(n);
  }
  CHECK(rows == std::vector<std::size_t>{10, 10});
  CHECK(loaders[1].state().next_batch == 2);
}

namespace {
// A map stage with the epoch-end hook: records each call and whether any batch
// was still being produced (it must not be: the epoch's threads have stopped).
struct epoch_end_log {
  std::mutex mutex;
  std::vector<std::uint64_t> ended;       // epochs whose hook ran
  std::vector<std::thread::id> threads;  // the thread each hook ran on
  std::atomic<int> in_flight{0};
  std::atomic<int> in_flight_at_end{-1};
};
struct epoch_end_stage {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  std::shared_ptr<epoch_end_log> log;
  [[nodiscard]] std::string_view name() const noexcept { return "epoch_end"; }
  template <class Batch>
  Batch operator()(Batch&& batch, const cy::stage_context&) const {
    log->in_flight.fetch_add(1);
    std::this_thread::yield();
    log->in_flight.fetch_sub(1);
    return std::move(batch);
  }
  void end_epoch(std::uint64_t epoch) const {
    log->in_flight_at_end.store(log->in_flight.load());
    std::lock_guard lock(log->mutex);
    log->ended.push_back(epoch);
    log->threads.push_back(std::this_thread::get_id());
  }
};
static_assert(cy::detail::ends_epochs<epoch_end_stage>);
}  // namespace

TEST_CASE("end_epoch runs once per complete epoch, on the consumer's thread, after the workers stopped") {
  auto log = std::make_shared<epoch_end_log>();
  auto pipe = cy::append_stage(squares(40) | cy::batch(3), epoch_end_stage{log}) | cy::parallel(3) | cy::prefetch(2);
  for (std::uint64_t e : {0u, 1u}) {
    std::uint64_t batches = 0;
    auto run = pipe.epoch(e);
    for (auto& b : run) {
      (void)b;
      ++batches;
      std::lock_guard lock(log->mutex);
      CHECK(log->ended.size() == e);  // not before the last batch was delivered
    }
    CHECK(batches == 14);
    std::lock_guard lock(log->mutex);
    REQUIRE(log->ended.size() == e + 1);  // when the loop ends, before the run is destroyed
    CHECK(log->ended.back() == e);
    CHECK(log->threads.back() == std::this_thread::get_id());
    CHECK(log->in_flight_at_end.load() == 0);
  }
}

TEST_CASE("end_epoch is not called for an epoch left by break or an exception, and is after a resumed one") {
  auto log = std::make_shared<epoch_end_log>();
  auto pipe = cy::append_stage(squares(40) | cy::batch(4), epoch_end_stage{log}) | cy::parallel(2);
  for (auto& b : pipe.epoch(0)) {
    (void)b;
    break;
  }
  try {
    for (auto& b : pipe.epoch(1))
      if (b.number() == 2) throw std::runtime_error("consumer gives up");
  } catch (const std::runtime_error&) {
  }
  {
    auto run = pipe.epoch(2);
    (void)run.begin();
    run.finish();
  }
  {
    std::lock_guard lock(log->mutex);
    CHECK(log->ended.empty());
  }
  // A checkpoint in epoch 3, resumed and run to its end: the epoch completes.
  cy::pipeline_state checkpoint;
  for (auto& b : pipe.epoch(3)) {
    if (b.number() == 4) break;
  }
  checkpoint = pipe.state();
  std::uint64_t rest = 0;
  for (auto& b : pipe.resume(checkpoint)) {
    (void)b;
    ++rest;
  }
  CHECK(rest == 10 - checkpoint.next_batch);
  std::lock_guard lock(log->mutex);
  CHECK(log->ended == std::vector<std::uint64_t>{3});
}

TEST_CASE("a pipeline without end_epoch stages keeps working (no hook)") {
  auto pipe = squares(5) | cy::batch(2);
  std::uint64_t n = 0;
  for (auto& b : pipe.epoch(0)) n += b.rows();
  CHECK(n == 5);
}
