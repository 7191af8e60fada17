// The DEA workload feeding LibTorch: conveyor's pipeline ending in to_torch()
// against torch::data::make_data_loader with a straightforward Dataset, over
// the same file, batch size and number of worker threads, in one run.
//
//   conveyor:     tsv_file | shuffle(42) | batch(n) | decode(bits >> x,
//                 two_grams >> y) | parallel(workers) | prefetch(4) | to_torch()
//   torch::data:  a Dataset that parses the TSV once into memory (each record's
//                 bit string and label text), and decodes in get(): a
//                 {1024} float tensor from the '0'/'1' characters and a {1036}
//                 float multi-hot from the label text's two-grams (the
//                 original's normalization), dataset.map(Stack<>()),
//                 RandomSampler, DataLoaderOptions().batch_size(n).workers(workers).
//                 Twice: each gram's label position found in a
//                 std::unordered_map (a tuned Dataset), and as the original
//                 and the other DEA baselines do it (bench/support/naive_dea.hpp:
//                 std::string building, a linear search of the 1036 grams,
//                 a std::vector<float> turned into a tensor).
//
// Correctness first, untimed: one epoch of each side with every value read
// (x.sum(), y.sum()); the totals must agree (same records, another order) or
// the program fails. Then the timed epochs, whose consumer only counts rows,
// so the figure is what each loader delivers.
// Setup (conveyor: opening the file, which scans it for record offsets;
// torch::data: parsing it into memory) is timed apart from the epochs. Each
// side runs `rounds` epochs alternately; the best epoch of each is reported,
// as samples/s of wall-clock time and per CPU-second of this process; and,
// steadier on a loaded machine, each side's epoch with the least CPU.
//
// Usage: dea_torch_bench [rows=100000] [batch=256] [workers=2] [rounds=3] [directory=/tmp]
// The input is ../shared/data/fakename_1k_bf_encoded.tsv repeated to `rows`
// rows, written to <directory> and removed at the end.
#include <ATen/Parallel.h>
#include <time.h>
#include <torch/data.h>
#include <torch/types.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conveyor/conveyor.hpp"
#include "conveyor/decode/decode.hpp"
#include "conveyor/source/tsv.hpp"
#include "conveyor/torch.hpp"
#include "support/naive_dea.hpp"
#include "support/process_timing.hpp"

namespace cy = conveyor;
namespace fs = std::filesystem;
using conveyor::bench::load_average;
using conveyor::bench::measure;
using conveyor::bench::timing;

namespace {

constexpr std::int64_t bits_width = 1024;
constexpr std::int64_t grams_width = 1036;

void make_input(const fs::path& path, std::uint64_t rows) {
  const fs::path reference = fs::path(CONVEYOR_SHARED_DATA_DIR) / "fakename_1k_bf_encoded.tsv";
  std::ifstream in(reference);
  std::string header;
  if (!in || !std::getline(in, header))
    throw std::runtime_error("cannot read " + reference.string());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::ofstream out(path, std::ios::binary);
  out << header << '\n';
  for (std::uint64_t i = 0; i < rows; ++i) out << lines[i % lines.size()] << '\n';
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
  std::printf("input: %s repeated to %llu rows\n", reference.c_str(),
              static_cast<unsigned long long>(rows));
}

/// What both consumers compute from every batch.
struct totals {
  std::int64_t rows = 0;
  double ones_x = 0, ones_y = 0;
  void add(const torch::Tensor& x, const torch::Tensor& y) {
    rows += x.size(0);
    ones_x += x.sum().item<double>();
    ones_y += y.sum().item<double>();
  }
  bool operator==(const totals&) const = default;
};

/// How get() finds each two-gram's label position.
enum class gram_lookup {
  hash_map,  ///< a std::unordered_map from gram to position
  original,  ///< the original's method: std::string building, a linear search of the alphabet
};

/// The straightforward torch::data Dataset: parse once, decode in get().
class dea_dataset : public torch::data::datasets::Dataset<dea_dataset> {
 public:
  dea_dataset(const fs::path& path, gram_lookup lookup) : lookup_(lookup) {
    alphabet_ = cy::bench::naive_dea_alphabet();
    const auto& alphabet = alphabet_;
    for (std::size_t i = 0; i < alphabet.size(); ++i)
      gram_index_.emplace(alphabet[i], static_cast<std::int64_t>(i));
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<std::string> fields;
      std::size_t start = 0;
      for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
        fields.push_back(line.substr(start, tab - start));
      fields.push_back(line.substr(start));
      if (fields.size() < 3 ||
          fields[fields.size() - 2].size() != static_cast<std::size_t>(bits_width))
        throw std::runtime_error("bad record at line " + std::to_string(records_.size() + 2));
      record r;
      r.bits = fields[fields.size() - 2];
      for (std::size_t i = 0; i + 2 < fields.size(); ++i) r.label_text += fields[i];
      records_.push_back(std::move(r));
    }
  }

