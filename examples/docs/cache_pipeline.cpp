// docs/cache-stage.md: the DEA pipeline with a memory + disk cache stack.
// Run from the repository root; skips (exit 0) when ../shared/data is absent.
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/disk_tier.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/cache/tiered.hpp>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>
#include <filesystem>
#include <iostream>
#include <unistd.h>

namespace cy = conveyor;

int main(int argc, char** argv) {
  std::filesystem::path path = argc > 1 ? argv[1] : "../shared/data/fakename_1k_bf_encoded.tsv";
  if (!std::filesystem::exists(path)) {
    std::cout << "no " << path << ", nothing to do\n";
    return 0;
  }
  auto cache_dir = std::filesystem::temp_directory_path() / ("conveyor-docs-cache-" + std::to_string(::getpid()));
  {
    cy::disk_tier disk(cache_dir);  // must outlive the stack below (held by reference)
    auto stack = std::make_shared<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>(
        cy::write_policy::write_back, cy::memory_tier<>(64ull << 20), disk);

    auto options = cy::delimited_options::tsv();
    options.persist_index = false;
    auto pipe = cy::tsv_file(path, options) | cy::shuffle(42) | cy::batch(256) |
                cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                           cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
                cy::cache(stack) | cy::parallel(2) | cy::prefetch(4);

    for (std::uint64_t epoch = 0; epoch < 3; ++epoch)
      for (auto& batch : pipe.epoch(epoch)) (void)batch.get<"x">();
    std::cout << pipe.stats();
    auto hits = cy::cache_stats(pipe);
    std::cout << hits;
  }
  std::filesystem::remove_all(cache_dir);
}
