#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/disk_tier.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/cache/tiered.hpp>
#include <conveyor/conveyor.hpp>
#include <cstddef>
#include <fstream>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/error_text.hpp"
#include "support/temp_dir.hpp"

namespace cy = conveyor;
constexpr std::uint64_t thread_bytes = cy::detail::memory_governor::thread_bytes;
// A batch of 8 rows x 3 floats as memory_budget charges it: "x" (96 bytes) and
// the indices (64) each take pageable_pool's smallest class, 256 bytes, plus
// the heap's 16-byte header (detail::allocation_bytes).
constexpr std::uint64_t small_batch = 2 * (256 + 16);
using x_batch = cy::record_batch<cy::dense<"x", float>>;

namespace {

auto records(std::uint64_t n, std::size_t width = 3) {
  return cy::generate<cy::dense<"x", float>>(n, width, [](std::uint64_t i, std::span<float> row) {
    for (auto& v : row) v = static_cast<float>(i);
  });
}

// Waits as a read from a slow device would: no CPU, so more workers than cores pay.
auto io_wait(std::chrono::microseconds per_batch) {
  return cy::map("io", [per_batch](x_batch&& b) {
    std::this_thread::sleep_for(per_batch);
    return std::move(b);
  });
}

// A stage that makes each batch larger: "x" of `width` floats per row, as a
// decoder that expands compact values would.
auto widen(std::size_t width) {
  return cy::map("widen", [width](x_batch&& in, const cy::stage_context& ctx) {
    x_batch out(ctx.pool, in.info(), in.indices());
    out.get<"x">() = cy::dense_column<float>(ctx.pool, in.rows(), width);
    for (std::size_t r = 0; r < in.rows(); ++r)
      for (std::size_t c = 0; c < width; ++c) out.get<"x">()(r, c) = in.get<"x">()(r, 0);
    return out;
  });
}

template <class Pipe>
std::vector<std::vector<std::uint64_t>> batches_of(Pipe& pipe, std::uint64_t epoch) {
  std::vector<std::vector<std::uint64_t>> out;
  for (auto& b : pipe.epoch(epoch)) {
    auto& x = b.template get<"x">();
    for (std::size_t r = 0; r < b.rows(); ++r)
      REQUIRE(x(r, 0) == static_cast<float>(b.indices()[r]));
    out.emplace_back(b.indices().begin(), b.indices().end());
  }
  return out;
}

// A pool of fresh allocations that tracks how many buffers are alive at once.
struct peak_pool final : cy::buffer_pool {
  static constexpr cy::memory_space static_space = cy::memory_space::host;
  std::atomic<std::int64_t> live{0}, peak{0};
  void* acquire(std::size_t bytes, std::size_t& capacity) override {
    capacity = bytes < 64 ? 64 : bytes;
    auto now = live.fetch_add(1) + 1;
    auto seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    return ::operator new (capacity, std::align_val_t{alignment});
  }
  void release(void* memory, std::size_t) noexcept override {
    live.fetch_sub(1);
    ::operator delete (memory, std::align_val_t{alignment});
  }
  [[nodiscard]] cy::memory_space space() const noexcept override { return cy::memory_space::host; }
};

const cy::stage_stats& stage(const cy::pipeline_stats& s, std::string_view name) {
  auto it = std::find_if(s.stages.begin(), s.stages.end(),
                         [&](const auto& st) { return st.name == name; });
  REQUIRE(it != s.stages.end());
  return *it;
}

}  // namespace

