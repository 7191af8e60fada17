// docs/extending.md: a decoder of your own over a dense column, and a stage of
// your own written against the stage protocol (core/stage.hpp).
#include <cmath>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <iostream>

namespace cy = conveyor;

// A column decoder: reads the dense column "age" (uint8 years) and writes a
// one-hot decade bucket per row. It names its input column and value type;
// decode(...) checks at compile time that upstream has them.
struct decade_one_hot {
  using value_type = float;
  using input_value = std::uint8_t;
  static constexpr auto input = cy::fixed_string("age");

  [[nodiscard]] std::size_t width() const noexcept { return 10; }
  void decode_rows(const cy::dense_column<std::uint8_t>& in, cy::dense_column<float>& out,
                   std::span<const std::uint64_t> records, const cy::stage_context& ctx) const {
    for (std::size_t r = 0; r < in.rows(); ++r) {
      auto row = out.row(r);
      std::fill(row.begin(), row.end(), 0.0f);
      unsigned decade = in(r, 0) / 10;
      if (decade >= 10) {
        ctx.reject(
            cy::data_error("age " + std::to_string(in(r, 0)) + " is past 99", "age", records[r]),
            r);
        continue;
      }
      row[decade] = 1.0f;
    }
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return 0xdecade; }
};
static_assert(cy::column_decoder<decade_one_hot>);

// A stage: scales the "label" column in place. kind says how it attaches
// (a batch function here); placement defaults to "after batch(n), on the host".
struct scale_labels {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  CONVEYOR_STAGE_MESSAGES("scale_labels(...)")
  float factor;

  [[nodiscard]] std::string_view name() const noexcept { return "scale_labels"; }
  template <class Batch>
  Batch operator()(Batch&& batch, const cy::stage_context&) const {
    for (float& v : batch.template get<"label">().values()) v *= factor;
    return std::move(batch);
  }
};

int main() {
  using ages = cy::dense<"age", std::uint8_t>;
  auto source = cy::generate<ages>(100, 1, [](std::uint64_t i, std::span<std::uint8_t> row) {
    row[0] = static_cast<std::uint8_t>(i);
  });
  auto decades = source | cy::batch(32) | cy::on_errors(cy::on_error::skip) |
                 cy::decode(decade_one_hot{} >> cy::column<"decade">);
  auto labelled = decades | cy::map("label", [](auto&& b, const cy::stage_context& ctx) {
                    cy::record_batch<cy::dense<"decade", float>, cy::dense<"label", float>> out(
                        std::move(b).take_rows());
                    auto& decade = b.template get<"decade">();
                    out.get<"label">() =
                        cy::dense_column<float>(ctx.pool_for("label"), decade.rows(), 1);
                    for (std::size_t r = 0; r < decade.rows(); ++r)
                      out.get<"label">()(r, 0) = decade(r, 9);
                    out.get<"decade">() = std::move(decade);
                    return out;
                  });
  auto pipe = cy::append_stage(std::move(labelled), scale_labels{2.0f});
  std::size_t rows = 0;
  float label_sum = 0;
  for (auto& batch : pipe.epoch(0)) {
    rows += batch.rows();
    for (float v : batch.get<"label">().values()) label_sum += v;
  }
  std::cout << rows << " rows, label sum " << label_sum << "\n";
  return rows == 100 && label_sum == 20.0f ? 0 : 1;
}
