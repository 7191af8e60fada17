// bench/source/dea_drive.cpp: the DEA TSV pipeline (tsv_file | batch(1024) | decode(bits, two_grams)) run
// sequentially over a file for N epochs; its source compiles against older commits too, so
// bench/compare_commits.sh builds it against two commits and compares them in one run.
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
namespace cy = conveyor;
int main(int argc, char** argv) {
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;
  auto pipe = cy::tsv_file(argv[1], options) | cy::batch(1024) |
              cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                         cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">);
  int epochs = argc > 2 ? std::atoi(argv[2]) : 1;
  std::uint64_t ones = 0, rows = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < epochs; ++e)
    for (auto& b : pipe.epoch(e)) {
      rows += b.rows();
      for (float v : b.get<"x">().values()) ones += v != 0;
      for (float v : b.get<"y">().values()) ones += v != 0;
    }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu rows, %llu ones, %.3f s, %.0f rows/s\n", (unsigned long long)rows, (unsigned long long)ones, s, rows / s);
}
