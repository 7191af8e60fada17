// raw_cuda_train: the dataset extension attack's model trained with plain
// CUDA kernels, no framework, from a conveyor pipeline ending in the raw CUDA
// sink (device pointers per column, the batch's ready event, its stream).
//
//   raw_cuda_train [path.tsv] [--epochs N]      (N defaults to 10)
//
// Data: as dea_train (a TSV of the attack's layout, or 5000 synthetic records
// when no path is given; 20% held out by a fixed pseudo-random split).
// Pipeline: shuffle | batch(32) | decode the 1024 filter bits and the 1036-wide
// two-gram label to float | parallel(2) | prefetch(4) | with_pool(pinned) |
// to_cuda(0, 3) | cuda_sink(). Model (mlp.cu): 1024 -> 512 -> ReLU -> 1036,
// mean BCE over logits, Adam (lr 3e-3), the settings of dea_train.
//
// The training step runs on batch.stream(), the consumer stream the stager
// already ordered after the batch's copies, so no host wait is needed for the
// data; the host runs at most two steps ahead of the GPU (an event per step).
// Each epoch prints the mean training loss, validation precision / recall / F1
// (logit > 0), samples/s, and the share of the epoch's wall time the host spent
// waiting for the next batch and for the GPU. Before training, the kernels'
// loss on the first batch is checked against a double-precision host
// computation (exit 1 if they differ by more than 1e-4 relative). At the end:
// the F1 of the baseline that predicts the k most frequent training grams;
// exits 1 unless the model beats it.
//
// Without a CUDA device (or driver) it prints "raw_cuda_train: skipped: no
// CUDA device (...)" and exits 0 (ctest reports the test as skipped).
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/gpu/cuda_sink.hpp>
#include <conveyor/gpu/pinned_pool.hpp>
#include <conveyor/gpu/to_device.hpp>
#include <conveyor/source/tsv.hpp>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "../dea_train/dea_data.hpp"
#include "mlp.hpp"

namespace cy = conveyor;
using steady = std::chrono::steady_clock;

namespace {

constexpr int bits = 1024, hidden = 512, grams = 1036, batch_rows = 32;

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

// At most `depth` steps queued on the GPU: before queueing step n, wait for
// the event recorded after step n - depth.
class step_window {
 public:
  explicit step_window(std::size_t depth) : events_(depth) {
    for (auto& e : events_)
      cy::check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  }
  ~step_window() {
    for (auto e : events_) (void)cudaEventDestroy(e);
  }
  step_window(const step_window&) = delete;
  step_window& operator=(const step_window&) = delete;
  // Waits for the step that used this slot; returns the seconds waited.
  double wait_slot() {
    const auto start = steady::now();
    cy::check_cuda(cudaEventSynchronize(events_[next_ % events_.size()]), "cudaEventSynchronize");
    return seconds_since(start);
  }
  void record(cudaStream_t stream) {
    cy::check_cuda(cudaEventRecord(events_[next_++ % events_.size()], stream), "cudaEventRecord");
  }

 private:
  std::vector<cudaEvent_t> events_;
  std::size_t next_ = 0;
};

}  // namespace

