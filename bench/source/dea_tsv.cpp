// The DEA workload end to end: a TSV file to decoded batches of float32
// features x (rows x 1024) and labels y (rows x 1036). Prints rows/s and ratios
// against baselines measured in the same run:
//   conveyor:   tsv_file | batch(1024) | decode(bits >> x, two_grams >> y)
//               | parallel(1 or 2) | prefetch(4), opening (index scan) included;
//   C++ naive:  std::ifstream + std::getline, split on '\t' into
//               std::vector<std::string>, a per-character loop to floats, the
//               label built with std::string (erase, strip, lowercase) and a
//               linear search of a std::vector<std::string> alphabet per gram
//               (the original's method in C++), a std::vector<float> per row
//               copied into a reused batch buffer; one thread; timed on the
//               first naive_rows rows of the same file (at ~15,000 rows per
//               CPU-second, the whole million would take over a minute);
//   Python:     bench/source/dea_python_baseline.py (pandas apply, one tensor per
//               row, list.index per gram, DataLoader) on the first rows of the
//               same file, when python3 with pandas is available.
// Every consumer touches every value (counts the 1.0s). Before timing, the
// first rows of conveyor and the naive baseline are compared value by value,
// and the Python counts against them: any difference fails the program.
//
// Usage: dea_tsv_bench [rows=1000000] [directory=/tmp] [python_rows=20000]
//                      [naive_rows=100000]
// Figures are rows/s of wall-clock time, and rows per CPU-second of this
// process (Python: of its process), which is steadier on a shared machine.
// The input is the rows of ../shared/data/fakename_1k_bf_encoded.tsv repeated
// (DEA-like random rows if that is absent), written to <directory> and removed
// at the end. The page cache is warm for every measurement.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "conveyor/conveyor.hpp"
#include "conveyor/decode/decode.hpp"
#include "conveyor/source/tsv.hpp"
#include "support/naive_dea.hpp"
#include "support/process_timing.hpp"

namespace cy = conveyor;
namespace fs = std::filesystem;
using conveyor::bench::load_average;
using conveyor::bench::measure;
using conveyor::bench::timing;

