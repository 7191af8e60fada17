// dea_train: the dataset extension attack's model (DEA), trained in LibTorch
// from a conveyor pipeline.
//
//   dea_train [path.tsv] [--epochs N (10)] [--batch N (32)] [--hidden N (512)]
//
// Model: an MLP 1024 -> hidden -> ReLU -> 1036 over the Bloom filter's bits,
// predicting the record's two-grams (multi-hot, DEA alphabet);
// BCEWithLogitsLoss, Adam (lr 3e-3), batches of 32.
//
// Data: a TSV with the attack's layout (GivenName, Surname, Birthday,
// bloomfilter, uid), e.g. ../shared/data/fakename_1k_bf_encoded.tsv. Records
// are split by index: a fixed pseudo-random 20% (seeded, independent of the
// file) is held out for validation. The split is a record_source of our own
// (`subset_source`) that wraps the file's source and remaps indices, so both
// pipelines read the same file and no temporary file is written.
//
// Without a path it generates 5000 synthetic records into a temporary TSV
// (deleted at exit): a given name and a surname from built-in lists of 40
// each and a birthday d/m/yyyy (1940..2005). The label is conveyor's own
// two-gram encoding of the three fields (encode_two_grams), and the Bloom
// filter (1024 bits) has, for each gram g in the label (its text taken from
// gram_alphabet::dea().gram(i)), the k = 10 bits
//     h_s(g) = FNV-1a-64(byte s, then the bytes of g) mod 1024,  s = 0..9
// (FNV offset basis 14695981039346656037, prime 1099511628211).
//
// Each epoch prints the mean training loss, validation precision / recall /
// F1 of the predicted grams (sigmoid > 0.5, micro-averaged over all grams and
// records), training samples/s and the share of the epoch's wall time spent
// waiting for the next batch. While an epoch runs, a progress line (rows,
// rows/s, ETA, running loss: conveyor::progress_line) is written to stderr
// when stderr is a terminal. At the end:
// the pipeline's stats and the F1 of a baseline that predicts, for every
// record, the k most frequent training grams (k = the mean number of grams per
// training record, rounded). Exits 1 when the model's final validation F1 is
// not above the baseline's.
//
// --batch and --hidden change the training batch and the hidden layer, to
// make a training step heavier (gpu_check.sh runs one of at least a
// millisecond, to see how much of it the pipeline hides).
//
// Uses CUDA for the model when LibTorch has it. Built with the CUDA toolkit
// (CONVEYOR_DEA_TRAIN_STAGER), the columns are decoded into pinned memory and
// staged to the GPU three batches ahead by to_cuda, and to_torch(torch::kCUDA)
// wraps them without a copy; else to_torch(torch::kCUDA) copies each batch
// synchronously. Each epoch line also gives the mean step time (forward,
// backward, Adam, and loss.item(), which waits for the GPU).
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/decode/gram_alphabet.hpp>
#include <conveyor/decode/two_gram.hpp>
#ifdef CONVEYOR_DEA_TRAIN_STAGER
#include <conveyor/gpu/pinned_pool.hpp>
#include <conveyor/gpu/to_device.hpp>
#endif
#include <conveyor/source/tsv.hpp>
#include <conveyor/torch.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unistd.h>  // getpid
#include <vector>

#include "dea_data.hpp"

namespace cy = conveyor;
using dea_data::subset_source;
using dea_data::temp_file;
using dea_data::write_synthetic;
using steady = std::chrono::steady_clock;

namespace {

struct confusion {
  double tp = 0, fp = 0, fn = 0;
  void add(const torch::Tensor& predicted, const torch::Tensor& truth) {  // both 0/1 float
    tp += (predicted * truth).sum().item<double>();
    fp += (predicted * (1 - truth)).sum().item<double>();
    fn += ((1 - predicted) * truth).sum().item<double>();
  }
  double precision() const { return tp + fp > 0 ? tp / (tp + fp) : 0; }
  double recall() const { return tp + fn > 0 ? tp / (tp + fn) : 0; }
  double f1() const {
    const double p = precision(), r = recall();
    return p + r > 0 ? 2 * p * r / (p + r) : 0;
  }
};

}  // namespace