  torch::data::Example<> get(std::size_t index) override {
    const record& r = records_[index];
    torch::Tensor x = torch::empty({bits_width}, torch::kFloat);
    float* features = x.data_ptr<float>();
    for (std::int64_t i = 0; i < bits_width; ++i)
      features[i] = r.bits[static_cast<std::size_t>(i)] == '1' ? 1.0f : 0.0f;
    if (lookup_ == gram_lookup::original) {
      const std::vector<float> label = cy::bench::naive_dea_label(r.label_text, alphabet_);
      return {x, torch::tensor(label)};
    }
    torch::Tensor y = torch::zeros({grams_width}, torch::kFloat);
    float* label = y.data_ptr<float>();
    std::string text = normalized(r.label_text);
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
      if (text[i] == ' ' || text[i + 1] == ' ') continue;
      auto found = gram_index_.find(text.substr(i, 2));
      if (found != gram_index_.end()) label[found->second] = 1.0f;
    }
    return {x, y};
  }
  torch::optional<std::size_t> size() const override { return records_.size(); }

 private:
  struct record {
    std::string bits, label_text;
  };
  // The original's normalization: drop '"', '.', '/', strip, lowercase.
  static std::string normalized(std::string text) {
    text.erase(std::remove_if(text.begin(), text.end(),
                              [](char c) { return c == '"' || c == '.' || c == '/'; }),
               text.end());
    const auto not_space = [](unsigned char c) { return !std::isspace(c); };
    text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
    text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  }
  gram_lookup lookup_;
  std::vector<record> records_;
  std::vector<std::string> alphabet_;
  std::unordered_map<std::string, std::int64_t> gram_index_;
};

