// examples/dea_train/dea_data.hpp: the DEA examples' data: synthetic records
// with the attack's layout, a temporary file for them, and a subset of a
// source's records (the train/validation split). Shared by dea_train (LibTorch)
// and raw_cuda_train (raw CUDA); see dea_train.cpp's top comment for the
// synthetic records' definition.
#pragma once

#include <algorithm>
#include <array>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/gram_alphabet.hpp>
#include <conveyor/decode/two_gram.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace dea_data {

namespace cy = conveyor;

// A record_source over a subset of another source's records: record i of the
// subset is record rows[i] of the inner source.
template <class Inner>
class subset_source {
 public:
  using batch_type = typename Inner::batch_type;

  subset_source(Inner inner, std::vector<std::uint64_t> rows, std::string name)
      : inner_(std::move(inner)),
        rows_(std::make_shared<const std::vector<std::uint64_t>>(std::move(rows))),
        name_(std::move(name)) {}

  [[nodiscard]] std::uint64_t size() const noexcept { return rows_->size(); }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] auto text_schemas() const { return inner_.text_schemas(); }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = inner_.fingerprint() ^ 0x9e3779b97f4a7c15ULL;
    for (std::uint64_t r : *rows_) h = (h ^ r) * 1099511628211ULL;
    return h;
  }

  batch_type read(std::span<const std::uint64_t> indices, const cy::stage_context& ctx) const {
    thread_local std::vector<std::uint64_t> mapped;
    mapped.resize(indices.size());
    for (std::size_t i = 0; i < indices.size(); ++i) mapped[i] = rows_->at(indices[i]);
    return inner_.read(std::span<const std::uint64_t>(mapped), ctx);
  }

 private:
  Inner inner_;
  std::shared_ptr<const std::vector<std::uint64_t>> rows_;
  std::string name_;
};

inline std::uint64_t fnv1a64(std::uint8_t seed, std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  h = (h ^ seed) * 1099511628211ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Writes n synthetic records with the attack's layout; see the top comment.
inline void write_synthetic(const std::filesystem::path& path, std::size_t n, std::uint64_t seed) {
  static const std::array<const char*, 40> given{
      "Maria",   "James",     "Rene",    "Linda",    "Robert",  "Patricia", "John",    "Jennifer",
      "Michael", "Elizabeth", "David",   "Barbara",  "William", "Susan",    "Joseph",  "Jessica",
      "Thomas",  "Sarah",     "Charles", "Karen",    "Daniel",  "Nancy",    "Matthew", "Lisa",
      "Anthony", "Betty",     "Mark",    "Margaret", "Donald",  "Sandra",   "Steven",  "Ashley",
      "Paul",    "Kimberly",  "Andrew",  "Emily",    "Joshua",  "Donna",    "Kenneth", "Michelle"};
  static const std::array<const char*, 40> surnames{
      "Taylor",   "Miles",  "Smith",     "Johnson",  "Williams",  "Brown",  "Jones",    "Garcia",
      "Miller",   "Davis",  "Rodriguez", "Martinez", "Hernandez", "Lopez",  "Gonzalez", "Wilson",
      "Anderson", "Thomas", "Moore",     "Jackson",  "Martin",    "Lee",    "Perez",    "Thompson",
      "White",    "Harris", "Sanchez",   "Clark",    "Ramirez",   "Lewis",  "Robinson", "Walker",
      "Young",    "Allen",  "King",      "Wright",   "Scott",     "Torres", "Nguyen",   "Hill"};
  const auto& alphabet = cy::gram_alphabet::dea();
  std::mt19937_64 rng(seed);
  std::ofstream out(path, std::ios::binary);
  out << "GivenName\tSurname\tBirthday\tbloomfilter\tuid\n";
  std::vector<float> label(alphabet.size());
  std::string filter(1024, '0');
  for (std::size_t i = 0; i < n; ++i) {
    std::string g = given[rng() % given.size()];
    std::string s = surnames[rng() % surnames.size()];
    std::string b = std::to_string(1 + rng() % 28) + "/" + std::to_string(1 + rng() % 12) + "/" +
                    std::to_string(1940 + rng() % 66);
    const std::array<std::string_view, 3> fields{g, s, b};
    cy::encode_two_grams(std::span<const std::string_view>(fields), std::span<float>(label),
                         cy::error_location{"synthetic", i});
    std::fill(filter.begin(), filter.end(), '0');
    for (std::size_t gram = 0; gram < label.size(); ++gram)
      if (label[gram] != 0)
        for (std::uint8_t k = 0; k < 10; ++k) filter[fnv1a64(k, alphabet.gram(gram)) % 1024] = '1';
    out << g << '\t' << s << '\t' << b << '\t' << filter << '\t' << i << '\n';
  }
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

/// Record indices 0..n-1 split by a fixed pseudo-random permutation (seed 7,
/// independent of the file): 20% validation, the rest training, each sorted.
/// The closing lines of both training examples: the training pipeline's
/// stats table, then the model's validation F1 beside the top-k baseline's.
/// Returns the exit status: 1 unless the model beats the baseline.
inline int report_against_baseline(const cy::pipeline_stats& stats, double model_f1, double baseline_f1,
                                   std::uint64_t k, double mean_grams) {
  std::cout << "\ntraining pipeline:\n" << stats;
  std::cout << std::setprecision(4) << "\nvalidation F1: model " << model_f1 << ", baseline (top " << k
            << " training grams, mean " << std::setprecision(1) << mean_grams << " per record) "
            << std::setprecision(4) << baseline_f1 << "\n";
  if (!(model_f1 > baseline_f1)) {
    std::cout << "FAIL: the model's validation F1 is not above the baseline's\n";
    return 1;
  }
  return 0;
}

struct split_rows {
  std::vector<std::uint64_t> train, validation;
  explicit split_rows(std::uint64_t n) {
    std::vector<std::uint64_t> order(n);
    for (std::uint64_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
    const auto held_out = static_cast<std::ptrdiff_t>(n / 5);
    validation.assign(order.begin(), order.begin() + held_out);
    train.assign(order.begin() + held_out, order.end());
    std::sort(validation.begin(), validation.end());
    std::sort(train.begin(), train.end());
  }
};

/// A file removed when this goes out of scope (the synthetic data).
struct temp_file {
  std::filesystem::path path;
  ~temp_file() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
};

}  // namespace dea_data
