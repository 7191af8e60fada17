// docs/getting-started.md: from nothing to a shuffled, sharded, cached,
// prefetched pipeline feeding a training loop. Self-contained: it writes its
// own small TSV (a bit-string feature column and a label), so it runs anywhere.
#include <unistd.h>

#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace cy = conveyor;

// 1. Some data: 2,000 records of 32 random bits; the label says whether more
//    than half of the first 8 bits are set.
std::filesystem::path write_dataset() {
  auto path = std::filesystem::temp_directory_path() /
              ("conveyor-getting-started-" + std::to_string(::getpid()) + ".tsv");
  std::ofstream out(path);
  out << "bits\tlabel\n";
  std::mt19937 random(1);
  for (int i = 0; i < 2000; ++i) {
    std::string bits;
    int ones = 0;
    for (int b = 0; b < 32; ++b) {
      bool one = random() % 2;
      bits += one ? '1' : '0';
      if (b < 8) ones += one;
    }
    out << bits << '\t' << (ones > 4 ? "{0}" : "{}") << '\n';
  }
  return path;
}

int main() {
  auto path = write_dataset();
  const std::uint32_t rank = 0, world = 1;  // one pipeline per rank in distributed training

  // 2. The pipeline: read, order, decode, cache, run on 2 threads, 4 batches ahead.
  auto pipe = cy::tsv_file(path)                                  // memory-mapped, header read
              | cy::shuffle(/*seed=*/42)                          // a new order every epoch
              | cy::shard(rank, world)                            // this rank's share
              | cy::batch(64)                                     // from here on: batches
              | cy::decode(cy::bits<float>("bits", 32) >> cy::column<"x">,
                           cy::int_set<float>("label", 1) >> cy::column<"y">)
              | cy::cache(cy::memory_tier<>(16 << 20))            // epoch 2 on: decoded rows from memory
              | cy::parallel(2)                                   // decode on 2 worker threads
              | cy::prefetch(4);                                  // 4 batches ready ahead

  // 3. A training loop: logistic regression on the 32 features, plain C++.
  std::vector<float> w(32, 0.0f);
  float bias = 0, loss = 0;
  for (std::uint64_t epoch = 0; epoch < 5; ++epoch) {
    loss = 0;
    std::size_t rows = 0;
    for (auto& batch : pipe.epoch(epoch)) {
      const auto& x = batch.get<"x">();  // rows x 32 float32, contiguous
      const auto& y = batch.get<"y">();  // rows x 1
      for (std::size_t r = 0; r < batch.rows(); ++r) {
        float z = bias;
        for (std::size_t c = 0; c < 32; ++c) z += w[c] * x(r, c);
        float p = 1.0f / (1.0f + std::exp(-z)), target = y(r, 0);
        loss += -(target * std::log(p + 1e-7f) + (1 - target) * std::log(1 - p + 1e-7f));
        for (std::size_t c = 0; c < 32; ++c) w[c] -= 0.05f * (p - target) * x(r, c);
        bias -= 0.05f * (p - target);
      }
      rows += batch.rows();
    }
    loss /= static_cast<float>(rows);
    std::cout << "epoch " << epoch << ": " << rows << " rows, loss " << loss << '\n';
  }
  // 4. Where the time went, and what the cache did.
  std::cout << pipe.stats() << cy::cache_stats(pipe) << '\n';
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".cyidx");  // the record index tsv_file saved beside it
  return loss < 0.6f ? 0 : 1;  // it learned something
}
