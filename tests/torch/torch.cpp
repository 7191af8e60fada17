// The LibTorch component in one translation unit (LibTorch's headers are
// heavy): to_torch() tensors share the pool's memory, outlive the loop and the
// pipeline, keep their buffers from reuse while alive; every dtype; structured
// bindings; the torch::data-style loader; the CUDA path's error without a GPU.
#include <doctest/doctest.h>

#include <atomic>
#include <conveyor/conveyor.hpp>
#include <conveyor/torch.hpp>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/counting_pool.hpp"

namespace cy = conveyor;

namespace {

using conveyor::test::counting_pool;

/// The value of column `column`, record `record`, element `c`: small enough for int8.
double expected_value(std::size_t column, std::uint64_t record, std::size_t c) {
  return static_cast<double>((record * 3 + c + column) % 100);
}

template <class T>
T make_value(double v) {
  if constexpr (std::is_same_v<T, cy::float16> || std::is_same_v<T, cy::bfloat16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

/// A source of `count` records with one dense column per spec, each `width` wide.
template <class... Columns>
struct typed_source {
  using batch_type = cy::record_batch<Columns...>;
  std::uint64_t count;
  std::size_t width;
  std::uint64_t size() const noexcept { return count; }
  std::string_view name() const noexcept { return "typed"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    fill(out, indices, ctx, std::index_sequence_for<Columns...>{});
    return out;
  }

 private:
  template <std::size_t... I>
  void fill(batch_type& out, std::span<const std::uint64_t> indices, const cy::stage_context& ctx,
            std::index_sequence<I...>) const {
    (fill_column<I, Columns>(out, indices, ctx), ...);
  }
  template <std::size_t I, class Column>
  void fill_column(batch_type& out, std::span<const std::uint64_t> indices,
                   const cy::stage_context& ctx) const {
    using T = typename Column::value_type;
    cy::dense_column<T> column(ctx.pool_for(Column::name.view()), indices.size(), width);
    for (std::size_t r = 0; r < indices.size(); ++r)
      for (std::size_t c = 0; c < width; ++c)
        column(r, c) = make_value<T>(expected_value(I, indices[r], c));
    std::get<I>(out.columns()) = std::move(column);
  }
};

using xy_source = typed_source<cy::dense<"x", float>, cy::dense<"y", std::int64_t>>;

/// Checks a {rows, width} tensor of column `column` against the records `indices`.
void check_values(const torch::Tensor& tensor, std::size_t column,
                  std::span<const std::uint64_t> indices, std::size_t width) {
  REQUIRE(tensor.dim() == 2);
  REQUIRE(tensor.size(0) == static_cast<std::int64_t>(indices.size()));
  REQUIRE(tensor.size(1) == static_cast<std::int64_t>(width));
  auto as_double = tensor.to(torch::kCPU).to(torch::kDouble).contiguous();
  const double* values = as_double.data_ptr<double>();
  for (std::size_t r = 0; r < indices.size(); ++r)
    for (std::size_t c = 0; c < width; ++c)
      REQUIRE(values[r * width + c] == expected_value(column, indices[r], c));
}

}  // namespace

TEST_CASE("to_torch: each column is a tensor over the pool's buffer, no copy") {
  auto pool = std::make_shared<counting_pool>();
  auto pipe = xy_source{10, 3} | cy::batch(4) | cy::with_pool(pool) | cy::to_torch();
  static_assert(cy::is_tensor_batch_v<decltype(pipe)::batch_type>);
  std::size_t batches = 0;
  for (auto& batch : pipe.epoch(0)) {
    auto& x = batch.get<"x">();
    auto& y = batch[cy::column<"y">];
    CHECK(x.dtype() == torch::kFloat);
    CHECK(y.dtype() == torch::kLong);
    CHECK(x.device().is_cpu());
    CHECK(pool->holds(x.data_ptr()));  // the decoder's buffer itself
    CHECK(pool->holds(y.data_ptr()));
    CHECK_FALSE(pool->holds(batch.indices_tensor().data_ptr()));  // index columns stay pageable
    check_values(x, 0, batch.indices(), 3);
    check_values(y, 1, batch.indices(), 3);
    CHECK(batch.rows() == (batches < 2 ? 4u : 2u));
    CHECK(batch.number() == batches);
    CHECK(batch.epoch() == 0);
    ++batches;
  }
  CHECK(batches == 3);
  CHECK(pool->acquired == 6);  // x and y per batch, nothing else, no copies
  CHECK(pool->released == 6);
}

TEST_CASE(
    "to_torch: a tensor kept past the loop stays valid and its buffer is not reused while alive") {
  auto pool = std::make_shared<counting_pool>();
  auto pipe =
      xy_source{12, 2} | cy::shuffle(3) | cy::batch(4) | cy::with_pool(pool) | cy::to_torch();
  std::vector<torch::Tensor> kept;
  std::vector<std::vector<std::uint64_t>> kept_indices;
  for (auto& batch : pipe.epoch(1)) {
    // A view keeps the buffer alive as well as the tensor.
    kept.push_back(batch.get<"x">().slice(/*dim=*/1, 0, 2));
    kept_indices.emplace_back(batch.indices().begin(), batch.indices().end());
    CHECK(pool->holds(kept.back().data_ptr()));
  }
  // Three batches: their y columns went back to the pool, the kept x did not.
  CHECK(pool->acquired == 6);
  CHECK(pool->released == 3);
  for (std::size_t b = 0; b < kept.size(); ++b) {
    CHECK(pool->holds(kept[b].data_ptr()));
    check_values(kept[b], 0, kept_indices[b], 2);
  }
  // Another epoch runs while they live: its buffers are other memory.
  for (auto& batch : pipe.epoch(2))
    for (const auto& held : kept) CHECK(batch.get<"x">().data_ptr() != held.data_ptr());
  for (std::size_t b = 0; b < kept.size(); ++b) check_values(kept[b], 0, kept_indices[b], 2);
  kept.clear();
  CHECK(pool->acquired == 12);
  CHECK(pool->released == 12);
}

TEST_CASE(
    "to_torch: a recycling pool hands a kept tensor's memory out again only after the tensor "
    "dies") {
  auto pool = std::make_shared<cy::pageable_pool>();
  auto pipe = xy_source{40, 8} | cy::batch(4) | cy::with_pool(pool) | cy::to_torch();
  torch::Tensor kept;
  std::vector<std::uint64_t> kept_indices;
  std::set<void*> seen_after;
  for (auto& batch : pipe.epoch(0)) {
    if (!kept.defined()) {
      kept = batch.get<"x">();
      kept_indices.assign(batch.indices().begin(), batch.indices().end());
    } else {
      seen_after.insert(batch.get<"x">().data_ptr());
      seen_after.insert(batch.get<"y">().data_ptr());
    }
  }
  CHECK(seen_after.count(kept.data_ptr()) == 0);
  check_values(kept, 0, kept_indices, 8);
  void* memory = kept.data_ptr();
  kept = torch::Tensor();
  bool reused = false;
  for (auto& batch : pipe.epoch(0)) reused = reused || batch.get<"x">().data_ptr() == memory;
  CHECK(reused);  // the pool recycles it once the tensor is gone
}

TEST_CASE("to_torch: tensors outlive the pipeline that made them") {
  std::vector<torch::Tensor> kept;
  std::vector<torch::Tensor> kept_indices;
  {
    auto pipe = xy_source{9, 5} | cy::batch(3) | cy::parallel(2) | cy::prefetch(2) | cy::to_torch();
    for (auto& batch : pipe.epoch(0)) {
      kept.push_back(batch.get<"y">());
      kept_indices.push_back(batch.indices_tensor());
    }
  }  // the pipeline, its pageable pool handle and its threads are gone
  REQUIRE(kept.size() == 3);
  for (std::size_t b = 0; b < kept.size(); ++b) {
    CHECK(kept_indices[b].dtype() == torch::kLong);
    std::span<const std::uint64_t> indices(
        static_cast<const std::uint64_t*>(kept_indices[b].data_ptr()),
        static_cast<std::size_t>(kept_indices[b].numel()));
    CHECK(indices[0] == b * 3);
    check_values(kept[b], 1, indices, 5);
  }
}

TEST_CASE("to_torch: every dtype") {
  auto pipe =
      typed_source<cy::dense<"f32", float>, cy::dense<"f64", double>, cy::dense<"f16", cy::float16>,
                   cy::dense<"bf16", cy::bfloat16>, cy::dense<"u8", std::uint8_t>,
                   cy::dense<"i8", std::int8_t>, cy::dense<"i16", std::int16_t>,
                   cy::dense<"i32", std::int32_t>, cy::dense<"i64", std::int64_t>>{6, 4} |
      cy::batch(6) | cy::to_torch();
  const std::vector<torch::Dtype> dtypes = {torch::kFloat,    torch::kDouble, torch::kHalf,
                                            torch::kBFloat16, torch::kByte,   torch::kChar,
                                            torch::kShort,    torch::kInt,    torch::kLong};
  for (auto& batch : pipe.epoch(0)) {
    REQUIRE(batch.tensors().size() == dtypes.size());
    for (std::size_t i = 0; i < dtypes.size(); ++i) {
      CAPTURE(batch.names()[i]);
      CHECK(batch.tensors()[i].dtype() == dtypes[i]);
      check_values(batch.tensors()[i], i, batch.indices(), 4);
    }
  }
}

TEST_CASE(
    "to_torch: structured bindings give the tensors in column order; names, positions, info") {
  auto pipe = xy_source{8, 2} | cy::batch(4) | cy::to_torch();
  std::size_t batches = 0;
  for (auto&& [x, y] : pipe.epoch(0)) {
    static_assert(std::is_same_v<decltype(x), torch::Tensor>);
    CHECK(x.dtype() == torch::kFloat);
    CHECK(y.dtype() == torch::kLong);
    CHECK(x.size(0) == 4);
    ++batches;
  }
  CHECK(batches == 2);
  for (auto& batch : pipe.epoch(0)) {
    auto& [x, y] = batch;
    CHECK(x.data_ptr() == batch.get<0>().data_ptr());
    CHECK(y.data_ptr() == batch.at("y").data_ptr());
    CHECK_THROWS_AS((void)batch.at("z"), std::out_of_range);
    CHECK(batch.names()[0] == "x");
    CHECK(batch.names()[1] == "y");
    CHECK(batch.indices_tensor().size(0) == 4);
    CHECK(batch.size_bytes() == 4 * 2 * 4 + 4 * 2 * 8 + 4 * 8);
  }
  static_assert(std::tuple_size_v<decltype(pipe)::batch_type> == 2);
}

TEST_CASE("to_torch: both call forms, a stats row") {
  auto source = xy_source{6, 1};
  auto called = cy::to_torch(source | cy::batch(3));
  auto piped = source | cy::batch(3) | cy::to_torch(torch::kCPU);
  static_assert(std::is_same_v<decltype(called), decltype(piped)>);
  std::size_t rows = 0;
  for (auto& batch : piped.epoch(0)) rows += batch.rows();
  CHECK(rows == 6);
  std::ostringstream text;
  text << piped.stats();
  CHECK(text.str().find("to_torch") != std::string::npos);
}

TEST_CASE(
    "to_torch(torch::kCUDA): tensors on the GPU, or a clear error when the pipeline is built "
    "without CUDA") {
  auto base = xy_source{8, 3} | cy::batch(4);
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: checking the error only");
    CHECK_THROWS_WITH_AS(base | cy::to_torch(torch::kCUDA),
                         doctest::Contains("to_torch(cuda): CUDA is not available"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(cy::to_torch(base, torch::Device(torch::kCUDA, 0)),
                         doctest::Contains("CUDA is not available"), std::invalid_argument);
    return;
  }
  auto pipe = base | cy::prefetch(2) | cy::to_torch(torch::kCUDA);
  for (auto&& [x, y] : pipe.epoch(0)) {
    CHECK(x.device().is_cuda());
    CHECK(y.device().is_cuda());
  }
  for (auto& batch : pipe.epoch(0)) {
    CHECK(batch.indices_tensor().device().is_cpu());
    check_values(batch.get<"x">(), 0, batch.indices(), 3);
    check_values(batch.get<"y">(), 1, batch.indices(), 3);
  }
}

TEST_CASE("make_data_loader: a torch::data-style loop over a pipeline, one epoch per range-for") {
  auto pipe = xy_source{10, 2} | cy::shuffle(5) | cy::batch(4) | cy::parallel(2);
  auto loader = cy::make_data_loader(pipe);  // adds | to_torch()
  for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
    std::int64_t rows = 0;
    std::set<std::int64_t> records;
    for (auto& batch : *loader) {
      static_assert(std::is_same_v<std::remove_cvref_t<decltype(batch)>, torch::data::Example<>>);
      CHECK(batch.data.dtype() == torch::kFloat);
      CHECK(batch.target.dtype() == torch::kLong);
      CHECK(batch.data.size(0) == batch.target.size(0));
      rows += batch.data.size(0);
      // Column 0 of x is (record * 3) % 100: recover the record.
      for (std::int64_t r = 0; r < batch.data.size(0); ++r)
        records.insert(static_cast<std::int64_t>(batch.data[r][0].item<float>()) / 3);
    }
    CHECK(loader->epoch() == epoch);
    CHECK(rows == 10);
    CHECK(records.size() == 10);
  }
  std::ostringstream text;
  text << loader->pipeline().stats();
  CHECK(text.str().find("to_torch") != std::string::npos);
}

TEST_CASE(
    "make_data_loader: a pipeline already ending in to_torch(), a one-column pipeline, early "
    "exit") {
  auto loader =
      cy::make_data_loader(xy_source{10, 2} | cy::batch(5) | cy::to_torch(), /*first_epoch=*/3);
  for (auto& batch : *loader) {
    CHECK(batch.data.size(0) == 5);
    break;
  }
  CHECK(loader->epoch() == 3);
  loader->finish();
  int batches = 0;
  for (auto& batch : *loader) batches += batch.data.defined() ? 1 : 0;
  CHECK(loader->epoch() == 4);
  CHECK(batches == 2);

  auto single = cy::make_data_loader(typed_source<cy::dense<"x", float>>{6, 2} | cy::batch(3));
  for (auto& batch : *single) {
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(batch)>, torch::data::TensorExample>);
    CHECK(batch.data.size(0) == 3);
  }
}