int main(int argc, char** argv) try {
  std::filesystem::path path;
  int epochs = 10;
  std::int64_t batch_rows = 32, hidden = 512;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view name, auto& out) {
      if (arg == name && i + 1 < argc) {
        out = std::stoi(argv[++i]);
        return true;
      }
      if (arg.starts_with(std::string(name) + "=")) {
        out = std::stoi(std::string(arg.substr(name.size() + 1)));
        return true;
      }
      return false;
    };
    if (value("--epochs", epochs) || value("--batch", batch_rows) || value("--hidden", hidden)) {
      continue;
    } else if (arg.starts_with("--")) {
      std::cerr << "usage: dea_train [path.tsv] [--epochs N] [--batch N] [--hidden N]\n";
      return 2;
    } else {
      path = arg;
    }
  }
  if (epochs < 1 || batch_rows < 1 || hidden < 1) {
    std::cerr << "dea_train: --epochs, --batch and --hidden must be at least 1\n";
    return 2;
  }

  temp_file synthetic;
  if (path.empty()) {
    synthetic.path = std::filesystem::temp_directory_path() /
                     ("dea_train_" + std::to_string(::getpid()) + ".tsv");
    write_synthetic(synthetic.path, 5000, 2026);
    path = synthetic.path;
    std::cout << "synthetic data: 5000 records in " << path.string() << "\n";
  }

  auto options = cy::delimited_options::tsv();
  options.persist_index = false;  // keep the data directory untouched
  auto file = cy::tsv_file(path, options);

  // Split by record index: a fixed random 20% held out.
  dea_data::split_rows split(file.size());
  std::vector<std::uint64_t> train_rows = std::move(split.train);
  std::vector<std::uint64_t> val_rows = std::move(split.validation);
  if (train_rows.empty() || val_rows.empty()) {
    std::cerr << "dea_train: " << path << " has too few records (" << file.size() << ")\n";
    return 2;
  }
  std::cout << "records: " << train_rows.size() << " train, " << val_rows.size() << " validation\n";

  const torch::Device device =
      torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  std::cout << "device: " << (device.is_cuda() ? "cuda" : "cpu") << "\n";

  auto decoders = [] {
    return cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                      cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">);
  };
  auto train_base = subset_source(file, std::move(train_rows), "train") | cy::shuffle(42) |
                    cy::batch(static_cast<std::size_t>(batch_rows)) | decoders() | cy::parallel(2) |
                    cy::prefetch(4);
  auto validation_base = subset_source(file, std::move(val_rows), "validation") | cy::batch(256) |
                         decoders() | cy::parallel(2) | cy::prefetch(4);

  // The rest of the program, for either pipeline type (host tensors copied by
  // to_torch, or device columns staged ahead by to_cuda).
  auto train_and_report = [&](auto train, auto validation) -> int {
    torch::manual_seed(1);
    torch::nn::Sequential model(torch::nn::Linear(1024, hidden), torch::nn::ReLU(),
                                torch::nn::Linear(hidden, 1036));
    model->to(device);
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(3e-3));
    torch::nn::BCEWithLogitsLoss criterion;

    const bool progress = cy::stderr_is_terminal();
    torch::Tensor gram_counts =
        torch::zeros({1036}, torch::kDouble);  // training frequency (epoch 0)
    double train_records = 0;
    double model_f1 = 0;

    std::cout << std::fixed;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      model->train();
      double loss_sum = 0, waited = 0, stepping = 0;
      std::size_t batches = 0, samples = 0;
      const auto epoch_start = steady::now();
      auto run = train.epoch(static_cast<std::uint64_t>(epoch));
      cy::progress_line line(run.plan().records_per_rank(), std::cerr,
                             {.label = "epoch " + std::to_string(epoch + 1), .enabled = progress});
      auto wait_start = steady::now();
      auto it = run.begin();
      waited += std::chrono::duration<double>(steady::now() - wait_start).count();
      while (it != run.end()) {
        auto& batch = *it;
        auto&& [x, y] = batch;
        if (epoch == 0) {
          gram_counts += y.sum(0).to(torch::kCPU, torch::kDouble);
          train_records += static_cast<double>(y.size(0));
        }
        const auto step_start = steady::now();
        optimizer.zero_grad();
        torch::Tensor loss = criterion(model->forward(x), y);
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>() * static_cast<double>(x.size(0));  // waits for the step
        stepping += std::chrono::duration<double>(steady::now() - step_start).count();
        samples += static_cast<std::size_t>(x.size(0));
        ++batches;
        char loss_note[32];
        std::snprintf(loss_note, sizeof loss_note, "loss %.4f",
                      loss_sum / static_cast<double>(samples));
        line.add(static_cast<std::uint64_t>(x.size(0)), loss_note);
        wait_start = steady::now();
        ++it;
        waited += std::chrono::duration<double>(steady::now() - wait_start).count();
      }
      const double seconds = std::chrono::duration<double>(steady::now() - epoch_start).count();
      line.finish();

      model->eval();
      confusion val;
      {
        torch::NoGradGuard no_grad;
        for (auto&& [x, y] : validation.epoch(static_cast<std::uint64_t>(epoch)))
          val.add((torch::sigmoid(model->forward(x)) > 0.5).to(torch::kFloat), y);
      }
      model_f1 = val.f1();
      std::cout << "epoch " << std::setw(2) << epoch + 1 << "  loss " << std::setprecision(4)
                << loss_sum / static_cast<double>(std::max<std::size_t>(samples, 1)) << "  val P "
                << val.precision() << " R " << val.recall() << " F1 " << val.f1() << "  "
                << std::setprecision(0) << static_cast<double>(samples) / seconds
                << " samples/s  step " << std::setprecision(3)
                << 1000.0 * stepping / static_cast<double>(std::max<std::size_t>(batches, 1))
                << " ms  waiting for data " << std::setprecision(1) << 100.0 * waited / seconds
                << "%\n";
    }

    // Baseline: the k most frequent training grams for every record.
    const double mean_grams = gram_counts.sum().item<double>() / train_records;
    const auto k = static_cast<std::int64_t>(std::llround(mean_grams));
    torch::Tensor baseline = torch::zeros({1036}, torch::kFloat);
    baseline.index_fill_(0, std::get<1>(gram_counts.topk(k)), 1.0);
    baseline = baseline.to(device);
    confusion base;
    for (auto&& [x, y] : validation.epoch(static_cast<std::uint64_t>(epochs)))
      base.add(baseline.unsqueeze(0).expand_as(y), y);

    return dea_data::report_against_baseline(train.stats(), model_f1, base.f1(), static_cast<std::uint64_t>(k),
                                             mean_grams);
  };

#ifdef CONVEYOR_DEA_TRAIN_STAGER
  if (device.is_cuda()) {
    // Pinned host columns, copied to the GPU three batches ahead on the
    // stager's stream; to_torch wraps the device columns without a copy.
    auto pinned = std::make_shared<cy::pinned_pool>(std::size_t{1} << 30);
    std::cout << "staging: with_pool(pinned) | to_cuda(0, 3) | to_torch(torch::kCUDA)"
              << (pinned->note().empty() ? "" : " (") << pinned->note()
              << (pinned->note().empty() ? "" : ")") << "\n";
    return train_and_report(
        train_base | cy::with_pool(pinned) | cy::to_cuda(0, 3) | cy::to_torch(torch::kCUDA),
        validation_base | cy::with_pool(pinned) | cy::to_cuda(0, 3) | cy::to_torch(torch::kCUDA));
  }
#endif
  return train_and_report(train_base | cy::to_torch(device),
                          validation_base | cy::to_torch(device));
} catch (const std::exception& error) {
  std::cerr << "dea_train: " << error.what() << "\n";
  return 1;
}
