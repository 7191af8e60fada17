// Benchmark for conveyor/source/delimited.hpp. Prints ratios against baselines
// measured in the same run:
//   1. reading every field of a ~200k-row DEA TSV through delimited_file::read
//      in batches of 256, vs std::getline + split into std::vector<std::string>;
//   2. opening with a valid index sidecar vs building the index (a full scan);
//   3. shuffled batches with madvise(WILLNEED) on vs off, page cache warm;
//   4. the same with the file's pages evicted first (cold).
// Usage: delimited_bench [rows]   (default 200000)
#include "conveyor/source/delimited.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using clock_type = std::chrono::steady_clock;

template <class Work>
double best_seconds(int repetitions, Work&& work) {
  double best = 1e300;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = clock_type::now();
    work();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - start).count());
  }
  return best;
}

// Replicates the reference file's rows, or makes DEA-like rows if it is absent.
fs::path make_input(const fs::path& dir, std::size_t rows) {
  const fs::path path = dir / "dea.tsv";
  std::ofstream out(path, std::ios::binary);
  const fs::path reference = fs::path(CONVEYOR_SHARED_DATA_DIR) / "fakename_1k_bf_encoded.tsv";
  std::vector<std::string> lines;
  std::string header = "GivenName\tSurname\tBirthday\tbloomfilter\tuid";
  if (std::ifstream in(reference); in) {
    std::getline(in, header);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::printf("input: %s replicated to %zu rows\n", reference.c_str(), rows);
  } else {
    std::mt19937_64 random(42);
    const char* given[] = {"Maria", "Rene", "John", "Aiko", "Lena"};
    const char* surname[] = {"Taylor", "Miles", "O'Neil", "Schmidt", "Nguyen"};
    for (int i = 0; i < 1000; ++i) {
      std::string bits(1024, '0');
      for (auto& bit : bits) bit = (random() % 4 == 0) ? '1' : '0';
      lines.push_back(std::string(given[random() % 5]) + "\t" + surname[random() % 5] + "\t" +
                      std::to_string(1 + random() % 12) + "/" + std::to_string(1 + random() % 28) +
                      "/19" + std::to_string(30 + random() % 70) + "\t" + bits + "\t" +
                      std::to_string(i));
    }
    std::printf("input: generated DEA-like rows (shared data absent), %zu rows\n", rows);
  }
  out << header << '\n';
  for (std::size_t i = 0; i < rows; ++i) out << lines[i % lines.size()] << '\n';
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const fs::path dir =
      fs::temp_directory_path() / ("conveyor-delimited-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path path = make_input(dir, rows);
  std::printf("file: %.1f MB\n", static_cast<double>(fs::file_size(path)) / 1e6);

  // 1. all fields, batches of 256, vs getline + split.
  std::uint64_t baseline_bytes = 0, conveyor_bytes = 0;
  const double baseline = best_seconds(3, [&] {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    std::uint64_t total = 0;
    while (std::getline(in, line)) {
      std::vector<std::string> fields;
      std::size_t start = 0;
      for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
        fields.emplace_back(line, start, tab - start);
      fields.emplace_back(line, start);
      for (const auto& field : fields) total += field.size();
    }
    baseline_bytes = total;
  });
  conveyor::delimited_options options;
  options.index_directory = dir;
  auto advised = options;  // the default is advise_willneed = false
  advised.advise_willneed = true;
  std::vector<std::uint64_t> order;
  conveyor::field_table table;
  {  // the mappings must be gone before section 4 evicts the file's pages
    conveyor::delimited_file file(path, options);
    std::vector<std::uint64_t> batch(256);
    const double ours = best_seconds(3, [&] {
      std::uint64_t total = 0;
      for (std::uint64_t first = 0; first < file.size(); first += 256) {
        batch.resize(std::min<std::uint64_t>(256, file.size() - first));
        std::iota(batch.begin(), batch.end(), first);
        file.read(batch, table);
        for (const auto field : table.cells()) total += field.size();
      }
      conveyor_bytes = total;
    });
    if (baseline_bytes != conveyor_bytes) {
      std::printf("MISMATCH: baseline read %llu field bytes, delimited_file %llu\n",
                  static_cast<unsigned long long>(baseline_bytes),
                  static_cast<unsigned long long>(conveyor_bytes));
      return 1;
    }
    std::printf(
        "read all fields, batches of 256: getline+split %.3f s, delimited_file::read %.3f s -> "
        "%.2fx faster\n",
        baseline, ours, baseline / ours);

    // 2. index build vs sidecar load.
    const fs::path sidecar = file.index_info().sidecar;
    const double build = best_seconds(3, [&] {
      fs::remove(sidecar);
      conveyor::delimited_file fresh(path, options);
      if (fresh.index_info().origin != conveyor::index_origin::built_and_saved) std::abort();
    });
    const double load = best_seconds(3, [&] {
      conveyor::delimited_file reopened(path, options);
      if (reopened.index_info().origin != conveyor::index_origin::loaded) std::abort();
    });
    std::printf("open: build index + save %.4f s, load sidecar %.4f s -> load %.1fx faster\n",
                build, load, build / load);

    // 3. shuffled batches, madvise(WILLNEED) on vs off, warm page cache.
    order.resize(file.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
    auto shuffled_pass = [&](const conveyor::delimited_file& source) {
      std::uint64_t total = 0;
      for (std::size_t first = 0; first < order.size(); first += 256) {
        const std::size_t count = std::min<std::size_t>(256, order.size() - first);
        source.read(std::span<const std::uint64_t>(order.data() + first, count), table);
        total += table.rows();
      }
      if (total != order.size()) std::abort();
    };
    conveyor::delimited_file with_advice(path, advised);
    const double without = best_seconds(3, [&] { shuffled_pass(file); });
    const double with = best_seconds(3, [&] { shuffled_pass(with_advice); });
    std::printf(
        "shuffled batches of 256 (warm cache): no madvise %.3f s, madvise(WILLNEED) %.3f s -> "
        "madvise speed ratio %.2fx\n",
        without, with, without / with);
  }

  // 4. the same, cold: the file's pages are evicted (posix_fadvise DONTNEED,
  // which needs the file unmapped) before each pass over 64 shuffled batches.
  auto cold_pass = [&](const conveyor::delimited_options& chosen) {
    {
      const int fd = ::open(path.c_str(), O_RDONLY);
      ::fdatasync(fd);  // dirty pages cannot be evicted
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
    conveyor::delimited_file cold(path, chosen);  // index from the sidecar
    const auto start = clock_type::now();
    for (std::size_t first = 0; first < 64 * 256; first += 256)
      cold.read(std::span<const std::uint64_t>(order.data() + first, 256), table);
    return std::chrono::duration<double>(clock_type::now() - start).count();
  };
  double cold_without = 1e300, cold_with = 1e300;
  for (int i = 0; i < 3; ++i) {
    cold_without = std::min(cold_without, cold_pass(options));
    cold_with = std::min(cold_with, cold_pass(advised));
  }
  std::printf(
      "shuffled batches of 256 (cold cache, 64 batches): no madvise %.3f s, madvise(WILLNEED) %.3f "
      "s -> madvise speed ratio %.2fx\n",
      cold_without, cold_with, cold_without / cold_with);

  fs::remove_all(dir);
  return 0;
}
