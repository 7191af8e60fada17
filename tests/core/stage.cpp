// The stage protocol and the pipeline as a value: copies are independent,
// rejected records are dropped, checkpoints past the end are refused,
// delivered columns come from the sink's pool and can leave without a copy.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <conveyor/conveyor.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "support/counting_pool.hpp"

namespace cy = conveyor;

namespace {
auto numbers(std::uint64_t n) {
  return cy::generate<cy::dense<"x", float>>(n, 1, [](std::uint64_t i, std::span<float> row) {
    row[0] = static_cast<float>(i);
  });
}

std::vector<std::uint64_t> indices_of(auto&& pipe, std::uint64_t epoch = 0) {
  std::vector<std::uint64_t> out;
  for (auto& b : pipe.epoch(epoch))
    for (auto i : b.indices()) out.push_back(i);
  return out;
}

using conveyor::test::counting_pool;

template <class Column>
concept host_elements = requires(Column& c) {
  c.values();
  c.row(0);
};

/// A user stage written against the protocol: adds 1 to every value.
struct add_one {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  CONVEYOR_STAGE_MESSAGES("add_one()")
  [[nodiscard]] std::string_view name() const noexcept { return "add_one"; }
  template <class Batch>
  Batch operator()(Batch&& b, const cy::stage_context&) const {
    for (auto& v : b.template get<"x">().values()) v += 1;
    return std::move(b);
  }
};
}  // namespace

TEST_CASE("a copy of a pipeline keeps its own settings, stats rows and position") {
  auto base = numbers(10) | cy::batch(4) | cy::map("rejects 3", [](auto&& b, const cy::stage_context& ctx) {
                for (auto i : b.indices())
                  if (i == 3) ctx.reject(cy::data_error("three is bad", "numbers", i));
                return std::move(b);
              });
  auto skipping = base | cy::on_errors(cy::on_error::skip);
  CHECK(base.policy().action == cy::error_policy::kind::fail);
  CHECK(skipping.policy().action == cy::error_policy::kind::skip);
  CHECK_THROWS_AS(indices_of(base), cy::stage_error);
  CHECK(indices_of(skipping) == std::vector<std::uint64_t>{0, 1, 2, 4, 5, 6, 7, 8, 9});

  // Each pipeline's stats rows carry its own stage names.
  auto labelled = base | cy::map("second", [](auto&& b) { return std::move(b); });
  (void)indices_of(labelled | cy::on_errors(cy::on_error::skip));
  auto extended = labelled | cy::on_errors(cy::on_error::skip);
  (void)indices_of(extended);
  std::ostringstream text;
  text << extended.stats();
  CHECK(text.str().find("second") != std::string::npos);
  std::ostringstream skipping_text;
  skipping_text << skipping.stats();
  CHECK(skipping_text.str().find("second") == std::string::npos);
  CHECK(skipping.stats().stages.size() == 2);

  // A copy taken mid-epoch has the position; running the copy leaves the original's alone.
  auto pipe = numbers(10) | cy::batch(2);
  {
    auto run = pipe.epoch(0);
    auto it = run.begin();
    ++it;
  }
  CHECK(pipe.state().next_batch == 2);
  auto copy = pipe;
  CHECK(copy.state().next_batch == 2);
  (void)indices_of(copy, 1);
  CHECK(copy.state().epoch == 1);
  CHECK(pipe.state().epoch == 0);
  CHECK(pipe.state().next_batch == 2);
}