TEST_CASE(
    "autotuned runs deliver exactly the batches of fixed settings, for several seeds, shards and "
    "epochs") {
  for (std::uint64_t seed : {1u, 7u, 42u}) {
    for (std::uint64_t rank : {0u, 1u}) {
      auto plan = cy::shuffle(seed) | cy::shard(rank, 2) | cy::batch(9);
      auto fixed = records(700) | plan | io_wait(std::chrono::microseconds(200)) | cy::parallel(3) |
                   cy::prefetch(2);
      auto tuned = records(700) | plan | io_wait(std::chrono::microseconds(200)) |
                   cy::parallel(cy::autotune) | cy::prefetch(cy::autotune);
      auto budgeted = records(700) | plan | io_wait(std::chrono::microseconds(200)) |
                      cy::parallel(cy::autotune, 16) | cy::prefetch(cy::autotune, 8) |
                      cy::memory_budget(4 * thread_bytes + 4096);
      for (std::uint64_t epoch : {0u, 3u}) {
        auto expected = batches_of(fixed, epoch);
        CHECK(expected.size() == 39);  // 350 records per rank, batches of 9
        CHECK(batches_of(tuned, epoch) == expected);
        CHECK(batches_of(budgeted, epoch) == expected);
      }
    }
  }
}

TEST_CASE(
    "order is a function of (seed, epoch, rank, world) alone: autotuned, budgeted and re-run "
    "epochs give the single-threaded pipeline's batches") {
  for (std::uint64_t world : {1u, 3u}) {
    for (std::uint64_t rank = 0; rank < world; ++rank) {
      auto plan = cy::shuffle(11) | cy::shard(rank, world) | cy::batch(7);
      auto serial = records(500) | plan;
      // A stage after prefetch that makes batches larger, under a budget that
      // then holds few of them: the tuners change, the order does not.
      auto tuned = records(500) | plan | io_wait(std::chrono::microseconds(300)) |
                   cy::parallel(cy::autotune, 24) | cy::prefetch(cy::autotune, 16) | widen(3) |
                   cy::memory_budget(24 * thread_bytes + 8 * small_batch);
      for (std::uint64_t epoch : {0u, 1u, 5u, 1u}) {
        auto expected = batches_of(serial, epoch);
        CHECK(!expected.empty());
        CHECK(batches_of(tuned, epoch) == expected);
      }
    }
  }
}

TEST_CASE("an I/O-bound stage gets more workers than one, and keeps them in later epochs") {
  // 3 ms of waiting per batch and a consumer that does nothing: one worker
  // leaves the consumer starved nearly all the time, whatever the machine's load.
  auto pipe = records(4800) | cy::batch(8) | io_wait(std::chrono::milliseconds(3)) |
              cy::parallel(cy::autotune, 12);
  std::uint64_t rows = 0;
  for (auto& b : pipe.epoch(0)) rows += b.rows();
  CHECK(rows == 4800);
  auto first = stage(pipe.stats(), "parallel");
  MESSAGE("I/O-bound: " << first.workers << " workers (" << cy::to_string(first.tuning) << ")");
  CHECK(first.workers > 1);
  CHECK(first.workers <= 12);
  CHECK(first.tuning != cy::tuning_state::fixed);
  CHECK(first.tuning != cy::tuning_state::searching);
  for (auto& b : pipe.epoch(1)) (void)b;
  auto second = stage(pipe.stats(), "parallel");
  CHECK(second.workers == first.workers);
  CHECK(second.tuning == first.tuning);
  std::ostringstream table;
  table << pipe.stats();
  CHECK(table.str().find("autotune: parallel workers " + std::to_string(first.workers)) !=
        std::string::npos);
  CHECK(pipe.stats().to_json().find("\"tuning\":\"" + std::string(cy::to_string(first.tuning)) +
                                    "\"") != std::string::npos);
}

TEST_CASE("fixed stages report their setting as fixed") {
  auto pipe = records(64) | cy::batch(8) | cy::parallel(3) | cy::prefetch(2);
  for (auto& b : pipe.epoch(0)) (void)b;
  auto s = pipe.stats();
  CHECK(stage(s, "parallel").workers == 3);
  CHECK(stage(s, "parallel").queue_capacity == 6);
  CHECK(stage(s, "parallel").tuning == cy::tuning_state::fixed);
  CHECK(stage(s, "prefetch").queue_capacity == 2);
  std::ostringstream table;
  table << s;
  CHECK(table.str().find("autotune:") == std::string::npos);
}