void report(const char* label, const timing& t, std::int64_t rows) {
  std::printf(
      "  %-34s %10.0f samples/s  (%6.2f s wall, %6.2f s CPU, %10.0f samples per CPU-second, "
      "%.2f page faults per sample)\n",
      label, static_cast<double>(rows) / t.wall, t.wall, t.cpu, static_cast<double>(rows) / t.cpu,
      static_cast<double>(t.minor_faults) / static_cast<double>(rows));
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t rows = argc > 1 ? std::stoull(argv[1]) : 100000;
  const std::size_t batch = argc > 2 ? std::stoul(argv[2]) : 256;
  const unsigned workers = argc > 3 ? static_cast<unsigned>(std::stoul(argv[3])) : 2;
  const int rounds = argc > 4 ? std::stoi(argv[4]) : 3;
  const fs::path directory = argc > 5 ? argv[5] : "/tmp";
  const fs::path path = directory / ("conveyor_dea_torch_" + std::to_string(::getpid()) + ".tsv");
  at::set_num_threads(1);  // intra-op threads: the loaders' workers are the parallelism compared
  std::printf(
      "dea_torch_bench: %llu rows, batch %zu, %u workers, %d rounds (best epoch of each side)\n",
      static_cast<unsigned long long>(rows), batch, workers, rounds);
  std::printf("load average at start: %s\n", load_average().c_str());
  make_input(path, rows);
  int status = 0;
  try {
    auto options = cy::delimited_options::tsv();
    options.persist_index = false;
    std::optional<decltype(cy::tsv_file(path, options))> source;
    const timing open = measure([&] { source.emplace(cy::tsv_file(path, options)); });
    auto pipe = *source | cy::shuffle(42) | cy::batch(batch) |
                cy::decode(cy::bits<float>("bloomfilter", bits_width) >> cy::column<"x">,
                           cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
                cy::parallel(workers) | cy::prefetch(4) | cy::to_torch();

    // Two torch::data loaders over the same Dataset type: the label lookup tuned
    // (hash map) and as the original writes it (linear search).
    using loader_type = decltype(torch::data::make_data_loader(
        std::declval<dea_dataset>().map(torch::data::transforms::Stack<>()),
        torch::data::DataLoaderOptions()));
    struct torch_side {
      const char* label;
      loader_type loader;
      timing parse, best{1e300, 0};
      double least_cpu = 1e300;  ///< the epoch with the least CPU, whatever its wall time
      std::int64_t rows = 0;
    };
    std::vector<torch_side> sides;
    for (auto [label, lookup] :
         {std::pair{"torch::data, hash-map label lookup", gram_lookup::hash_map},
          std::pair{"torch::data, original's label method", gram_lookup::original}}) {
      std::optional<dea_dataset> dataset;
      const timing parse = measure([&] { dataset.emplace(path, lookup); });
      sides.push_back({label,
                       torch::data::make_data_loader(
                           std::move(*dataset).map(torch::data::transforms::Stack<>()),
                           torch::data::DataLoaderOptions().batch_size(batch).workers(workers)),
                       parse});
    }
    std::printf(
        "setup: conveyor opens the file in %.3f s; each torch::data dataset parses it in %.3f s\n",
        open.wall, sides[0].parse.wall);

    // Untimed: one epoch of each, every value read, the totals compared.
    totals conveyor_totals;
    for (auto&& [x, y] : pipe.epoch(0)) conveyor_totals.add(x, y);
    for (auto& side : sides) {
      totals torch_totals;
      for (auto& example : *side.loader) torch_totals.add(example.data, example.target);
      if (!(conveyor_totals == torch_totals) ||
          conveyor_totals.rows != static_cast<std::int64_t>(rows)) {
        std::printf(
            "MISMATCH (%s): conveyor rows %lld ones %.0f/%.0f, torch::data rows %lld ones "
            "%.0f/%.0f\n",
            side.label, static_cast<long long>(conveyor_totals.rows), conveyor_totals.ones_x,
            conveyor_totals.ones_y, static_cast<long long>(torch_totals.rows), torch_totals.ones_x,
            torch_totals.ones_y);
        status = 1;
      }
    }
    std::printf("epochs agree: %lld rows, %.0f ones in x, %.0f in y\n",
                static_cast<long long>(conveyor_totals.rows), conveyor_totals.ones_x,
                conveyor_totals.ones_y);

    // Timed, alternating: each loader's delivery rate; the consumer only counts rows.
    timing best_conveyor{1e300, 0};
    double least_cpu_conveyor = 1e300;
    std::int64_t conveyor_rows = 0;
    for (int round = 1; round <= rounds; ++round) {
      std::int64_t c = 0;
      const timing tc = measure([&] {
        for (auto&& [x, y] : pipe.epoch(static_cast<std::uint64_t>(round)))
          c += x.size(0) + 0 * y.size(0);
      });
      if (c != static_cast<std::int64_t>(rows)) status = 1;
      if (tc.wall < best_conveyor.wall) best_conveyor = tc;
      least_cpu_conveyor = std::min(least_cpu_conveyor, tc.cpu);
      conveyor_rows = c;
      for (auto& side : sides) {
        std::int64_t t = 0;
        const timing tt = measure([&] {
          for (auto& example : *side.loader) t += example.data.size(0) + 0 * example.target.size(0);
        });
        if (t != c) status = 1;
        if (tt.wall < side.best.wall) side.best = tt;
        side.least_cpu = std::min(side.least_cpu, tt.cpu);
        side.rows = t;
      }
    }
    report("conveyor | to_torch()", best_conveyor, conveyor_rows);
    for (const auto& side : sides) report(side.label, side.best, side.rows);
    for (const auto& side : sides)
      std::printf("ratio conveyor / %s: %.2fx samples/s (%.2fx per CPU-second); goal >= 4x\n",
                  side.label, side.best.wall / best_conveyor.wall,
                  side.best.cpu / best_conveyor.cpu);
    // On a loaded machine the fastest epoch by wall time is the one that got
    // the most of the cores, not the one that did the least work; the epoch
    // with the least CPU of each side is the steadier figure there.
    std::printf("least CPU of any epoch: conveyor %.0f samples per CPU-second",
                static_cast<double>(conveyor_rows) / least_cpu_conveyor);
    for (const auto& side : sides)
      std::printf(", %s %.0f (ratio %.2fx)", side.label,
                  static_cast<double>(side.rows) / side.least_cpu,
                  side.least_cpu / least_cpu_conveyor);
    std::printf("\n");
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    status = 1;
  }
  fs::remove(path);
  std::printf("load average at end: %s\n", load_average().c_str());
  return status;
}