TEST_CASE("a pipeline whose stages hold lambdas can be assigned") {
  // Lambdas cannot be assigned, so member-wise assignment is not available;
  // assignment rebuilds the pipeline in place instead (it once recursed).
  auto make = [](std::uint64_t n) {
    return numbers(n) | cy::batch(2) | cy::map("plus one", [](auto&& b) {
             for (auto& v : b.template get<"x">().values()) v += 1;
             return std::move(b);
           });
  };
  auto a = make(4);
  auto b = make(6);
  (void)indices_of(a);
  a = b;  // copy
  CHECK(indices_of(a).size() == 6);
  CHECK(indices_of(b).size() == 6);
  a = make(8);  // move
  CHECK(indices_of(a).size() == 8);
  a = a | cy::on_errors(cy::on_error::skip);  // a setting, as memory_budget and on_errors are written
  CHECK(a.policy().action == cy::error_policy::kind::skip);
  float first = -1;
  for (auto& batch : a.epoch(0)) {
    first = batch.template get<"x">().values()[0];
    break;
  }
  CHECK(first == 1.0f);
}

TEST_CASE("under skip, a record a map stage rejects is dropped, and counted") {
  auto pipe = numbers(10) | cy::batch(5) | cy::on_errors(cy::on_error::skip) |
              cy::map("odd out", [](auto&& b, const cy::stage_context& ctx) {
                for (std::size_t r = 0; r < b.rows(); ++r)
                  if (b.indices()[r] % 2 == 1) ctx.reject(cy::data_error("odd", "numbers"), r);
                return std::move(b);
              });
  std::vector<float> values;
  for (auto& b : pipe.epoch(0)) {
    CHECK(b.get<"x">().rows() == b.rows());
    for (std::size_t r = 0; r < b.rows(); ++r) values.push_back(b.get<"x">()(r, 0));
  }
  CHECK(values == std::vector<float>{0, 2, 4, 6, 8});
  CHECK(pipe.stats().stages.back().skipped == 5);
}

TEST_CASE("a checkpoint past the end of its epoch is refused with a clear error") {
  auto pipe = numbers(8) | cy::batch(2);
  cy::pipeline_state past{0, 99, pipe.plan().fingerprint(), 8};
  CHECK_THROWS_WITH_AS(pipe.restore(past), doctest::Contains("resumes at batch 99 of epoch 0, which has only 4"),
                       cy::data_error);
  cy::pipeline_state at_end{0, 4, pipe.plan().fingerprint(), 8};
  pipe.restore(at_end);  // exactly at the end: valid, resumes to nothing
  CHECK(indices_of(pipe).empty());
}