TEST_CASE("memory_budget bounds the batches alive, however many workers the autotuner wants") {
  // Each batch: 16 rows x 16384 floats = 1 MiB of "x" plus 128 bytes of indices;
  // each pipeline thread is charged thread_bytes (64 KiB), far less than a batch.
  // Charged as allocated: "x" a page more (a large heap block), the indices a 256-byte class.
  auto pool = std::make_shared<peak_pool>();
  constexpr std::uint64_t batch_bytes = 16 * 16384 * 4 + 16 * 8;
  constexpr std::uint64_t charged = 16 * 16384 * 4 + 4096 + 256 + 16;
  constexpr std::uint64_t budget = 6 * charged + 4 * thread_bytes;
  auto pipe = records(960, 16384) | cy::batch(16) | io_wait(std::chrono::milliseconds(2)) |
              cy::parallel(cy::autotune, 32) | cy::with_pool(pool) | cy::memory_budget(budget);
  std::uint64_t batches = 0;
  for (auto& b : pipe.epoch(0)) {
    CHECK(b.size_bytes() == batch_bytes);
    CHECK(cy::detail::host_bytes(b) == charged);
    ++batches;
  }
  CHECK(batches == 60);
  auto s = stage(pipe.stats(), "parallel");
  MESSAGE("peak batches alive " << pool->peak.load() << ", workers " << s.workers << ", window "
                                << s.queue_capacity << " (" << cy::to_string(s.tuning) << ")");
  // Only the delivered column "x" comes from `pool`: one buffer per batch
  // alive. At least one worker thread is charged, so at most
  // (budget - thread_bytes) / charged = 6 batches fit.
  CHECK(pool->peak.load() <= 6);
  CHECK(pool->live.load() == 0);
  CHECK(s.queue_capacity + 1 <= 6);  // the window and the consumer's batch
  CHECK(s.workers <= s.queue_capacity);
  CHECK(s.queue_capacity * charged + charged + s.workers * thread_bytes <= budget);
}

TEST_CASE("memory_budget with parallel and prefetch both autotuned stays within the budget") {
  auto pool = std::make_shared<peak_pool>();
  constexpr std::uint64_t charged = 16 * 16384 * 4 + 4096 + 256 + 16;  // as above
  constexpr std::uint64_t budget = 9 * charged + 6 * thread_bytes;
  auto pipe = records(960, 16384) | cy::batch(16) | io_wait(std::chrono::milliseconds(1)) |
              cy::parallel(cy::autotune, 32) | cy::prefetch(cy::autotune) | cy::with_pool(pool) |
              cy::memory_budget(budget);
  for (auto& b : pipe.epoch(0)) (void)b;
  MESSAGE("peak batches alive " << pool->peak.load());
  // Two threads at least (a worker and prefetch's): (budget - 2 x thread_bytes) / charged = 9.
  CHECK(pool->peak.load() <= 9);
  auto s = pipe.stats();
  // window + depth + the prefetch thread's batch + the consumer's
  CHECK(stage(s, "parallel").queue_capacity + stage(s, "prefetch").queue_capacity + 2 <= 9);
}

