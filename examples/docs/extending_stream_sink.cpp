// docs/extending.md, "A stream sink": a sink of your own of kind stream,
// written with public names only (conveyor/core/stream.hpp). It runs on the
// consumer's thread after parallel(n), sees each epoch start and stop, and
// keeps state across the epoch's batches: here, where each batch's rows start
// in the epoch, also when the epoch resumes from a checkpoint.
#include <chrono>
#include <conveyor/conveyor.hpp>
#include <conveyor/core/stream.hpp>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

namespace cy = conveyor;

// The sink's batch: the record_batch and the epoch's rows before it.
template <class Batch>
struct positioned_batch {
  using delivered_batch = Batch;  // with_pool(...) serves its columns
  Batch batch;
  std::uint64_t first_row = 0;

  [[nodiscard]] std::size_t rows() const noexcept { return batch.rows(); }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return batch.size_bytes(); }
};

// What the sink becomes in each epoch: a stream over upstream's stream.
template <cy::batch_stream Up>
struct positioned_stream {
  using batch_type = positioned_batch<typename Up::batch_type>;
  Up up;
  cy::stage_counters* counters;
  std::uint64_t next_row = 0;

  void start(const cy::epoch_plan& plan, std::uint64_t first) {
    next_row = 0;  // a resumed epoch starts at batch `first`
    for (std::uint64_t b = 0; b < first; ++b) next_row += plan.batch_rows(b);
    up.start(plan, first);
  }
  std::optional<batch_type> next() {
    auto in = up.next();
    if (!in) return std::nullopt;
    const auto begin = std::chrono::steady_clock::now();
    batch_type out{std::move(*in), next_row};
    next_row += out.rows();
    counters->add_batch(out.rows(), out.size_bytes(), std::chrono::steady_clock::now() - begin);
    return out;
  }
  void stop() noexcept { up.stop(); }
};

// The sink: a stream stage that must stand last.
struct positioned {
  static constexpr cy::stage_kind kind = cy::stage_kind::stream;
  static constexpr cy::stage_placement placement{.must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("positioned()")
  template <class In>
  using output = positioned_batch<In>;

  [[nodiscard]] std::string_view name() const noexcept { return "positioned"; }
  template <class Up>
  auto attach(Up&& up, cy::build_env& env) const {
    // Without parallel(n) or prefetch(n) upstream is a batch function: run it here.
    auto stream = cy::as_stream(std::forward<Up>(up));
    return positioned_stream<decltype(stream)>{std::move(stream), &env.counters_for("positioned")};
  }
};

// Both call forms, as the built-in stages have them.
struct positioned_fn {
  template <cy::pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream) const {
    return cy::append_stage(std::forward<Upstream>(upstream), positioned{});
  }
  auto operator()() const { return cy::bound_closure<positioned_fn>(); }
};
inline constexpr positioned_fn to_positioned{};

int main() {
  auto source = cy::generate<cy::dense<"x", float>>(
      1'000, 1, [](std::uint64_t i, std::span<float> row) { row[0] = static_cast<float>(i); });
  auto framework_pool = std::make_shared<cy::pageable_pool>();
  auto pipe = source | cy::shuffle(7) | cy::batch(64) | cy::with_pool(framework_pool) |
              cy::parallel(2) | to_positioned();
  auto direct = to_positioned(source | cy::batch(100));  // no execution stage: as_stream runs it

  std::uint64_t expected_first = 0, wrong_first = 0, not_from_pool = 0;
  cy::pipeline_state checkpoint;
  for (auto run = pipe.epoch(0); auto& b : run) {
    wrong_first += b.first_row == expected_first ? 0 : 1;
    expected_first += b.rows();
    not_from_pool += b.batch.template get<"x">().buffer().pool() == framework_pool ? 0 : 1;
    if (b.batch.info().number == 4) {
      checkpoint = run.state();  // resume after batch 4: the rest starts at row 320
      break;
    }
  }
  pipe.restore(checkpoint);
  std::uint64_t resumed_first = 0;
  for (auto& b : pipe.epoch(0)) {
    if (resumed_first == 0) resumed_first = b.first_row;
    expected_first = b.first_row + b.rows();
  }
  std::uint64_t direct_rows = 0;
  for (auto& b : direct.epoch(0)) direct_rows = b.first_row + b.rows();

  std::cout << "resumed at row " << resumed_first << ", ended at " << expected_first
            << "; without parallel: " << direct_rows << " rows\n"
            << pipe.stats();
  return wrong_first == 0 && not_from_pool == 0 && resumed_first == 320 &&
                 expected_first == 1'000 && direct_rows == 1'000
             ? 0
             : 1;
}