int main(int argc, char** argv) try {
  std::filesystem::path path;
  int epochs = 10;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--epochs" && i + 1 < argc) {
      epochs = std::stoi(argv[++i]);
    } else if (arg.starts_with("--epochs=")) {
      epochs = std::stoi(std::string(arg.substr(9)));
    } else if (arg.starts_with("--")) {
      std::cerr << "usage: raw_cuda_train [path.tsv] [--epochs N]\n";
      return 2;
    } else {
      path = arg;
    }
  }
  if (epochs < 1) {
    std::cerr << "raw_cuda_train: --epochs must be at least 1\n";
    return 2;
  }

  int devices = 0;
  if (const cudaError_t result = cudaGetDeviceCount(&devices);
      result != cudaSuccess || devices == 0) {
    std::cout << "raw_cuda_train: skipped: no CUDA device (cudaGetDeviceCount: "
              << (result != cudaSuccess ? cudaGetErrorString(result) : "0 devices") << ")\n";
    return 0;
  }
  cudaDeviceProp properties{};
  cy::check_cuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  std::cout << "device: " << properties.name << "\n";

  dea_data::temp_file synthetic;
  if (path.empty()) {
    synthetic.path = std::filesystem::temp_directory_path() /
                     ("raw_cuda_train_" + std::to_string(::getpid()) + ".tsv");
    dea_data::write_synthetic(synthetic.path, 5000, 2026);
    path = synthetic.path;
    std::cout << "synthetic data: 5000 records in " << path.string() << "\n";
  }
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;
  auto file = cy::tsv_file(path, options);
  dea_data::split_rows split(file.size());
  if (split.train.empty() || split.validation.empty()) {
    std::cerr << "raw_cuda_train: " << path << " has too few records (" << file.size() << ")\n";
    return 2;
  }
  std::cout << "records: " << split.train.size() << " train, " << split.validation.size()
            << " validation\n";

  auto decoders = [] {
    return cy::decode(cy::bits<float>("bloomfilter", bits) >> cy::column<"x">,
                      cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">);
  };
  auto pinned = std::make_shared<cy::pinned_pool>(std::size_t{256} << 20);
  if (!pinned->note().empty()) std::cout << pinned->note() << "\n";
  auto train = dea_data::subset_source(file, std::move(split.train), "train") | cy::shuffle(42) |
               cy::batch(batch_rows) | decoders() | cy::parallel(2) | cy::prefetch(4) |
               cy::with_pool(pinned) | cy::to_cuda(0, 3) | cy::cuda_sink();
  auto validation = dea_data::subset_source(file, std::move(split.validation), "validation") |
                    cy::batch(256) | decoders() | cy::parallel(2) | cy::prefetch(4) |
                    cy::with_pool(pinned) | cy::to_cuda(0, 3) | cy::cuda_sink();

  raw_cuda_train::mlp model(bits, hidden, grams, 256, 3e-3f, 1);

  // The kernels against a double-precision host computation, on one batch.
  for (auto& batch : validation.epoch(0)) {
    const int rows = static_cast<int>(batch.rows());
    const double host = model.host_loss(batch.data<"x">(), batch.data<"y">(), rows, batch.stream());
    const double device =
        model.device_loss(batch.data<"x">(), batch.data<"y">(), rows, batch.stream());
    std::cout << std::setprecision(7) << "check: initial loss on " << rows << " rows: kernels "
              << device << ", host (double) " << host << "\n";
    if (!(std::fabs(device - host) <= 1e-4 * std::fabs(host))) {
      std::cout << "FAIL: the kernels' loss differs from the host's\n";
      return 1;
    }
    break;
  }

  step_window window(2);
  std::vector<double> gram_counts;
  double train_records = 0, model_f1 = 0;
  std::cout << std::fixed;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    double waited_data = 0, waited_gpu = 0;
    std::size_t samples = 0;
    cudaStream_t stream = nullptr;
    const auto epoch_start = steady::now();
    auto run = train.epoch(static_cast<std::uint64_t>(epoch));
    auto wait_start = steady::now();
    auto it = run.begin();
    waited_data += seconds_since(wait_start);
    while (it != run.end()) {
      auto& batch = *it;
      stream = batch.stream();
      const int rows = static_cast<int>(batch.rows());
      waited_gpu += window.wait_slot();
      if (epoch == 0) model.count_labels(batch.data<"y">(), rows, stream);
      model.train_step(batch.data<"x">(), batch.data<"y">(), rows, stream);
      window.record(stream);
      samples += batch.rows();
      wait_start = steady::now();
      ++it;  // drops this batch: its device buffers are reused only after the step above
      waited_data += seconds_since(wait_start);
    }
    const auto train_counters = model.read_counters(stream);
    const double seconds = seconds_since(epoch_start);
    if (epoch == 0) {
      gram_counts = train_counters.label_counts;
      train_records = static_cast<double>(samples);
    }

    for (auto& batch : validation.epoch(static_cast<std::uint64_t>(epoch))) {
      model.evaluate(batch.data<"x">(), batch.data<"y">(), static_cast<int>(batch.rows()),
                     batch.stream());
      stream = batch.stream();
    }
    const auto val = model.read_counters(stream).validation;
    model_f1 = val.f1();
    std::cout << "epoch " << std::setw(2) << epoch + 1 << "  loss " << std::setprecision(4)
              << train_counters.loss_sum / static_cast<double>(std::max<std::size_t>(samples, 1))
              << "  val P " << val.precision() << " R " << val.recall() << " F1 " << val.f1()
              << "  " << std::setprecision(0) << static_cast<double>(samples) / seconds
              << " samples/s  waiting for data " << std::setprecision(1)
              << 100.0 * waited_data / seconds << "%, for the GPU " << 100.0 * waited_gpu / seconds
              << "%\n";
  }

  // Baseline: the k most frequent training grams for every record.
  const double mean_grams =
      std::accumulate(gram_counts.begin(), gram_counts.end(), 0.0) / train_records;
  const auto k = static_cast<std::size_t>(std::llround(mean_grams));
  std::vector<std::size_t> order(gram_counts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return gram_counts[a] > gram_counts[b]; });
  std::vector<float> mask(grams, 0.0f);
  for (std::size_t i = 0; i < std::min(k, order.size()); ++i) mask[order[i]] = 1.0f;
  cudaStream_t stream = nullptr;
  for (auto& batch : validation.epoch(static_cast<std::uint64_t>(epochs))) {
    model.evaluate_baseline(mask, batch.data<"y">(), static_cast<int>(batch.rows()),
                            batch.stream());
    stream = batch.stream();
  }
  const auto base = model.read_counters(stream).baseline;

  return dea_data::report_against_baseline(train.stats(), model_f1, base.f1(), k, mean_grams);
} catch (const std::exception& error) {
  std::cerr << "raw_cuda_train: " << error.what() << "\n";
  return 1;
}