TEST_CASE("a memory budget smaller than one batch is an error naming the numbers") {
  CHECK_THROWS_WITH_AS(records(10) | cy::batch(2) | cy::memory_budget(0),
                       "memory_budget: the budget must be at least one batch, not 0 bytes",
                       std::invalid_argument);
  // small_batch: 544 bytes (8 rows x 3 floats + 8 indices = 160 bytes used).
  auto pipe = records(80) | cy::batch(8) | cy::parallel(cy::autotune) | cy::memory_budget(100);
  std::string message;
  try {
    for (auto& b : pipe.epoch(0)) (void)b;
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  CHECK(message ==
        "memory_budget(100 bytes) is smaller than one batch: a batch measures 544 bytes");

  // Through prefetch the error reaches the consumer the same way.
  auto prefetched =
      records(80) | cy::batch(8) | cy::prefetch(cy::autotune) | cy::memory_budget(100);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : prefetched.epoch(0)) (void)b;
      }(),
      "memory_budget(100 bytes) is smaller than one batch: a batch measures 544 bytes",
      std::invalid_argument);
}

TEST_CASE("without parallel or prefetch the budget still checks the consumer's batch") {
  // The pipeline holds one batch (the consumer's): a budget below it is refused.
  auto serial = records(80) | cy::batch(8) | cy::memory_budget(100);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : serial.epoch(0)) (void)b;
      }(),
      "memory_budget(100 bytes) is smaller than one batch: a batch measures 544 bytes",
      std::invalid_argument);
  auto fits = records(80) | cy::batch(8) | cy::memory_budget(small_batch);
  std::uint64_t rows = 0;
  for (auto& b : fits.epoch(0)) rows += b.rows();
  CHECK(rows == 80);
  // With a cache tier: its capacity plus the batch.
  auto tier = std::make_shared<cy::memory_tier<>>(4096);
  auto cached = records(80) | cy::batch(8) | cy::cache(tier) | cy::memory_budget(4096 + 100);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : cached.epoch(0)) (void)b;
      }(),
      "memory_budget(4196 bytes) is smaller than one batch: a batch measures 544 bytes, plus 4096 "
      "bytes of in-memory cache tiers",
      std::invalid_argument);
}

TEST_CASE(
    "a stage after prefetch that makes batches larger: the consumer's batch is charged at the size "
    "delivered, the queued ones at theirs") {
  // Before widen: small_batch (544 bytes). Delivered: 8 x 300 floats = 9,600 bytes in a 16 KiB
  // class, plus the indices: 16,672 bytes. prefetch(4) holds 4 + 1 small batches, the consumer 1
  // large one; one thread.
  constexpr std::uint64_t small = small_batch, large = 16384 + 16 + 256 + 16;
  auto pipe = records(80) | cy::batch(8) | cy::prefetch(4) | widen(300) |
              cy::memory_budget(5 * small + large + thread_bytes - 1);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : pipe.epoch(0)) (void)b;
      }(),
      "memory_budget(84927 bytes) is too small: this pipeline holds at least 6 (the consumer's 1 x "
      "16672 bytes, prefetch queue and its producer's batch 5 x 544 bytes), 19392 bytes, and runs "
      "1 "
      "threads charged 65536 bytes each",
      std::invalid_argument);
  auto enough = records(80) | cy::batch(8) | cy::prefetch(4) | widen(300) |
                cy::memory_budget(5 * small + large + thread_bytes);
  std::uint64_t rows = 0;
  for (auto& b : enough.epoch(0)) rows += b.rows();
  CHECK(rows == 80);

  // Autotuned: what the stages hold, each at its own size, stays within the budget.
  constexpr std::uint64_t budget = 40 * small + large + 8 * thread_bytes;
  auto tuned = records(1600) | cy::batch(8) | io_wait(std::chrono::milliseconds(2)) |
               cy::parallel(cy::autotune, 32) | cy::prefetch(cy::autotune, 16) | widen(300) |
               cy::memory_budget(budget);
  std::uint64_t batches = 0;
  for (auto& b : tuned.epoch(0)) {
    CHECK(b.size_bytes() == 8 * 300 * 4 + 64);
    CHECK(cy::detail::host_bytes(b) == large);
    ++batches;
  }
  CHECK(batches == 200);
  auto s = tuned.stats();
  const auto& par = stage(s, "parallel");
  const auto& pre = stage(s, "prefetch");
  MESSAGE("parallel workers " << par.workers << " window " << par.queue_capacity << " ("
                              << cy::to_string(par.tuning) << "), prefetch depth "
                              << pre.queue_capacity << " (" << cy::to_string(pre.tuning) << ")");
  // The window, prefetch's queue and its producer's batch at 544 bytes, the consumer's at 16,672.
  CHECK((par.queue_capacity + pre.queue_capacity + 1) * small + large +
            (par.workers + 1) * thread_bytes <=
        budget);
  // Charged at 16,672 bytes, the 40 small batches' room would hold 1 queued batch at most.
  CHECK(par.queue_capacity + pre.queue_capacity > 2);
}

