// docs/dea.md: the dataset extension attack's preprocessing as a pipeline.
// Run from the repository root; skips (exit 0) when ../shared/data is absent.
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
#include <filesystem>
#include <iostream>

namespace cy = conveyor;

int main(int argc, char** argv) {
  std::filesystem::path path = argc > 1 ? argv[1] : "../shared/data/fakename_1k_bf_encoded.tsv";
  if (!std::filesystem::exists(path)) {
    std::cout << "no " << path << ", nothing to do\n";
    return 0;
  }
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;  // keep the data directory untouched
  auto pipe = cy::tsv_file(path, options) | cy::shuffle(42) | cy::batch(256) |
              cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                         cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
              cy::parallel(2) | cy::prefetch(4);
  for (std::uint64_t epoch = 0; epoch < 2; ++epoch)
    for (auto& batch : pipe.epoch(epoch)) {
      const auto& x = batch.get<"x">();  // rows x 1024 float32, 0 or 1
      const auto& y = batch.get<"y">();  // rows x 1036 float32 multi-hot two-grams
      if (x.rows() != y.rows()) return 1;
    }
  std::cout << pipe.stats();
}
