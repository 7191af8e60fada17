// docs/observability.md: stats as JSON, a trace of where time goes, and a
// progress line for long epochs.
#include <unistd.h>  // getpid: a file name of this run's own

#include <chrono>
#include <conveyor/conveyor.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

namespace cy = conveyor;

namespace {

void fill_row(std::uint64_t index, std::span<float> row) {
  for (std::size_t c = 0; c < row.size(); ++c) row[c] = static_cast<float>((index + c) % 7);
}

void train_step(const cy::dense_column<float>& x) {
  volatile float sink = x.values()[0];
  (void)sink;
  std::this_thread::sleep_for(std::chrono::microseconds(200));  // the model's work
}

}  // namespace

int main() {
  const auto trace_path = std::filesystem::temp_directory_path() /
                          ("conveyor-docs-trace-" + std::to_string(::getpid()) + ".json");

  // Tracing one pipeline: every stage call, wait and handoff, one track per thread.
  auto pipe = cy::generate<cy::dense<"x", float>>(20'000, 64, fill_row) | cy::shuffle(42) |
              cy::batch(256) | cy::map("augment", [](auto&& batch) { return std::move(batch); }) |
              cy::parallel(2) | cy::prefetch(4) | cy::with_trace(trace_path.string());

  for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
    auto run = pipe.epoch(epoch);
    cy::progress_line progress(
        run.plan().records_per_rank(), std::cerr,
        {.label = "epoch " + std::to_string(epoch), .overwrite = cy::stderr_is_terminal()});
    for (auto& batch : run) {
      train_step(batch.get<"x">());
      progress.add(batch.rows());
    }
    progress.finish();
  }  // each epoch's spans are in the file once its run is destroyed

  std::cout << pipe.stats();                    // the table
  std::cout << pipe.stats().to_json() << "\n";  // the same, for a dashboard or a log

  // Two pipelines into one file (train and validation), on named tracks.
  auto file = std::make_shared<cy::trace_file>(trace_path.string());
  auto train = cy::generate<cy::dense<"x", float>>(4'096, 64, fill_row) | cy::batch(256) |
               cy::parallel(2) | cy::with_trace(file);
  auto validation = cy::generate<cy::dense<"x", float>>(1'024, 64, fill_row) | cy::batch(256) |
                    cy::with_trace(file);
  cy::trace_thread_name("trainer");
  for (auto& batch : train.epoch(0)) train_step(batch.get<"x">());
  for (auto& batch : validation.epoch(0)) train_step(batch.get<"x">());
  file->flush();

  std::cout << "trace: " << file->events_written() << " spans in " << trace_path << "\n";
  bool ok = file->error().empty() && file->events_written() > 0 &&
            std::filesystem::file_size(trace_path) > 0;
  std::filesystem::remove(trace_path);
  return ok ? 0 : 1;
}
