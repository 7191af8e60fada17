// Batched random reads from a chunked HDF5 dataset: conveyor::hdf5_dataset (one
// H5Dread of a sorted, coalesced selection per batch) against one H5Dread per
// record with a fresh hyperslab each time, which is what h5py does when a torch
// Dataset's __getitem__ reads `dataset[i]`. Both run in this process on the same
// file, interleaved round by round; the figure is the ratio of their rates.
//
// usage: source_hdf5_bench [rows=200000] [rounds=5]
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "conveyor/source/hdf5.hpp"

namespace {

constexpr hsize_t width = 1024;       // uint8 per record
constexpr hsize_t chunk_rows = 64;    // 64 KiB chunks
constexpr std::size_t batch_size = 256;
constexpr int batches_per_round = 20;

void make_dataset(const std::string& path, hsize_t rows) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[2] = {rows, width};
  const hsize_t chunk[2] = {chunk_rows, width};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t create = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(create, 2, chunk);
  hid_t dataset = H5Dcreate2(file, "/x", H5T_STD_U8LE, space, H5P_DEFAULT, create, H5P_DEFAULT);
  std::vector<std::uint8_t> block(chunk_rows * 64 * width);
  for (hsize_t first = 0; first < rows; first += chunk_rows * 64) {
    const hsize_t count[2] = {std::min<hsize_t>(chunk_rows * 64, rows - first), width};
    const hsize_t start[2] = {first, 0};
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<std::uint8_t>(first + i);
    hid_t file_space = H5Dget_space(dataset);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t memory_space = H5Screate_simple(2, count, nullptr);
    H5Dwrite(dataset, H5T_NATIVE_UINT8, memory_space, file_space, H5P_DEFAULT, block.data());
    H5Sclose(memory_space);
    H5Sclose(file_space);
  }
  H5Dclose(dataset);
  H5Pclose(create);
  H5Sclose(space);
  H5Fclose(file);
}

// The h5py __getitem__ pattern: one selection and one H5Dread per record.
void read_per_record(hid_t dataset, std::span<const std::uint64_t> indices, std::uint8_t* out) {
  const hsize_t count[2] = {1, width};
  for (std::size_t i = 0; i < indices.size(); ++i) {
    const hsize_t start[2] = {indices[i], 0};
    hid_t file_space = H5Dget_space(dataset);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t memory_space = H5Screate_simple(2, count, nullptr);
    if (H5Dread(dataset, H5T_NATIVE_UINT8, memory_space, file_space, H5P_DEFAULT, out + i * width) < 0)
      std::abort();
    H5Sclose(memory_space);
    H5Sclose(file_space);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const hsize_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  const auto path = (std::filesystem::temp_directory_path() /
                     ("conveyor_hdf5_bench_" + std::to_string(::getpid()) + ".h5"))
                        .string();
  make_dataset(path, rows);

  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t baseline_dataset = H5Dopen2(file, "/x", H5P_DEFAULT);  // HDF5's default chunk cache

  struct variant {
    const char* name;
    conveyor::hdf5_dataset dataset;
    double seconds[2] = {0, 0};  // first round (cold chunk table), later rounds
  };
  std::vector<variant> variants;
  variants.push_back({"hdf5_dataset::read (default: direct from mmap)", conveyor::hdf5_dataset(path, "/x")});
  variants.push_back({"hdf5_dataset::read, direct_reads=false (H5Dread per block)",
                      conveyor::hdf5_dataset(path, "/x", {.direct_reads = false})});
  variants.push_back({"hdf5_dataset::read, direct_reads=false, one OR-ed selection",
                      conveyor::hdf5_dataset(path, "/x", {.max_selection_blocks = 1u << 30, .direct_reads = false})});

  std::mt19937_64 random(42);
  std::vector<std::uint8_t> expected(batch_size * width), got(batch_size * width);
  double baseline_seconds[2] = {0, 0};
  std::uint64_t checksum = 0;
  for (int round = 0; round < rounds; ++round) {
    if (round == 1) {  // untimed: one row of every chunk, through every method alike
      std::vector<std::uint64_t> touch;
      for (hsize_t row = 0; row < rows; row += chunk_rows) touch.push_back(row);
      for (std::size_t at = 0; at < touch.size(); at += batch_size) {
        const auto batch = std::span(touch).subspan(at, std::min(batch_size, touch.size() - at));
        read_per_record(baseline_dataset, batch, expected.data());
        for (auto& variant : variants)
          variant.dataset.read(batch, std::as_writable_bytes(std::span(got)).first(batch.size() * width));
      }
    }
    std::vector<std::vector<std::uint64_t>> plan(batches_per_round);
    for (auto& batch : plan) {
      batch.resize(batch_size);
      for (auto& index : batch) index = random() % rows;
    }
    auto start = std::chrono::steady_clock::now();
    for (const auto& batch : plan) {
      read_per_record(baseline_dataset, batch, expected.data());
      checksum += expected[batch_size * width - 1];
    }
    baseline_seconds[round > 0] += seconds_since(start);
    for (auto& [name, dataset, seconds] : variants) {
      start = std::chrono::steady_clock::now();
      for (const auto& batch : plan) {
        dataset.read(batch, std::as_writable_bytes(std::span(got)));
        checksum += got[batch_size * width - 1];
      }
      seconds[round > 0] += seconds_since(start);
      if (got != expected) {  // the round's last batch, read both ways
        std::fprintf(stderr, "%s differs from the per-record read\n", name);
        return 1;
      }
    }
  }
  H5Dclose(baseline_dataset);
  H5Fclose(file);
  std::filesystem::remove(path);

  std::printf("dataset: %llu x %llu uint8, chunks of %llu rows, batches of %zu random indices, "
              "%d rounds of %d batches per method\n",
              static_cast<unsigned long long>(rows), static_cast<unsigned long long>(width),
              static_cast<unsigned long long>(chunk_rows), batch_size, rounds, batches_per_round);
  const char* phase_names[2] = {"round 1 (cold: chunk addresses not yet known)",
                                "rounds 2+ (warm: after one untimed read of every chunk)"};
  for (int phase = 0; phase < 2 && phase < rounds; ++phase) {
    const double batches = (phase == 0 ? 1.0 : rounds - 1.0) * batches_per_round;
    std::printf("%s\n  %-62s %8.3f ms/batch\n", phase_names[phase],
                "baseline, one H5Dread per record (h5py __getitem__ pattern)",
                1e3 * baseline_seconds[phase] / batches);
    for (const auto& [name, dataset, seconds] : variants)
      std::printf("  %-62s %8.3f ms/batch  speedup vs baseline %6.2fx\n", name,
                  1e3 * seconds[phase] / batches, baseline_seconds[phase] / seconds[phase]);
  }
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(checksum));
  return 0;
}
