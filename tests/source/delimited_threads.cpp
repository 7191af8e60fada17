// Concurrency tests for conveyor/source/delimited.hpp: many readers of one
// open file, and several threads opening (and writing the sidecar of) the same
// file at once. Run under TSan in CI.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conveyor/source/delimited.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {
fs::path write_sample(const conveyor::test::temp_dir& dir) {
  std::string text = "id\ttext\n";
  for (int i = 0; i < 3000; ++i)
    text += std::to_string(i) + "\t\"line " + std::to_string(i) + "\"\"q\"\"\nnext\"\n";
  return dir.file("threads.tsv", text);
}
}  // namespace

TEST_CASE("delimited: concurrent readers and concurrent openers") {
  const conveyor::test::temp_dir dir("delimited-threads");
  const auto path = write_sample(dir);

  std::atomic<int> mismatches{0};
  std::atomic<int> opened{0};
  {
    std::vector<std::thread> openers;
    for (int t = 0; t < 4; ++t)
      openers.emplace_back([&] {
        conveyor::delimited_file file(path);
        if (file.size() == 3000) ++opened;
      });
    for (auto& each : openers) each.join();
  }
  CHECK(opened == 4);
  CHECK(conveyor::delimited_file(path).index_info().origin == conveyor::index_origin::loaded);

  const conveyor::delimited_file file(path);
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      std::vector<std::uint64_t> order(file.size());
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), std::mt19937_64(static_cast<std::uint64_t>(t)));
      conveyor::field_table table;
      for (std::size_t first = 0; first < order.size(); first += 100) {
        file.read(std::span<const std::uint64_t>(order.data() + first, 100), table);
        for (std::size_t row = 0; row < table.rows(); ++row) {
          const auto i = table.record_index(row);
          if (table.field(row, 0) != std::to_string(i) ||
              table.field(row, 1) != "line " + std::to_string(i) + "\"q\"\nnext")
            ++mismatches;
        }
      }
    });
  for (auto& each : readers) each.join();
  CHECK(mismatches == 0);
}