TEST_CASE(
    "cache tiers are charged what they keep in memory: capacity, or a disk tier's write-behind "
    "queue") {
  cy::test::temp_dir dir("budget");
  auto disk = std::make_shared<cy::disk_tier>(
      dir.path() / "cache", cy::disk_tier_options{.write_behind_bytes = std::uint64_t{8} << 20});
  CHECK(cy::detail::resident_bytes(*disk) == (std::uint64_t{8} << 20));
  cy::disk_tier in_put(dir.path() / "in-put", cy::disk_tier_options{.write_behind_bytes = 0});
  CHECK(cy::detail::resident_bytes(in_put) == 0);
  auto stack = std::make_shared<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>(
      cy::memory_tier<>(1 << 20), *disk);
  CHECK(cy::detail::resident_bytes(*stack) == (std::uint64_t{1} << 20) + (std::uint64_t{8} << 20));
  CHECK_THROWS_WITH_AS(records(80) | cy::batch(8) | cy::cache(stack) | cy::memory_budget(9 << 20),
                       "memory_budget(9437184 bytes) leaves nothing for batches: the in-memory "
                       "cache tiers of this pipeline already take 9437184 bytes",
                       std::invalid_argument);
  auto fits = records(80) | cy::batch(8) | cy::cache(stack) | cy::parallel(2) |
              cy::memory_budget((9 << 20) + 2 * thread_bytes + 5 * small_batch);
  std::uint64_t rows = 0;
  for (auto& b : fits.epoch(0)) rows += b.rows();
  CHECK(rows == 80);
}

TEST_CASE(
    "host_bytes: buffers as allocated (size class, heap overhead), device columns not at all") {
  // The "device" column's buffer comes from a host pool here (no GPU needed):
  // what counts is the column's type, which is what a device stage delivers.
  auto pool = cy::default_pool();
  std::vector<std::uint64_t> rows{1, 2};
  cy::record_batch<cy::dense<"x", float>, cy::dense<"d", float, cy::memory_space::device>,
                   cy::dense<"p", float, cy::memory_space::pinned>>
      batch(pool, cy::batch_info{}, rows);
  batch.get<"x">() = cy::dense_column<float>(pool, 2, 5);
  batch.get<"d">() = cy::dense_column<float, cy::memory_space::device>(pool, 2, 100);
  batch.get<"p">() = cy::dense_column<float, cy::memory_space::pinned>(pool, 2, 3);
  CHECK(batch.size_bytes() == 2 * 8 + 2 * 5 * 4 + 2 * 100 * 4 + 2 * 3 * 4);
  // Index, "x" and "p" each in a 256-byte class plus the heap's header; "d" not at all.
  CHECK(cy::detail::host_bytes(batch) == 3 * (256 + 16));
  // A large buffer: whole pages plus one (an mmap'd chunk's header and alignment).
  static_assert(cy::detail::allocation_bytes(std::uint64_t{1} << 20) ==
                (std::uint64_t{1} << 20) + 4096);
  static_assert(cy::detail::allocation_bytes(200'000) == 49 * 4096 + 4096);
  static_assert(cy::detail::allocation_bytes(0) == 0);
}

TEST_CASE("a budget too small for fixed settings names what they hold") {
  // parallel(4) keeps a window of 8 batches, prefetch(2) 2 and its producer's 1, the consumer 1: 12
  // x 544 bytes; 4 workers and prefetch's thread are charged thread_bytes each.
  auto pipe =
      records(80) | cy::batch(8) | cy::parallel(4) | cy::prefetch(2) | cy::memory_budget(1000);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : pipe.epoch(0)) (void)b;
      }(),
      "memory_budget(1000 bytes) is too small: a batch measures 544 bytes and this pipeline holds "
      "at least 12 (the "
      "consumer's 1, parallel window 8, prefetch queue and its producer's batch 3), 6528 bytes, "
      "and runs 5 threads "
      "charged 65536 bytes each",
      std::invalid_argument);
  auto enough = records(80) | cy::batch(8) | cy::parallel(4) | cy::prefetch(2) |
                cy::memory_budget(12 * small_batch + 5 * thread_bytes);
  std::uint64_t rows = 0;
  for (auto& b : enough.epoch(0)) rows += b.rows();
  CHECK(rows == 80);
}

