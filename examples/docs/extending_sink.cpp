// docs/extending.md, "A sink": a sink of your own whose batch type is not a
// record_batch. Its batch type says which columns it delivers
// (delivered_batch), so with_pool(...) serves those columns all along the
// chain and the sink takes the buffer over without a copy.
#include <conveyor/conveyor.hpp>
#include <iostream>
#include <memory>
#include <type_traits>

namespace cy = conveyor;

// The sink's batch: column "x" as a rows x width matrix owning its buffer
// (what a hand-over to another framework looks like). Like every batch type
// it has rows() and size_bytes() (the stats count them).
template <class Batch>
struct matrix_batch {
  using delivered_batch = Batch;  // its columns come from with_pool's pool
  cy::batch_info info;
  std::size_t rows_ = 0, width = 0;
  cy::pooled_buffer values;

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return rows_ * width * sizeof(float); }
  [[nodiscard]] const float* data() const noexcept {
    return static_cast<const float*>(values.data());
  }
};

// The sink: a map stage that must stand last and returns the matrix.
struct to_matrix {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  static constexpr cy::stage_placement placement{.must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("to_matrix()")

  [[nodiscard]] std::string_view name() const noexcept { return "to_matrix"; }
  template <class Batch>
  matrix_batch<std::remove_cvref_t<Batch>> operator()(Batch&& batch,
                                                      const cy::stage_context&) const {
    auto& x = batch.template get<"x">();
    const std::size_t rows = x.rows(), width = x.width();
    return {batch.info(), rows, width, std::move(x).take_buffer()};
  }
};

int main() {
  auto source = cy::generate<cy::dense<"x", float>>(
      1'000, 4, [](std::uint64_t i, std::span<float> row) { row[0] = static_cast<float>(i); });
  // Stands for another framework's allocator.
  auto framework_pool = std::make_shared<cy::pageable_pool>();
  auto pipe =
      cy::append_stage(source | cy::batch(100) | cy::with_pool(framework_pool), to_matrix{});

  std::size_t rows = 0, from_pool = 0;
  double first_sum = 0;
  for (auto& m : pipe.epoch(0)) {
    rows += m.rows();
    from_pool += m.values.pool() == framework_pool ? 1 : 0;
    for (std::size_t r = 0; r < m.rows(); ++r) first_sum += m.data()[r * m.width];
  }
  std::cout << rows << " rows; " << from_pool << " of 10 matrices in the framework's pool\n";
  return rows == 1'000 && from_pool == 10 && first_sum == 499'500.0 ? 0 : 1;
}