namespace {

constexpr std::size_t bits_width = 1024;
constexpr std::size_t grams_width = 1036;
constexpr std::size_t batch_rows = 1024;

// Receives each batch: row-major x (rows x 1024) and y (rows x 1036).
using batch_consumer = std::function<void(const float* x, const float* y, std::size_t rows)>;

struct tally {
  std::uint64_t rows = 0, ones_x = 0, ones_y = 0;
  void add(const float* x, const float* y, std::size_t rows_in_batch) {
    rows += rows_in_batch;
    ones_x += count_nonzero(x, rows_in_batch * bits_width);
    ones_y += count_nonzero(y, rows_in_batch * grams_width);
  }
  // A 32-bit count per batch (at most 1024 x 1036 values) vectorizes; a
  // 64-bit one made this consumer a quarter of conveyor's profile.
  static std::uint64_t count_nonzero(const float* values, std::size_t count) {
    std::uint32_t nonzero = 0;
    for (std::size_t i = 0; i < count; ++i) nonzero += values[i] != 0.0f ? 1u : 0u;
    return nonzero;
  }
  bool operator==(const tally&) const = default;
};

// Writes the input: the reference rows repeated, or DEA-like random rows.
void make_input(const fs::path& path, std::uint64_t rows) {
  const fs::path reference = fs::path(CONVEYOR_SHARED_DATA_DIR) / "fakename_1k_bf_encoded.tsv";
  std::string header = "GivenName\tSurname\tBirthday\tbloomfilter\tuid";
  std::vector<std::string> lines;
  if (std::ifstream in(reference); in && std::getline(in, header)) {
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::printf("input: %s repeated to %llu rows\n", reference.c_str(),
                static_cast<unsigned long long>(rows));
  }
  if (lines.empty()) {
    std::mt19937_64 random(7);
    const char* given[] = {"Maria",    "Rene",    "Ashley",  "Cecil",
                           "Jennifer", "Michael", "Dorothy", "Luis"};
    const char* surname[] = {"Taylor", "Miles",  "Newsome", "O'Neil",
                             "Garcia", "Nguyen", "Smith",   "Li"};
    for (int i = 0; i < 1000; ++i) {
      std::string bits(bits_width, '0');
      for (auto& bit : bits) bit = random() % 4 == 0 ? '1' : '0';
      lines.push_back(std::string(given[random() % 8]) + "\t" + surname[random() % 8] + "\t" +
                      std::to_string(1 + random() % 12) + "/" + std::to_string(1 + random() % 28) +
                      "/" + std::to_string(1930 + random() % 80) + "\t" + bits + "\t" +
                      std::to_string(i));
    }
    std::printf("input: %llu DEA-like random rows (shared data absent)\n",
                static_cast<unsigned long long>(rows));
  }
  std::ofstream out(path, std::ios::binary);
  out << header << '\n';
  for (std::uint64_t i = 0; i < rows; ++i) out << lines[i % lines.size()] << '\n';
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

// conveyor: the pipeline as a user writes it. Stops after max_rows (early break).
// With index_dir empty every run scans the file for record offsets, as the
// baselines parse it; otherwise the index is kept in index_dir and reused, as
// a trainer's second and later runs do.
void run_conveyor(const fs::path& path, unsigned workers, std::uint64_t max_rows,
                  const batch_consumer& consume, const fs::path& index_dir = {}) {
  cy::delimited_options options = cy::delimited_options::tsv();
  options.persist_index = !index_dir.empty();
  options.index_directory = index_dir;
  auto pipe = cy::tsv_file(path, options) | cy::batch(batch_rows) |
              cy::decode(cy::bits<float>("bloomfilter", bits_width) >> cy::column<"x">,
                         cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
              cy::parallel(workers) | cy::prefetch(4);
  std::uint64_t rows = 0;
  for (auto& b : pipe.epoch(0)) {
    const std::size_t take =
        static_cast<std::size_t>(std::min<std::uint64_t>(b.rows(), max_rows - rows));
    consume(b.get<"x">().data(), b.get<"y">().data(), take);
    rows += take;
    if (rows >= max_rows) break;
  }
}

// The naive C++ baseline: the original's method, written plainly.
std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
    fields.push_back(line.substr(start, tab - start));
  fields.push_back(line.substr(start));
  return fields;
}


std::vector<float> naive_features(const std::string& bits, std::uint64_t line_number) {
  if (bits.size() != bits_width)
    throw std::runtime_error("line " + std::to_string(line_number) + ": bit string of " +
                             std::to_string(bits.size()) + " characters");
  std::vector<float> features;
  for (char c : bits) {
    if (c != '0' && c != '1')
      throw std::runtime_error("line " + std::to_string(line_number) + ": not a bit");
    features.push_back(c == '1' ? 1.0f : 0.0f);
  }
  return features;
}


void run_naive(const fs::path& path, std::uint64_t max_rows, const batch_consumer& consume) {
  const auto alphabet = conveyor::bench::naive_dea_alphabet();
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error("empty file " + path.string());
  const std::size_t columns = split_tabs(line).size();
  std::vector<float> batch_x(batch_rows * bits_width), batch_y(batch_rows * grams_width);
  std::size_t filled = 0;
  std::uint64_t rows = 0;
  while (rows < max_rows && std::getline(in, line)) {
    const auto fields = split_tabs(line);
    if (fields.size() != columns)
      throw std::runtime_error("line " + std::to_string(rows + 2) + ": " +
                               std::to_string(fields.size()) + " fields");
    const auto features = naive_features(fields[columns - 2], rows + 2);
    std::string text;
    for (std::size_t i = 0; i + 2 < fields.size(); ++i) text += fields[i];
    const auto label = conveyor::bench::naive_dea_label(std::move(text), alphabet);
    std::copy(features.begin(), features.end(),
              batch_x.begin() + static_cast<std::ptrdiff_t>(filled * bits_width));
    std::copy(label.begin(), label.end(),
              batch_y.begin() + static_cast<std::ptrdiff_t>(filled * grams_width));
    ++rows;
    if (++filled == batch_rows) {
      consume(batch_x.data(), batch_y.data(), filled);
      filled = 0;
    }
  }
  if (filled > 0) consume(batch_x.data(), batch_y.data(), filled);
}

// Collects the first rows of a run, for the value-by-value comparison.
struct captured {
  std::vector<float> x, y;
  tally counts;
  batch_consumer consumer() {
    return [this](const float* bx, const float* by, std::size_t rows) {
      x.insert(x.end(), bx, bx + rows * bits_width);
      y.insert(y.end(), by, by + rows * grams_width);
      counts.add(bx, by, rows);
    };
  }
};

struct python_result {
  std::string backend;
  double rows_per_second = 0, seconds = 0, cpu_seconds = 0;
  std::uint64_t rows = 0, ones_x = 0, ones_y = 0;
};

// Runs the Python baseline; an empty backend means it could not run.
python_result run_python(const fs::path& path, std::uint64_t rows) {
  if (std::system("python3 -c 'import pandas' >/dev/null 2>&1") != 0) return {};
  const std::string command =
      "python3 '" DEA_PYTHON_BASELINE "' '" + path.string() + "' --rows " + std::to_string(rows);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string output;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0;) output.append(chunk, n);
  if (::pclose(pipe) != 0) throw std::runtime_error("the Python baseline failed:\n" + output);
  const auto at = output.rfind("python_baseline ");
  if (at == std::string::npos)
    throw std::runtime_error("no result line from the Python baseline:\n" + output);
  std::map<std::string, std::string> fields;
  std::istringstream words(output.substr(at + 16));
  for (std::string word; words >> word;)
    if (const auto eq = word.find('='); eq != std::string::npos)
      fields[word.substr(0, eq)] = word.substr(eq + 1);
  python_result result;
  result.backend = fields["backend"];
  result.rows = std::stoull(fields.at("rows"));
  result.seconds = std::stod(fields.at("seconds"));
  result.cpu_seconds = std::stod(fields.at("cpu_seconds"));
  result.rows_per_second = std::stod(fields.at("rows_per_second"));
  result.ones_x = std::stoull(fields.at("ones_x"));
  result.ones_y = std::stoull(fields.at("ones_y"));
  return result;
}

void print_rate(const char* name, std::uint64_t rows, timing t) {
  std::printf("  %-34s %10.0f rows/s  (%6.2f s wall, %6.2f s CPU, %8.0f rows per CPU-second)\n",
              name, static_cast<double>(rows) / t.wall, t.wall, t.cpu,
              static_cast<double>(rows) / t.cpu);
}

int run(std::uint64_t rows, const fs::path& directory, std::uint64_t python_rows,
        std::uint64_t naive_rows) {
  std::printf("dea_tsv_bench: TSV -> batches of float32 x (1024) and y (1036), batch 1024\n");
  std::printf("load average at start: %s (%ld CPUs online)\n", load_average().c_str(),
              ::sysconf(_SC_NPROCESSORS_ONLN));
  fs::create_directories(directory);
  const fs::path path = directory / ("conveyor-dea-bench-" + std::to_string(::getpid()) + ".tsv");
  struct remove_at_exit {
    fs::path path;
    ~remove_at_exit() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } cleanup{path};
  const timing written = measure([&] { make_input(path, rows); });
  std::printf("wrote %s: %.0f MB in %.1f s\n", path.c_str(),
              static_cast<double>(fs::file_size(path)) / 1e6, written.wall);

  // Identical outputs first (not timed).
  const std::uint64_t check_rows =
      std::min<std::uint64_t>(rows, std::max<std::uint64_t>(python_rows, 2048));
  captured fast, naive;
  run_conveyor(path, 2, check_rows, fast.consumer());
  run_naive(path, check_rows, naive.consumer());
  if (fast.counts.rows != check_rows || fast.x != naive.x || fast.y != naive.y) {
    std::fprintf(stderr, "FAILED: conveyor and the C++ baseline differ on the first %llu rows\n",
                 static_cast<unsigned long long>(check_rows));
    return 1;
  }
  std::printf(
      "check: conveyor == C++ baseline on the first %llu rows, value by value (%llu ones in x, "
      "%llu in y)\n",
      static_cast<unsigned long long>(check_rows),
      static_cast<unsigned long long>(fast.counts.ones_x),
      static_cast<unsigned long long>(fast.counts.ones_y));

  // Python on the first python_rows rows; its counts must match ours.
  std::printf("running the Python baseline on the first %llu rows...\n",
              static_cast<unsigned long long>(python_rows));
  std::fflush(stdout);
  const python_result python = python_rows > 0 ? run_python(path, python_rows) : python_result{};
  if (!python.backend.empty()) {
    tally first;
    const bool rows_match = python.rows == std::min(python_rows, rows);
    if (rows_match) first.add(fast.x.data(), fast.y.data(), python.rows);
    if (!rows_match || python.ones_x != first.ones_x || python.ones_y != first.ones_y) {
      std::fprintf(
          stderr,
          "FAILED: the Python baseline's counts differ (rows %llu, ones %llu/%llu vs %llu/%llu)\n",
          static_cast<unsigned long long>(python.rows),
          static_cast<unsigned long long>(python.ones_x),
          static_cast<unsigned long long>(python.ones_y),
          static_cast<unsigned long long>(first.ones_x),
          static_cast<unsigned long long>(first.ones_y));
      return 1;
    }
  }

  // Timed runs over the whole file. conveyor: best of 2 per worker count.
  auto timed = [&](auto&& body, tally& counts) {
    counts = {};
    return measure([&] {
      body([&counts](const float* x, const float* y, std::size_t n) { counts.add(x, y, n); });
    });
  };
  tally counts_naive, counts_one, counts_two, counts;
  const timing naive_time =
      timed([&](const batch_consumer& c) { run_naive(path, naive_rows, c); }, counts_naive);
  timing one{1e300, 1e300}, two{1e300, 1e300}, reused{1e300, 1e300};
  const fs::path index_dir = path.parent_path() / (path.filename().string() + ".index");
  fs::create_directories(index_dir);
  run_conveyor(path, 1, 1, [](const float*, const float*, std::size_t) {}, index_dir);  // builds the sidecar, untimed
  tally counts_reused;
  for (int repetition = 0; repetition < 2; ++repetition) {
    const timing t3 =
        timed([&](const batch_consumer& c) { run_conveyor(path, 1, rows, c, index_dir); }, counts);
    if (t3.wall < reused.wall) reused = t3;
    counts_reused = counts;
    const timing t1 =
        timed([&](const batch_consumer& c) { run_conveyor(path, 1, rows, c); }, counts);
    if (t1.wall < one.wall) one = t1;
    counts_one = counts;
    const timing t2 =
        timed([&](const batch_consumer& c) { run_conveyor(path, 2, rows, c); }, counts);
    if (t2.wall < two.wall) two = t2;
    counts_two = counts;
  }
  fs::remove_all(index_dir);
  if (!(counts_one == counts_two) || !(counts_one == counts_reused) || counts_one.rows != rows ||
      counts_naive.rows != naive_rows) {
    std::fprintf(stderr, "FAILED: the timed runs disagree on the number of rows or ones\n");
    return 1;
  }

  std::printf("\n%llu rows (%llu ones in x, %llu in y in each conveyor run), page cache warm:\n",
              static_cast<unsigned long long>(rows),
              static_cast<unsigned long long>(counts_one.ones_x),
              static_cast<unsigned long long>(counts_one.ones_y));
  std::printf(
      "  %-34s %10.0f rows/s  (%6.2f s wall, %6.2f s CPU, %8.0f rows per CPU-second; first %llu "
      "rows)\n",
      "C++ naive baseline (1 thread)", static_cast<double>(naive_rows) / naive_time.wall,
      naive_time.wall, naive_time.cpu, static_cast<double>(naive_rows) / naive_time.cpu,
      static_cast<unsigned long long>(naive_rows));
  print_rate("conveyor parallel(1) (best of 2)", rows, one);
  print_rate("conveyor parallel(2) (best of 2)", rows, two);
  print_rate("conveyor parallel(1), index reused", rows, reused);
  if (!python.backend.empty()) {
    std::printf(
        "  %-34s %10.0f rows/s  (%6.2f s wall, %6.2f s CPU, %8.0f rows per CPU-second; first %llu "
        "rows, %s)\n",
        "Python original's method", python.rows_per_second, python.seconds, python.cpu_seconds,
        static_cast<double>(python.rows) / python.cpu_seconds,
        static_cast<unsigned long long>(python.rows),
        python.backend == "torch" ? "torch tensors" : "torch missing: numpy arrays per row");
  } else {
    std::printf("  Python baseline skipped: python3 with pandas is not available\n");
  }

  const double naive_rate = static_cast<double>(naive_rows) / naive_time.wall;
  const double naive_cpu_rate = static_cast<double>(naive_rows) / naive_time.cpu;
  const auto rate = [rows](timing t) { return static_cast<double>(rows) / t.wall; };
  const auto cpu_rate = [rows](timing t) { return static_cast<double>(rows) / t.cpu; };
  std::printf("\nratios (wall-clock rows/s; in parentheses per CPU-second):\n");
  std::printf("  conveyor parallel(1) / C++ naive: %8.1fx  (%.1fx)\n", rate(one) / naive_rate,
              cpu_rate(one) / naive_cpu_rate);
  std::printf("  conveyor parallel(2) / C++ naive: %8.1fx  (%.1fx)\n", rate(two) / naive_rate,
              cpu_rate(two) / naive_cpu_rate);
  std::printf("  conveyor parallel(2) / parallel(1): %6.2fx\n", one.wall / two.wall);
  if (!python.backend.empty()) {
    const double python_cpu_rate = static_cast<double>(python.rows) / python.cpu_seconds;
    std::printf("  C++ naive / Python:               %8.1fx  (%.1fx)\n",
                naive_rate / python.rows_per_second, naive_cpu_rate / python_cpu_rate);
    std::printf("  conveyor parallel(1) / Python:    %8.0fx  (%.0fx)\n",
                rate(one) / python.rows_per_second, cpu_rate(one) / python_cpu_rate);
    std::printf("  conveyor parallel(2) / Python:    %8.0fx  (%.0fx)\n",
                rate(two) / python.rows_per_second, cpu_rate(two) / python_cpu_rate);
    std::printf("  conveyor p(1), index reused / Python: %4.0fx  (%.0fx)\n",
                rate(reused) / python.rows_per_second, cpu_rate(reused) / python_cpu_rate);
  }
  std::printf("load average at end: %s\n", load_average().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const fs::path directory = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path();
  const std::uint64_t python_rows = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 20000;
  const std::uint64_t naive_rows =
      std::min<std::uint64_t>(rows, argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 100000);
  if (rows == 0 || naive_rows == 0) {
    std::fprintf(
        stderr,
        "usage: %s [rows=1000000] [directory=/tmp] [python_rows=20000] [naive_rows=100000]\n",
        argv[0]);
    return 2;
  }
  try {
    return run(rows, directory, python_rows, naive_rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dea_tsv_bench: %s\n", e.what());
    return 1;
  }
}
