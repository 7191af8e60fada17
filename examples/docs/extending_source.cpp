// docs/extending.md: a source of your own, over an in-memory table, used with
// the same plans, parallel execution and error handling as the built-in ones.
#include <conveyor/conveyor.hpp>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace cy = conveyor;

// Rows of (age, income) held in memory. A source is a type with batch_type,
// size(), name() and a const, thread-safe read(indices, ctx).
class table_source {
 public:
  using batch_type = cy::record_batch<cy::dense<"features", float>>;

  explicit table_source(std::vector<std::pair<float, float>> rows) : rows_(std::move(rows)) {}

  [[nodiscard]] std::uint64_t size() const noexcept { return rows_.size(); }
  [[nodiscard]] std::string_view name() const noexcept { return "table"; }

  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);  // the index column: intermediate, pageable
    // The delivered column: from the sink's pool when the pipeline has one.
    cy::dense_column<float> features(ctx.pool_for("features"), indices.size(), 2);
    for (std::size_t r = 0; r < indices.size(); ++r) {
      auto [age, income] = rows_.at(indices[r]);
      if (age < 0) ctx.reject(cy::data_error("negative age", "table", indices[r]), r);  // dropped under skip
      features(r, 0) = age;
      features(r, 1) = income;
    }
    out.get<"features">() = std::move(features);
    return out;
  }
  // What it reads, for cache(...): another table is another dataset. A source of
  // files folds in cy::file_fingerprint(path) (source/file_fingerprint.hpp).
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    const std::size_t bytes = rows_.size() * sizeof(rows_[0]);
    return cy::hash_combine(cy::hash_name("table"), cy::hash_bytes(rows_.data(), bytes));
  }

 private:
  std::vector<std::pair<float, float>> rows_;
};
static_assert(cy::record_source<table_source>);
static_assert(cy::fingerprinted_source<table_source>);

int main() {
  table_source table({{31, 52000}, {-1, 0}, {45, 61000}, {23, 30500}, {52, 88000}});
  auto pipe = table | cy::shuffle(7) | cy::batch(2) | cy::on_errors(cy::on_error::skip) | cy::parallel(2);
  std::size_t rows = 0;
  for (auto& batch : pipe.epoch(0)) rows += batch.rows();
  const auto key = [](float age) { return table_source({{age, 52000}}).fingerprint(); };
  const bool keyed_by_rows = key(31) == key(31) && key(31) != key(32);
  std::cout << rows << " rows, " << pipe.stats().stages.front().skipped << " skipped\n";
  return rows == 4 && keyed_by_rows ? 0 : 1;
}
