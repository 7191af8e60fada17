// The main demo: a pipeline over generated Bloom-filter-like records.
//
// Each record is a 1024-character bit string (as in the dataset extension
// attack's data); the pipeline shuffles, shards, batches, decodes the bits to
// float32 on two worker threads and prefetches. It prints its throughput and
// the per-stage stats table, which shows the bottleneck at a glance.
//
//   demo [records] [epochs]
#include <chrono>
#include <conveyor/conveyor.hpp>
#include <cstdio>
#include <iostream>
#include <string>

namespace cy = conveyor;

namespace {
using text_batch = cy::record_batch<cy::bytes<"bits">>;
using float_batch = cy::record_batch<cy::dense<"x", float>>;

// A synthetic source: record i is a reproducible 1024-character string of '0'/'1'.
struct bit_strings {
  using batch_type = text_batch;
  std::uint64_t count;
  [[nodiscard]] std::uint64_t size() const { return count; }
  [[nodiscard]] std::string_view name() const { return "bit_strings"; }
  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    batch_type out(ctx.pool, ctx.info, indices);
    auto& column = out.get<"bits">();
    column = cy::bytes_column(ctx.pool, indices.size(), indices.size() * 1024);
    char text[1024];
    for (auto index : indices) {
      std::uint64_t state = index * 0x9e3779b97f4a7c15ull + 1;
      for (char& c : text) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        c = (state >> 11) % 7 == 0 ? '1' : '0';
      }
      column.append(std::string_view(text, sizeof text));
    }
    return out;
  }
};

float_batch decode_bits(text_batch&& in, const cy::stage_context& ctx) {
  float_batch out(ctx.pool, in.info(), in.indices());
  auto& x = out.get<"x">();
  x = cy::dense_column<float>(ctx.pool, in.rows(), 1024);
  const auto& bits = in.get<"bits">();
  for (std::size_t r = 0; r < in.rows(); ++r) {
    auto text = bits.text(r);
    auto row = x.row(r);
    for (std::size_t c = 0; c < 1024; ++c) row[c] = text[c] == '1' ? 1.0f : 0.0f;
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  std::uint64_t records = argc > 1 ? std::stoull(argv[1]) : 200'000;
  int epochs = argc > 2 ? std::stoi(argv[2]) : 2;

  auto pipe = bit_strings{records} | cy::shuffle(42) | cy::shard(0, 1) | cy::batch(256) |
              cy::map("decode_bits", decode_bits) | cy::parallel(2) | cy::prefetch(4);

  double checksum = 0;
  auto begin = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < epochs; ++epoch)
    for (auto& batch : pipe.epoch(static_cast<std::uint64_t>(epoch)))
      checksum += batch.get<"x">()(0, 0);  // stands in for the training step
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();

  std::printf("conveyor demo: %llu records x %d epochs in %.2f s = %.0f records/s (checksum %.0f)\n\n",
              static_cast<unsigned long long>(records), epochs, seconds,
              static_cast<double>(records) * epochs / seconds, checksum);
  std::cout << pipe.stats();
}
