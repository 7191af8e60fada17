// Machinery overhead and parallel scaling of the core pipeline.
//
// 1. overhead: a pipeline (source | batch | map) doing a fixed CPU workload per
//    batch vs a hand-written loop doing the same work on the same buffers.
//    Target: the pipeline at most 5% slower (ratio >= 0.95).
// 2. scaling: parallel(2) vs parallel(1) on a CPU-bound decode (bit string to
//    float). Target on 2 cores: >= 1.8x.
// Each figure is the best of several interleaved repetitions, printed as a
// ratio measured in this run.
#include <algorithm>
#include <chrono>
#include <conveyor/conveyor.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace cy = conveyor;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t records = 200'000;
constexpr std::size_t width = 256;
constexpr std::size_t batch_size = 256;

// The per-record work: a deterministic pseudo-random row expanded from bits,
// the kind of arithmetic a decoder does (about 1 us per record).
inline void fill_row(std::uint64_t index, std::span<float> row) {
  std::uint64_t state = index * 0x9e3779b97f4a7c15ull + 1;
  for (std::size_t c = 0; c < row.size(); ++c) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    row[c] = static_cast<float>(state & 1u);
  }
}

double checksum_of(const float* data, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; i += 61) s += data[i];
  return s;
}

template <class Body>
double seconds(Body&& body) {
  auto begin = clock_type::now();
  body();
  return std::chrono::duration<double>(clock_type::now() - begin).count();
}

double hand_written(double& sink) {
  return seconds([&] {
    std::vector<float> buffer(batch_size * width);
    for (std::uint64_t first = 0; first < records; first += batch_size) {
      std::uint64_t rows = std::min<std::uint64_t>(batch_size, records - first);
      for (std::uint64_t r = 0; r < rows; ++r) fill_row(first + r, std::span<float>(buffer.data() + r * width, width));
      sink += checksum_of(buffer.data(), rows * width);
    }
  });
}

double with_pipeline(double& sink) {
  auto pipe = cy::generate<cy::dense<"x", float>>(records, width, fill_row) | cy::batch(batch_size);
  return seconds([&] {
    for (auto& b : pipe.epoch(0)) sink += checksum_of(b.get<"x">().data(), b.rows() * width);
  });
}

double with_workers(unsigned workers, double& sink) {
  auto pipe = cy::generate<cy::dense<"x", float>>(records, width, fill_row) | cy::batch(batch_size) |
              cy::parallel(workers);
  return seconds([&] {
    for (auto& b : pipe.epoch(0)) sink += checksum_of(b.get<"x">().data(), b.rows() * width);
  });
}

}  // namespace

int main(int argc, char** argv) {
  int repetitions = argc > 1 ? std::stoi(argv[1]) : 7;
  double sink = 0;
  double best_hand = 1e9, best_pipe = 1e9, best_one = 1e9, best_two = 1e9;
  for (int i = 0; i < repetitions; ++i) {
    best_hand = std::min(best_hand, hand_written(sink));
    best_pipe = std::min(best_pipe, with_pipeline(sink));
    best_one = std::min(best_one, with_workers(1, sink));
    best_two = std::min(best_two, with_workers(2, sink));
  }
  std::printf("records %llu, width %zu, batch %zu, best of %d\n", static_cast<unsigned long long>(records), width,
              batch_size, repetitions);
  std::printf("hand-written loop       %8.1f ms  %10.0f rows/s\n", best_hand * 1e3, records / best_hand);
  std::printf("pipeline (batch | map)  %8.1f ms  %10.0f rows/s\n", best_pipe * 1e3, records / best_pipe);
  std::printf("overhead: pipeline throughput / hand-written = %.3f (target >= 0.95)\n", best_hand / best_pipe);
  std::printf("parallel(1)             %8.1f ms  %10.0f rows/s\n", best_one * 1e3, records / best_one);
  std::printf("parallel(2)             %8.1f ms  %10.0f rows/s\n", best_two * 1e3, records / best_two);
  std::printf("scaling: parallel(2) / parallel(1) = %.2fx (target >= 1.8x on 2 cores)\n", best_one / best_two);
  std::printf("(checksum %.0f)\n", sink);
}
