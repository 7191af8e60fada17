// A sink written by a user against the public stage protocol alone: its batch
// type says which record_batch's columns it delivers (a member
// `delivered_batch`, or a specialization of conveyor::delivered_batch for a
// type the user does not own), so with_pool serves those columns; a batch type
// that says nothing delivers none, and the columns come from the pipeline's
// pageable pool.
#include <doctest/doctest.h>

#include <conveyor/conveyor.hpp>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "support/counting_pool.hpp"

namespace cy = conveyor;

namespace {

auto numbers(std::uint64_t n) {
  return cy::generate<cy::dense<"x", float>>(
      n, 1, [](std::uint64_t i, std::span<float> row) { row[0] = static_cast<float>(i); });
}

/// The user's batch types: each wraps the record_batch the sink received and,
/// as every batch type, has rows() and size_bytes() (for the stats).
template <class Batch>
struct declared_rows {  // says so by a member
  using delivered_batch = Batch;
  Batch batch;
  [[nodiscard]] std::size_t rows() const noexcept { return batch.rows(); }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return batch.size_bytes(); }
};
template <class Batch>
struct specialized_rows {  // says so through the trait (as for a type one does not own)
  Batch batch;
  [[nodiscard]] std::size_t rows() const noexcept { return batch.rows(); }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return batch.size_bytes(); }
};
template <class Batch>
struct silent_rows {  // says nothing
  Batch batch;
  [[nodiscard]] std::size_t rows() const noexcept { return batch.rows(); }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return batch.size_bytes(); }
};

/// A sink: the last stage, turning each record_batch into Wrapper<record_batch>.
template <template <class> class Wrapper>
struct wrap_rows {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  static constexpr cy::stage_placement placement{.must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("wrap_rows()")
  [[nodiscard]] std::string_view name() const noexcept { return "wrap_rows"; }
  template <class Batch>
  Wrapper<std::remove_cvref_t<Batch>> operator()(Batch&& batch, const cy::stage_context&) const {
    return {std::move(batch)};
  }
};

using x_batch = cy::record_batch<cy::dense<"x", float>>;

}  // namespace

template <class Batch>
struct conveyor::delivered_batch<specialized_rows<Batch>> {
  using type = Batch;
};

// The trait answers at compile time: a record_batch delivers itself, a wrapper
// what it names (through any depth), a silent type nothing.
static_assert(std::is_same_v<cy::delivered_batch_t<x_batch>, x_batch>);
static_assert(std::is_same_v<cy::delivered_batch_t<declared_rows<x_batch>>, x_batch>);
static_assert(std::is_same_v<cy::delivered_batch_t<specialized_rows<x_batch>>, x_batch>);
static_assert(
    std::is_same_v<cy::delivered_batch_t<declared_rows<specialized_rows<x_batch>>>, x_batch>);
static_assert(!cy::delivers_columns<silent_rows<x_batch>>);
static_assert(!cy::delivers_columns<int>);
static_assert(cy::delivers_columns<declared_rows<x_batch>>);

namespace {

/// Runs `numbers(8) | batch(4) | with_pool(pool) | sink` and returns, per
/// batch, whether column "x" came from the pool.
template <class Sink>
std::vector<bool> x_from_pool(Sink sink, const std::shared_ptr<cy::test::counting_pool>& pool) {
  auto pipe = cy::append_stage(numbers(8) | cy::batch(4) | cy::with_pool(pool), sink);
  std::vector<bool> from_pool;
  float sum = 0;
  for (auto& out : pipe.epoch(0)) {
    from_pool.push_back(pool->holds(out.batch.template get<"x">().data()));
    for (float v : out.batch.template get<"x">().values()) sum += v;
  }
  CHECK(sum == 28.0f);  // 0 + 1 + ... + 7: the sink passed every row on
  return from_pool;
}

}  // namespace

TEST_CASE(
    "a user sink whose batch declares delivered_batch gets its columns from with_pool's pool") {
  auto pool = std::make_shared<cy::test::counting_pool>();
  CHECK(x_from_pool(wrap_rows<declared_rows>{}, pool) == std::vector<bool>{true, true});
  CHECK(pool->acquired == 2);  // one "x" column per batch; the index columns are not delivered
  CHECK(pool->released == 2);
}

TEST_CASE(
    "a specialization of conveyor::delivered_batch does the same for a type one does not own") {
  auto pool = std::make_shared<cy::test::counting_pool>();
  CHECK(x_from_pool(wrap_rows<specialized_rows>{}, pool) == std::vector<bool>{true, true});
  CHECK(pool->acquired == 2);
}

TEST_CASE(
    "a user sink whose batch says nothing delivers no columns: with_pool's pool is not used") {
  auto pool = std::make_shared<cy::test::counting_pool>();
  CHECK(x_from_pool(wrap_rows<silent_rows>{}, pool) == std::vector<bool>{false, false});
  CHECK(pool->acquired == 0);
}

namespace {
/// A sink that rejects record 5 while wrapping: its output cannot drop a row.
struct rejecting_sink : wrap_rows<declared_rows> {
  template <class Batch>
  declared_rows<std::remove_cvref_t<Batch>> operator()(Batch&& batch,
                                                       const cy::stage_context& ctx) const {
    for (auto i : batch.indices())
      if (i == 5) ctx.reject(cy::data_error("five is bad", "numbers", i));
    return {std::move(batch)};
  }
};
}  // namespace

TEST_CASE("a user sink that rejects records under skip fails with a stage_error saying why") {
  auto pipe = cy::append_stage(numbers(8) | cy::batch(4) | cy::on_errors(cy::on_error::skip),
                               rejecting_sink{});
  auto run = pipe.epoch(0);
  auto it = run.begin();  // batch 0 (records 0-3) is clean
  CHECK(it->rows() == 4);
  try {
    ++it;  // batch 1 holds record 5
    FAIL("the rejection was ignored");
  } catch (const cy::stage_error& e) {
    CHECK(e.stage() == "wrap_rows");
    CHECK(std::string(e.what()).find("its output is not a record_batch") != std::string::npos);
  }
}