TEST_CASE("in-memory cache tiers count against the budget") {
  auto tier = std::make_shared<cy::memory_tier<>>(1 << 20);
  CHECK_THROWS_WITH_AS(
      records(80) | cy::batch(8) | cy::cache(tier) | cy::parallel(2) | cy::memory_budget(1 << 20),
      "memory_budget(1048576 bytes) leaves nothing for batches: the in-memory cache tiers of this "
      "pipeline already take 1048576 bytes",
      std::invalid_argument);
  // A cache placed after the budget is charged when the epoch starts.
  auto later =
      records(80) | cy::batch(8) | cy::memory_budget(1 << 20) | cy::cache(tier) | cy::parallel(2);
  CHECK_THROWS_AS((void)later.epoch(0), std::invalid_argument);
  auto fits = records(80) | cy::batch(8) | cy::cache(tier) | cy::parallel(2) |
              cy::memory_budget((1 << 20) + 2 * thread_bytes + 4096);
  std::uint64_t rows = 0;
  for (auto& b : fits.epoch(0)) rows += b.rows();
  CHECK(rows == 80);
}

TEST_CASE("parallel_tuner: model proposes, measurement decides") {
  using cy::detail::parallel_probe;
  using cy::detail::parallel_tuner;
  SUBCASE("a consumer that never waits keeps one worker") {
    parallel_tuner t(1, 64, 2);
    CHECK(t.decide(parallel_probe{100, 1.0, 0.01, 0.5, 0.5}, 64) == 1);
    CHECK(t.state() == cy::tuning_state::consumer_bound);
  }
  SUBCASE("I/O-bound: Little's law asks for many workers, the CPU share allows them") {
    parallel_tuner t(1, 64, 2);
    // 100 batches in 1 s, consumer starved 0.9 s: it needs 1 ms a batch; a batch takes 10 ms, 2% of
    // it CPU.
    CHECK(t.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.02}, 64) == 13);  // ceil(10 / 1 x 1.25)
    CHECK(t.state() == cy::tuning_state::searching);
    // Throughput rose and the consumer no longer waits: settled.
    CHECK(t.decide(parallel_probe{900, 1.0, 0.01, 13.0, 0.2}, 64) == 13);
    CHECK(t.state() == cy::tuning_state::consumer_bound);
  }
  SUBCASE(
      "CPU-bound on 2 cores: no more workers than the cores, and a step that does not pay is "
      "undone") {
    parallel_tuner t(1, 64, 2);
    CHECK(t.decide(parallel_probe{100, 1.0, 0.9, 1.0, 1.0}, 64) == 2);
    CHECK(t.decide(parallel_probe{190, 1.0, 0.8, 2.0, 2.0}, 64) == 2);
    CHECK(t.state() == cy::tuning_state::cpu_bound);

    parallel_tuner loaded(1, 64, 2);  // other processes hold the cores: the CPU share looks low
    CHECK(loaded.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.4}, 64) == 5);
    CHECK(loaded.decide(parallel_probe{102, 1.0, 0.9, 5.0, 2.0}, 64) ==
          1);  // +2%: not worth 4 more workers
    CHECK(loaded.state() == cy::tuning_state::cpu_bound);

    // The same probe with the 0.6 s the worker spent in the run queue
    // measured: its work needs a whole core, so no more workers than cores.
    parallel_tuner measured(1, 64, 2);
    CHECK(measured.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.4, 0.6}, 64) == 2);
    // I/O-bound under the same load: asleep most of the time, many workers pay.
    parallel_tuner io(1, 64, 2);
    CHECK(io.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.02, 0.3}, 64) == 13);
  }
  SUBCASE(
      "a step whose workers waited for a core is not undone below the core count: the probe saw "
      "the load, not the step") {
    // A decoder on 2 cores while other processes hold them: one worker gets
    // the share two would, so the step to 2 measures +2%. Its workers spent
    // half their busy time in the run queue: the probe cannot judge the step,
    // and 2 workers is what an idle machine would use.
    parallel_tuner loaded(1, 64, 2);
    CHECK(loaded.decide(parallel_probe{100, 1.0, 0.9, 1.0, 1.0}, 64) == 2);
    CHECK(loaded.decide(parallel_probe{102, 1.0, 0.9, 2.0, 1.0, 1.0}, 64) == 2);
    CHECK(loaded.state() == cy::tuning_state::cpu_bound);
    // A step past the cores (a worker that sleeps 1% of its time: 3 on 2 cores)
    // held back the same way settles at the cores, not at the step.
    parallel_tuner past(1, 64, 2);
    CHECK(past.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.99}, 64) == 3);
    CHECK(past.decide(parallel_probe{101, 1.0, 0.9, 3.0, 1.0, 1.9}, 64) == 2);
    CHECK(past.state() == cy::tuning_state::cpu_bound);
    // Never below the count before the step.
    parallel_tuner four(4, 64, 2);
    CHECK(four.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.25}, 64) == 8);
    CHECK(four.decide(parallel_probe{101, 1.0, 0.9, 8.0, 2.0, 4.0}, 64) == 4);
    // A step that fed the consumer is kept even if the rate did not rise (the
    // probes of a decoder on the loaded machine, 2026-12-02: 1 worker, consumer
    // starved 99.8%, 1,627 batches/s; 3 workers, starved 0%, 1,500 batches/s,
    // since the consumer's own thread was slow in that probe; going back to 1
    // worker halved the rate once the load was gone).
    parallel_tuner fed(1, 64, 2);
    CHECK(fed.decide(parallel_probe{83, 0.051, 0.0509, 0.038, 0.036}, 64) == 3);
    CHECK(fed.decide(parallel_probe{78, 0.052, 0.0, 0.036, 0.036}, 64) == 3);
    CHECK(fed.state() == cy::tuning_state::consumer_bound);
    // Nothing held the workers back (under 10% of their time queued): the
    // measurement decides, and a step that did not pay is undone.
    parallel_tuner idle(1, 64, 2);
    CHECK(idle.decide(parallel_probe{100, 1.0, 0.9, 1.0, 1.0}, 64) == 2);
    CHECK(idle.decide(parallel_probe{102, 1.0, 0.9, 2.0, 1.8, 0.15}, 64) == 1);
    CHECK(idle.state() == cy::tuning_state::cpu_bound);
  }
