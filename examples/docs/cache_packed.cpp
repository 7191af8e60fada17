// docs/cache-stage.md: the recommended placement for 0/1 and sparse columns:
// cache the packed filter and the gram indices, expand them after the cache.
// Run from the repository root; skips (exit 0) when ../shared/data is absent.
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/decode/multi_hot.hpp>
#include <conveyor/decode/packed_bit_string.hpp>
#include <conveyor/decode/packed_bits.hpp>
#include <conveyor/decode/two_gram_indices.hpp>
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
  options.persist_index = false;
  auto pipe = cy::tsv_file(path, options) | cy::shuffle(42) | cy::batch(256)
            | cy::decode(cy::packed_bit_string("bloomfilter", 1024) >> cy::column<"x_packed">,    // 128 B
                         cy::two_gram_indices({"GivenName", "Surname", "Birthday"}) >> cy::column<"y_index">)  // 256 B
            | cy::cache(cy::memory_tier<>(256ull << 20))  // keeps 384 B per record, not 8 KiB
            | cy::decode(cy::packed_bits<float>(cy::column<"x_packed">, 1024) >> cy::column<"x">,
                         cy::multi_hot<float>(cy::column<"y_index">, 1036) >> cy::column<"y">)
            | cy::parallel(2) | cy::prefetch(4);

  std::uint64_t rows = 0;
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch)
    for (auto& batch : pipe.epoch(epoch)) rows += batch.get<"x">().rows();
  std::cout << rows << " rows\n" << cy::cache_stats(pipe) << '\n';
  return cy::cache_stats(pipe).hits > 0 ? 0 : 1;
}