TEST_CASE("a user stage written against the protocol joins the chain in both positions") {
  auto on_function = cy::append_stage(numbers(6) | cy::batch(3), add_one{}) | cy::parallel(2);
  auto on_stream = cy::append_stage(numbers(6) | cy::batch(3) | cy::prefetch(2), add_one{});
  for (auto* p : {&on_function}) (void)p;
  std::vector<float> a, b;
  for (auto& batch : on_function.epoch(0))
    for (auto v : batch.get<"x">().values()) a.push_back(v);
  for (auto& batch : on_stream.epoch(0))
    for (auto v : batch.get<"x">().values()) b.push_back(v);
  CHECK(a == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(a == b);
  std::ostringstream text;
  text << on_stream.stats();
  CHECK(text.str().find("add_one") != std::string::npos);
}

TEST_CASE("with_pool: delivered columns come from the sink's pool, index columns do not") {
  auto pool = std::make_shared<counting_pool>();
  auto pipe = numbers(8) | cy::batch(4) | cy::with_pool(pool);
  int batches = 0;
  for (auto& b : pipe.epoch(0)) {
    ++batches;
    std::lock_guard lock(pool->mutex);
    CHECK(pool->live.count(b.get<"x">().data()) == 1);
    CHECK(pool->live.count(const_cast<std::uint64_t*>(b.indices().data())) == 0);
  }
  CHECK(batches == 2);
  CHECK(pool->acquired == 2);  // one "x" column per batch, nothing else
  CHECK(pool->released == 2);
}

TEST_CASE("a sink can take a column's buffer without a copy; the pool reuses it only when released") {
  auto pool = std::make_shared<counting_pool>();
  auto pipe = numbers(8) | cy::batch(4) | cy::with_pool(pool);
  std::vector<std::pair<void*, cy::buffer_release>> kept;
  for (auto& b : pipe.epoch(0)) {
    auto& x = b.get<"x">();
    const float* before = x.data();
    cy::pooled_buffer buffer = std::move(x).take_buffer();
    CHECK(buffer.data() == before);
    CHECK(x.rows() == 0);
    void* data = buffer.data();
    kept.emplace_back(data, buffer.detach());
    CHECK(buffer.data() == nullptr);
  }
  // The batches are gone; the taken buffers are still live and hold their values.
  CHECK(pool->released == 0);
  CHECK(static_cast<float*>(kept[1].first)[3] == 7.0f);
  for (auto& [data, release] : kept) release(data);
  CHECK(pool->released == 2);
  std::lock_guard lock(pool->mutex);
  CHECK(pool->live.empty());
}

TEST_CASE("pageable_pool: size classes, reuse, and batch-sized buffers on 2 MiB huge-page boundaries") {
  cy::pageable_pool pool;
  std::size_t capacity = 0;
  // Small requests: the power of two at or above, from 256 bytes.
  void* small = pool.acquire(100, capacity);
  CHECK(capacity == 256);
  CHECK(reinterpret_cast<std::uintptr_t>(small) % cy::buffer_pool::alignment == 0);
  pool.release(small, capacity);
  CHECK(pool.acquire(200, capacity) == small);  // reused, same class
  pool.release(small, capacity);
  // Just under 1 MiB: an ordinary class.
  void* below = pool.acquire((std::size_t{1} << 20) - 1, capacity);
  CHECK(capacity == std::size_t{1} << 20);
  pool.release(below, capacity);
  // 1 MiB and more (a column of 256 rows of 1024 float32): at least 2 MiB,
  // aligned to 2 MiB on Linux, writable to its last byte, reused when released.
  constexpr std::size_t mib = std::size_t{1} << 20;
  for (std::size_t bytes : {mib, mib + 4144, 2 * mib, 3 * mib}) {
    CAPTURE(bytes);
    void* big = pool.acquire(bytes, capacity);
    CHECK(capacity >= 2 * mib);
    CHECK(capacity >= bytes);
    CHECK(capacity < 2 * bytes + 1);  // within the factor of two every class allows
#if defined(__linux__)
    CHECK(reinterpret_cast<std::uintptr_t>(big) % (2 * mib) == 0);
#endif
    auto* bytes_of = static_cast<unsigned char*>(big);
    std::fill(bytes_of, bytes_of + capacity, static_cast<unsigned char>(0xab));
    CHECK(bytes_of[0] == 0xab);
    CHECK(bytes_of[capacity - 1] == 0xab);
    const std::size_t first_capacity = capacity;
    pool.release(big, capacity);
    CHECK(pool.acquire(bytes, capacity) == big);
    CHECK(capacity == first_capacity);
    pool.release(big, capacity);
  }
  // A pool that caches nothing gives large buffers straight back (unmapped).
  cy::pageable_pool uncached(0);
  void* big = uncached.acquire(mib, capacity);
  static_cast<unsigned char*>(big)[capacity - 1] = 1;
  uncached.release(big, capacity);
}

TEST_CASE("memory spaces are part of column types") {
  using host = cy::dense<"x", float>;
  using device = cy::dense<"x", float, cy::memory_space::device>;
  static_assert(cy::space_of<host>() == cy::memory_space::host);
  static_assert(cy::space_of<device>() == cy::memory_space::device);
  static_assert(!cy::host_accessible(cy::memory_space::device));
  static_assert(cy::host_accessible(cy::memory_space::pinned));
  // Host element access exists only for host-accessible storage.
  static_assert(host_elements<cy::dense_column<float>>);
  static_assert(host_elements<cy::dense_column<float, cy::memory_space::pinned>>);
  static_assert(!host_elements<cy::dense_column<float, cy::memory_space::device>>);
  static_assert(cy::host_pool<cy::pageable_pool>);
  CHECK(cy::pageable_pool().kind() == std::string("pageable"));
}