#if defined(__linux__)
  SUBCASE("the run-queue clock reads the second field of this thread's schedstat") {
    auto schedstat_wait = [] {
      std::ifstream in("/proc/thread-self/schedstat");
      std::uint64_t on_cpu = 0, waited = 0;
      in >> on_cpu >> waited;
      return waited;
    };
    cy::detail::run_queue_clock clock;
    auto before = schedstat_wait();
    auto read = clock.waited_ns();
    auto after = schedstat_wait();
    CHECK(read >= before);
    CHECK(read <= after);
  }
#endif
  SUBCASE("the budget and the limit cap the count, and say so") {
    parallel_tuner t(1, 64, 2);
    CHECK(t.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.02}, 4) == 4);
    CHECK(t.decide(parallel_probe{400, 1.0, 0.6, 4.0, 0.1}, 4) == 4);
    CHECK(t.state() == cy::tuning_state::memory_bound);
    parallel_tuner small(1, 3, 2);
    CHECK(small.decide(parallel_probe{100, 1.0, 0.9, 1.0, 0.02}, 64) == 3);
    CHECK(small.decide(parallel_probe{300, 1.0, 0.7, 3.0, 0.1}, 64) == 3);
    CHECK(small.state() == cy::tuning_state::at_limit);
  }
}

