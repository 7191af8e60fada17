// Two-gram label encoding, rows per second on one core, against the Python
// original's method rebuilt in C++ (the baseline, measured in the same run):
// build the label string with std::string (concatenate, erase '"' '.' '/',
// strip, tolower), allocate a fresh 1036-float label per row, and find each
// pair by a linear search of a std::vector<std::string> alphabet (list.index).
// Rows: the names and birthdays of ../shared/data/fakename_10k.tsv when present,
// else 10,000 synthetic DEA-like rows. Both methods must give identical labels.
// Times are this thread's CPU time (the machine is shared).
// Then the same rows as gram indices (two_gram_indices, the packed
// placement's label): the ASCII path straight to a bitset
// (two_gram_index_decoder::ascii_indices) against the label-then-scan path
// it replaced for ASCII text (a uint8 label, then compact), same indices.
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/decode/two_gram.hpp"
#include "conveyor/decode/two_gram_indices.hpp"
#include "support/naive_dea.hpp"
#include "support/thread_clock.hpp"

namespace {

namespace cy = conveyor;
using clock_type = conveyor::bench::thread_cpu_clock;
using row_fields = std::array<std::string, 3>;

std::vector<row_fields> load_rows(const std::string& path) {
  std::vector<row_fields> rows;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return rows;
  while (std::getline(in, line)) {
    row_fields row;
    std::size_t start = 0;
    for (auto& field : row) {
      const std::size_t tab = line.find('\t', start);
      if (tab == std::string::npos) return {};
      field = line.substr(start, tab - start);
      start = tab + 1;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<row_fields> synthetic_rows(std::size_t count) {
  static const char* given[] = {"Maria", "Rene", "Ashley", "Cecil", "Jennifer", "Michael", "Dorothy", "Luis"};
  static const char* surnames[] = {"Taylor", "Miles", "Newsome", "Sampson", "Garcia", "O'Neil", "Nguyen", "Smith"};
  std::mt19937 rng(3);
  std::vector<row_fields> rows(count);
  for (auto& row : rows) {
    row[0] = given[rng() % 8];
    row[1] = surnames[rng() % 8];
    row[2] = std::to_string(1 + rng() % 12) + "/" + std::to_string(1 + rng() % 28) + "/" + std::to_string(1930 + rng() % 80);
  }
  return rows;
}



volatile float sink;

}  // namespace

int main() {
  auto rows = load_rows(CONVEYOR_SHARED_DATA_DIR "/fakename_10k.tsv");
  const bool real = !rows.empty();
  if (!real) rows = synthetic_rows(10000);
  const auto alphabet = cy::bench::naive_dea_alphabet();
  const std::size_t width = cy::dea_alphabet().size();

  // Correctness first: identical labels on every row.
  std::vector<float> label(width);
  for (const auto& row : rows) {
    const std::array<std::string_view, 3> fields{row[0], row[1], row[2]};
    if (!cy::try_encode_two_grams(fields, std::span<float>(label)).ok() || label != cy::bench::naive_dea_label(row[0] + row[1] + row[2], alphabet)) {
      std::fprintf(stderr, "labels differ on %s %s %s\n", row[0].c_str(), row[1].c_str(), row[2].c_str());
      return 1;
    }
  }

  double best_conveyor = 1e9, best_naive = 1e9;
  for (int trial = 0; trial < 5; ++trial) {
    auto start = clock_type::now();
    for (int pass = 0; pass < 10; ++pass) {
      for (const auto& row : rows) {
        const std::array<std::string_view, 3> fields{row[0], row[1], row[2]};
        if (!cy::try_encode_two_grams(fields, std::span<float>(label)).ok()) return 1;
        sink = label[17];
      }
    }
    best_conveyor = std::min(best_conveyor, std::chrono::duration<double>(clock_type::now() - start).count() / 10);
    start = clock_type::now();
    for (const auto& row : rows) sink = cy::bench::naive_dea_label(row[0] + row[1] + row[2], alphabet)[17];
    best_naive = std::min(best_naive, std::chrono::duration<double>(clock_type::now() - start).count());
  }
  const double n = static_cast<double>(rows.size());
  std::printf("two-gram labels (1036 float32), %zu %s rows, one core, best of 5\n", rows.size(),
              real ? "fakename_10k.tsv" : "synthetic");
  std::printf("  baseline (std::string + linear search, new vector per row): %12.0f rows/s\n", n / best_naive);
  std::printf("  conveyor::try_encode_two_grams (table lookup, reused row):   %12.0f rows/s\n", n / best_conveyor);
  std::printf("  ratio conveyor / baseline: %.1f\n", best_naive / best_conveyor);

  // Gram indices (max_grams 64): straight to a bitset against label + compact.
  const auto& dea = cy::dea_alphabet();
  std::vector<std::uint8_t> bytes_label(width);
  std::vector<std::int32_t> direct(64), scanned(64);
  std::size_t direct_count = 0;
  for (const auto& row : rows) {
    const std::array<std::string_view, 3> fields{row[0], row[1], row[2]};
    if (!cy::try_encode_two_grams(fields, std::span<std::uint8_t>(bytes_label), dea).ok()) return 1;
    const std::size_t scanned_count = cy::two_gram_index_decoder::compact(bytes_label, scanned);
    const bool ascii = cy::two_gram_index_decoder::ascii_indices(fields, dea, direct, direct_count);
    if (ascii && (direct_count != scanned_count || direct != scanned)) {
      std::fprintf(stderr, "indices differ on %s %s %s\n", row[0].c_str(), row[1].c_str(), row[2].c_str());
      return 1;
    }
  }
  double best_direct = 1e9, best_scan = 1e9;
  for (int trial = 0; trial < 5; ++trial) {
    auto start = clock_type::now();
    for (int pass = 0; pass < 10; ++pass)
      for (const auto& row : rows) {
        const std::array<std::string_view, 3> fields{row[0], row[1], row[2]};
        if (!cy::two_gram_index_decoder::ascii_indices(fields, dea, direct, direct_count)) {
          if (!cy::try_encode_two_grams(fields, std::span<std::uint8_t>(bytes_label), dea).ok()) return 1;
          direct_count = cy::two_gram_index_decoder::compact(bytes_label, direct);
        }
        sink = static_cast<float>(direct[0] + static_cast<std::int32_t>(direct_count));
      }
    best_direct = std::min(best_direct, std::chrono::duration<double>(clock_type::now() - start).count() / 10);
    start = clock_type::now();
    for (int pass = 0; pass < 10; ++pass)
      for (const auto& row : rows) {
        const std::array<std::string_view, 3> fields{row[0], row[1], row[2]};
        if (!cy::try_encode_two_grams(fields, std::span<std::uint8_t>(bytes_label), dea).ok()) return 1;
        const std::size_t count = cy::two_gram_index_decoder::compact(bytes_label, scanned);
        sink = static_cast<float>(scanned[0] + static_cast<std::int32_t>(count));
      }
    best_scan = std::min(best_scan, std::chrono::duration<double>(clock_type::now() - start).count() / 10);
  }
  std::printf("two-gram indices (64 int32), the same rows, one core, best of 5\n");
  std::printf("  baseline (uint8 label, then compact):                        %12.0f rows/s\n", n / best_scan);
  std::printf("  two_gram_index_decoder::ascii_indices (bitset):              %12.0f rows/s\n", n / best_direct);
  std::printf("  ratio bitset / label + compact: %.2f\n", best_scan / best_direct);
  return 0;
}