TEST_CASE("prefetch_tuner: depth grows only while the queue smooths bursts") {
  using cy::detail::prefetch_probe;
  using cy::detail::prefetch_tuner;
  SUBCASE("never starved: consumer-bound") {
    prefetch_tuner t(2, 64);
    CHECK(t.decide(prefetch_probe{100, 1.0, 0.0, 0.5}, 64) == 2);
    CHECK(t.state() == cy::tuning_state::consumer_bound);
  }
  SUBCASE("starved but the producer never waits: upstream-bound, depth stays") {
    prefetch_tuner t(2, 64);
    CHECK(t.decide(prefetch_probe{100, 1.0, 0.5, 0.0}, 64) == 2);
    CHECK(t.state() == cy::tuning_state::upstream_bound);
    CHECK(!t.settled());  // upstream may speed up (a parallel stage still tuning): keep watching
    // A later epoch takes the value as final.
    prefetch_tuner later(2, 64);
    later.settle(t.depth(), t.state());
    CHECK(later.settled());
    CHECK(later.depth() == 2);
    CHECK(later.state() == cy::tuning_state::upstream_bound);
    // Now upstream comes in bursts the queue is too short for: both wait, depth doubles.
    CHECK(t.decide(prefetch_probe{100, 1.0, 0.5, 0.3}, 64) == 4);
  }
  SUBCASE("both wait: bursts; double while it pays, undo the step that does not") {
    prefetch_tuner t(2, 64);
    CHECK(t.decide(prefetch_probe{100, 1.0, 0.3, 0.3}, 64) == 4);
    CHECK(t.decide(prefetch_probe{120, 1.0, 0.2, 0.2}, 64) == 8);
    CHECK(t.decide(prefetch_probe{121, 1.0, 0.19, 0.2}, 64) == 4);
    CHECK(t.state() == cy::tuning_state::upstream_bound);
    CHECK(t.settled());
  }
  SUBCASE("the budget caps the depth") {
    prefetch_tuner t(2, 64);
    CHECK(t.decide(prefetch_probe{100, 1.0, 0.3, 0.3}, 3) == 3);
    CHECK(t.decide(prefetch_probe{120, 1.0, 0.2, 0.2}, 3) == 3);
    CHECK(t.state() == cy::tuning_state::memory_bound);
  }
}

TEST_CASE("spsc_ring: a raised limit wakes a producer blocked at the old one") {
  cy::spsc_ring<int> ring(8);
  ring.set_limit(2);
  CHECK(ring.limit() == 2);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 5; ++i) {
      REQUIRE(ring.push(int{i}));
      pushed.fetch_add(1);
    }
  });
  while (pushed.load() < 2) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(ring.size() == 2);  // the third push waits however long we wait
  ring.set_limit(5);
  producer.join();
  CHECK(ring.size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(ring.pop() == i);
  ring.set_limit(100);
  CHECK(ring.limit() == 8);  // clamped to the capacity
}
