// The cache stage: how much faster is a second epoch served from a tier than
// one recomputed by the stages upstream? Every figure is a ratio to the
// uncached pipeline measured in the same run (rounds interleaved, medians).
//
// Part 1, synthetic: generate 1024-char '0'/'1' strings | shuffle | batch(256)
//   | map(decode to float32 with decode_bit_string) | [cache(tier)] | parallel(2)
// Part 2, DEA (when ../shared/data/fakename_1k_bf_encoded.tsv exists): its rows
//   replicated to `dea_rows` in a TSV under /tmp | shuffle | batch(256)
//   | decode(bits<float> >> x, two_grams >> y) | [cache(tier)] | parallel(2),
//   and the same with uint8 columns (a quarter of the bytes per record), and
//   each also with the cache's bitmaps off (cache_options::pack_binary_columns
//   = false: every dense column stored raw, 8 KiB per float32 record) in the
//   same rounds, and every cached row says how the cache stored the columns;
//   the packed placement: decode(packed_bit_string >> x_packed,
//   two_gram_indices >> y_index) | [cache(tier)] | decode(packed_bits<float>,
//   multi_hot<float>) | parallel(2): the cache keeps 128 + 256 bytes per
//   record and the expansion runs after it, against the same float32
//   pipeline without a cache as baseline; the row "packed, no cache" is the
//   packed pipeline without its cache stage, so the cache's own fill cost is
//   its row's epoch 1 over that one (the placement's cost over the float32
//   pipeline is that row's own ratio)
// Part 3, a slow upstream (built with HDF5): a chunked (64 rows), deflate
// level 4 HDF5 dataset of packed 1024-bit rows | shuffle | batch(256) |
// decode(packed_bits<float>) | [cache(tier)] | parallel(2)
// Tiers: memory_tier (S3-FIFO) sized to hold everything, disk_tier in a fresh
// /tmp directory (page cache warm: this measures the cache, not the disk).
// The consumer reads one value per cache line of every batch; the cached and
// uncached second epochs are checked to deliver the same sampled values, in the
// same order (else exit 1; tests/cache/cache_stage.cpp checks every byte).
//
// Usage: cache_stage_bench [synthetic_records=32768] [dea_rows=100000] [rounds=3] [hdf5_rows=32768]
//                          [memory_arena=1 (0: the memory tier's entries from operator new)]
//                          [parts=all (packed: only the DEA packed placement, for A/B runs;
//                                      dea: only the DEA float32 and uint8 rows;
//                                      dea-memory: only DEA float32, uncached, memory, and
//                                      memory with the tier's memory touched before the fill)]
#include "conveyor/cache/cache_stage.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "conveyor/cache/disk_tier.hpp"
#include "conveyor/cache/memory_tier.hpp"
#include "conveyor/conveyor.hpp"
#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/decode.hpp"
#include "conveyor/decode/multi_hot.hpp"
#include "conveyor/decode/packed_bit_string.hpp"
#include "conveyor/decode/packed_bits.hpp"
#include "conveyor/decode/two_gram_indices.hpp"
#include "conveyor/source/tsv.hpp"
#if CONVEYOR_BENCH_HDF5
#include <hdf5.h>

#include "conveyor/source/hdf5_source.hpp"
#endif

namespace cy = conveyor;
namespace fs = std::filesystem;
using seconds = std::chrono::duration<double>;

namespace {

double process_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

struct epoch_result {
  double seconds = 0;
  double cpu_seconds = 0;  // of the whole process (every thread): steadier on a shared machine
  double checksum = 0;     // sum over rows of index-weighted values: equal runs, equal sums
  std::string encoding;    // cached runs: how the cache stored the dense columns
};

// Runs one epoch, reading one value per 64-byte line of every dense column (the
// consumer touches all the memory without becoming the bottleneck itself).
template <class Pipe>
epoch_result timed_epoch(Pipe& pipe, std::uint64_t epoch) {
  epoch_result result;
  double cpu_begin = process_cpu_seconds();
  auto begin = std::chrono::steady_clock::now();
  for (auto& batch : pipe.epoch(epoch)) {
    std::apply(
        [&](const auto&... columns) {
          (
              [&](const auto& column) {
                using value_type = typename std::remove_cvref_t<decltype(column)>::value_type;
                constexpr std::size_t stride = std::max<std::size_t>(1, 64 / sizeof(value_type));
                for (std::size_t r = 0; r < column.rows(); ++r) {
                  double row_sum = 0;
                  auto row = column.row(r);
                  for (std::size_t c = 0; c < row.size(); c += stride)
                    row_sum += static_cast<double>(row[c]);
                  result.checksum += row_sum * static_cast<double>(batch.indices()[r] % 1000 + 1);
                }
              }(columns),
              ...);
        },
        batch.columns());
  }
  result.seconds = seconds(std::chrono::steady_clock::now() - begin).count();
  result.cpu_seconds = process_cpu_seconds() - cpu_begin;
  return result;
}

// The memory tier of every "memory" row: entries in its arena (the default),
// or, with the fifth argument 0, from operator new (the tier before the arena).
bool memory_arena = true;
cy::memory_tier<> memory_cache(std::uint64_t capacity_bytes) {
  cy::memory_tier_options options;
  options.capacity_bytes = capacity_bytes;
  options.use_arena = memory_arena;
  return cy::memory_tier<>(std::move(options));
}

// The same tier with its memory touched before the fill: `values` values of
// `value_bytes` (the size the cache stage writes) put and erased, so that
// the fill's blocks come from the arena's free list, already faulted in, and
// each shard's index has already grown. Against a fresh tier, in the same
// rounds, this tells the kernel's first touch of the entries' memory from
// the put path's own cost.
std::shared_ptr<cy::memory_tier<>> touched_memory_cache(std::uint64_t capacity_bytes,
                                                        std::uint64_t values,
                                                        std::size_t value_bytes) {
  auto tier = std::make_shared<cy::memory_tier<>>(memory_cache(capacity_bytes));
  const std::vector<std::byte> value(value_bytes);
  for (std::uint64_t i = 0; i < values; ++i) tier->put(cy::cache_key{~0ULL, 0, i}, value);
  for (std::uint64_t i = 0; i < values; ++i) tier->erase(cy::cache_key{~0ULL, 0, i});
  return tier;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "conveyor-cache-bench-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// The kinds of run compare() times: kind 0 is the uncached baseline, every
// other a cached pipeline. "bitmaps off": cache_options::pack_binary_columns
// = false, the cache storing every dense column raw (the codec's A/B in one run).
const std::vector<const char*> tier_kinds{"none", "memory", "disk"};
const std::vector<const char*> tier_kinds_memory{"none", "memory", "memory, memory touched"};
const std::vector<const char*> tier_kinds_packed{"none", "memory", "disk", "packed, no cache"};
const std::vector<const char*> tier_kinds_ab{"none", "memory", "disk", "memory, bitmaps off",
                                             "disk, bitmaps off"};

cy::cache_options cache_options_of(bool bitmaps) {
  cy::cache_options options;
  options.pack_binary_columns = bitmaps;
  return options;
}

// Times epoch 0 (fills the cache) and epoch 1 (served from it) of pipelines
// made by `make(kind)` for each of `kinds`, `rounds` times interleaved.
// Returns false when a cached run delivered different values.
template <class Make>
bool compare(const char* title, int rounds, Make make,
             const std::vector<const char*>& kinds = tier_kinds) {
  const std::size_t n = kinds.size();
  std::vector<std::vector<double>> first(n), second(n), first_cpu(n), second_cpu(n);
  std::vector<std::string> encoding(n);
  double reference = 0;
  bool same = true;
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t k = 0; k < n; ++k) {
      temp_dir dir;
      auto [first_epoch, second_epoch] = make(static_cast<int>(k), dir.path);
      first[k].push_back(first_epoch.seconds);
      second[k].push_back(second_epoch.seconds);
      first_cpu[k].push_back(first_epoch.cpu_seconds);
      second_cpu[k].push_back(second_epoch.cpu_seconds);
      encoding[k] = second_epoch.encoding;
      if (k == 0 && round == 0) reference = second_epoch.checksum;
      if (second_epoch.checksum != reference) same = false;
    }
  }
  std::printf("%s\n", title);
  double base_first = median(first[0]), base_second = median(second[0]);
  double base_first_cpu = median(first_cpu[0]), base_second_cpu = median(second_cpu[0]);
  std::printf(
      "  %-6s epoch 1: %7.3f s wall %7.3f s cpu | epoch 2: %7.3f s wall %7.3f s cpu  (baseline)\n",
      kinds[0], base_first, base_first_cpu, base_second, base_second_cpu);
  for (std::size_t k = 1; k < n; ++k) {
    double f = median(first[k]), s = median(second[k]);
    double fc = median(first_cpu[k]), sc = median(second_cpu[k]);
    std::printf("  %-6s epoch 1: %7.3f s wall %7.3f s cpu | epoch 2: %7.3f s wall %7.3f s cpu\n",
                kinds[k], f, fc, s, sc);
    std::printf(
        "  %-6s epoch 1 (filling) costs %.2fx wall, %.2fx cpu of uncached; epoch 2 speedup: %.2fx "
        "wall, "
        "%.2fx cpu\n",
        kinds[k], f / base_first, fc / base_first_cpu, base_second / s, base_second_cpu / sc);
    if (!encoding[k].empty()) std::printf("  %-6s stored: %s\n", kinds[k], encoding[k].c_str());
  }
  if (!same) std::printf("  ERROR: a cached epoch delivered different values\n");
  return same;
}

// CONVEYOR_BENCH_DISK_PREAD=1 in the environment: the disk tiers read with
// preadv (map_segments = false), to compare the read paths with one binary.
const bool disk_maps_segments = std::getenv("CONVEYOR_BENCH_DISK_PREAD") == nullptr;

// ---- part 1: synthetic bit strings -------------------------------------------

constexpr std::size_t bit_count = 1024;

auto synthetic_pipe(std::uint64_t records,
                    std::shared_ptr<const std::vector<std::string>> strings) {
  auto source = cy::generate<cy::dense<"chars", char>>(
      records, bit_count,
      [strings](std::uint64_t i, std::span<char> row) {
        const auto& text = (*strings)[i % strings->size()];
        std::copy(text.begin(), text.end(), row.begin());
      },
      "bit-strings");
  return std::move(source) | cy::shuffle(42) | cy::batch(256) |
         cy::map("decode-bits",
                 [](cy::record_batch<cy::dense<"chars", char>>&& in, const cy::stage_context& ctx) {
                   cy::record_batch<cy::dense<"x", float>> out(ctx.pool, in.info(), in.indices());
                   auto& x = out.get<"x">();
                   x = cy::dense_column<float>(ctx.pool, in.rows(), bit_count);
                   const auto& chars = in.get<"chars">();
                   for (std::size_t r = 0; r < in.rows(); ++r) {
                     auto text = chars.row(r);
                     cy::decode_bit_string(std::string_view(text.data(), text.size()), x.row(r),
                                           cy::error_location{"bit-strings", in.indices()[r], 0});
                   }
                   return out;
                 });
}

template <class Pipe>
std::pair<epoch_result, epoch_result> two_epochs(Pipe&& pipe) {
  auto first = timed_epoch(pipe, 0);
  auto second = timed_epoch(pipe, 1);
  {
    // Cached pipelines: say how the cache stored the dense columns (bitmaps
    // when every value of a column of a record was exactly 0 or 1).
    try {
      auto stats = cy::cache_stats(pipe);
      const std::uint64_t columns = stats.bitmap_columns + stats.raw_columns;
      char text[160];
      std::snprintf(
          text, sizeof text,
          "%llu of %llu dense columns of the records as bitmaps (%.0f%%), %.0f value "
          "bytes per record written",
          static_cast<unsigned long long>(stats.bitmap_columns),
          static_cast<unsigned long long>(columns),
          columns ? 100.0 * static_cast<double>(stats.bitmap_columns) / static_cast<double>(columns)
                  : 0.0,
          stats.stored
              ? static_cast<double>(stats.tier.bytes_written) / static_cast<double>(stats.stored)
              : 0.0);
      second.encoding = text;
    } catch (const std::out_of_range&) {  // no cache stage: the baseline
    }
  }
  return {first, second};
}

// ---- part 2: DEA ---------------------------------------------------------------

fs::path write_dea_file(const fs::path& original, std::uint64_t rows, const fs::path& directory) {
  std::ifstream in(original);
  std::string header, line;
  std::getline(in, header);
  std::vector<std::string> lines;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  fs::path path = directory / "dea.tsv";
  std::ofstream out(path);
  out << header << '\n';
  for (std::uint64_t r = 0; r < rows; ++r) out << lines[r % lines.size()] << '\n';
  return path;
}

template <class T = float>
auto dea_pipe(const fs::path& path) {
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;
  return cy::tsv_file(path, options) | cy::shuffle(42) | cy::batch(256) |
         cy::decode(cy::bits<T>("bloomfilter", 1024) >> cy::column<"x">,
                    cy::two_grams<T>({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">);
}

// The packed placement: what is cached is the packed filter and the gram
// indices; the float32 rows are made after the cache.
auto dea_packed_front(const fs::path& path) {
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;
  return cy::tsv_file(path, options) | cy::shuffle(42) | cy::batch(256) |
         cy::decode(
             cy::packed_bit_string("bloomfilter", 1024) >> cy::column<"x_packed">,
             cy::two_gram_indices({"GivenName", "Surname", "Birthday"}) >> cy::column<"y_index">);
}
auto dea_expand() {
  return cy::decode(cy::packed_bits<float>(cy::column<"x_packed">, 1024) >> cy::column<"x">,
                    cy::multi_hot<float>(cy::column<"y_index">, 1036) >> cy::column<"y">);
}

#if CONVEYOR_BENCH_HDF5
// ---- part 3: a gzip-compressed HDF5 dataset ------------------------------------

constexpr hsize_t hdf5_chunk_rows = 64;

void write_gzip_dataset(const fs::path& path, std::uint64_t rows) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[2] = {rows, bit_count / 8};
  const hsize_t chunk[2] = {hdf5_chunk_rows, bit_count / 8};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t create = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(create, 2, chunk);
  H5Pset_deflate(create, 4);
  hid_t dataset = H5Dcreate2(file, "/bits", H5T_STD_U8LE, space, H5P_DEFAULT, create, H5P_DEFAULT);
  std::vector<std::uint8_t> values(rows * (bit_count / 8));
  std::mt19937_64 random(11);
  for (auto& value : values) {  // about one bit in eight set, as in the synthetic part
    std::uint8_t byte = 0;
    for (int bit = 0; bit < 8; ++bit)
      byte = static_cast<std::uint8_t>(byte << 1 | ((random() & 7) == 0 ? 1 : 0));
    value = byte;
  }
  H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(dataset);
  H5Pclose(create);
  H5Sclose(space);
  H5Fclose(file);
}

auto hdf5_pipe(const fs::path& path) {
  return cy::hdf5_source<cy::dense<"bits", std::uint8_t>>(path, "/bits", bit_count / 8) |
         cy::shuffle(42) | cy::batch(256) |
         cy::decode(cy::packed_bits<float>(cy::column<"bits">, bit_count) >> cy::column<"x">);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t records = argc > 1 ? std::stoull(argv[1]) : 32768;
  std::uint64_t dea_rows = argc > 2 ? std::stoull(argv[2]) : 100000;
  int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  std::uint64_t hdf5_rows = argc > 4 ? std::stoull(argv[4]) : 32768;
  memory_arena = argc > 5 ? std::stoi(argv[5]) != 0 : true;
  const std::string parts = argc > 6 ? argv[6] : "all";
  const bool packed_only = parts == "packed";
  // dea-memory: only the DEA float32 pipeline, uncached against the memory tier
  // (a short run to profile or A/B the memory fill alone).
  const bool dea_memory_only = parts == "dea-memory";
  const bool dea_only =
      parts == "dea" || dea_memory_only;  // only the DEA float32 and uint8 rows (the codec's A/B)
  std::printf("memory tier entries: %s\n", memory_arena ? "arena" : "operator new");
  bool ok = true;

  auto strings = std::make_shared<std::vector<std::string>>();
  std::mt19937_64 random(7);
  for (int s = 0; s < 97; ++s) {
    std::string text(bit_count, '0');
    for (auto& c : text) c = (random() & 7) == 0 ? '1' : '0';
    strings->push_back(std::move(text));
  }
  const std::uint64_t synthetic_bytes = records * (bit_count * 4 + 200) * 2;
  char title[256];
  std::snprintf(
      title, sizeof title,
      "synthetic: %llu records of 1024 bits -> float32, batch(256), parallel(2), median of %d",
      static_cast<unsigned long long>(records), rounds);
  if (!packed_only && !dea_only)
    ok &= compare(title, rounds, [&](int kind, const fs::path& dir) {
      if (kind == 0) return two_epochs(synthetic_pipe(records, strings) | cy::parallel(2));
      if (kind == 1)
        return two_epochs(synthetic_pipe(records, strings) |
                          cy::cache(memory_cache(synthetic_bytes)) | cy::parallel(2));
      return two_epochs(
          synthetic_pipe(records, strings) |
          cy::cache(std::make_shared<cy::disk_tier>(
              dir / "cache", cy::disk_tier_options{.capacity_bytes = synthetic_bytes,
                                                   .map_segments = disk_maps_segments})) |
          cy::parallel(2));
    });

#if CONVEYOR_BENCH_HDF5
  if (!packed_only && !dea_only) {
    temp_dir hdf5_dir;
    auto hdf5_path = hdf5_dir.path / "bits.h5";
    write_gzip_dataset(hdf5_path, hdf5_rows);
    const std::uint64_t hdf5_bytes = hdf5_rows * (bit_count * 4 + 200) * 2;
    std::snprintf(
        title, sizeof title,
        "HDF5: %llu rows x 128 B packed, chunks of 64 rows, deflate 4 | shuffle | batch(256) | "
        "decode(packed_bits<float>) | [cache] | parallel(2), median of %d",
        static_cast<unsigned long long>(hdf5_rows), rounds);
    ok &= compare(title, rounds, [&](int kind, const fs::path& dir) {
      if (kind == 0) return two_epochs(hdf5_pipe(hdf5_path) | cy::parallel(2));
      if (kind == 1)
        return two_epochs(hdf5_pipe(hdf5_path) | cy::cache(memory_cache(hdf5_bytes)) |
                          cy::parallel(2));
      return two_epochs(
          hdf5_pipe(hdf5_path) |
          cy::cache(std::make_shared<cy::disk_tier>(
              dir / "cache", cy::disk_tier_options{.capacity_bytes = hdf5_bytes,
                                                   .map_segments = disk_maps_segments})) |
          cy::parallel(2));
    });
  }
#else
  std::printf("HDF5: not built with HDF5, skipped\n");
#endif

  fs::path original =
      fs::path(CONVEYOR_SOURCE_DIR) / ".." / "shared" / "data" / "fakename_1k_bf_encoded.tsv";
  if (!fs::exists(original)) {
    std::printf("DEA: %s not found, skipped\n", original.c_str());
    return ok ? 0 : 1;
  }
  temp_dir data_dir;
  auto path = write_dea_file(original, dea_rows, data_dir.path);
  const std::uint64_t dea_bytes = dea_rows * ((1024 + 1036) * 4 + 200) * 2;
  std::snprintf(title, sizeof title,
                "DEA: fakename_1k_bf_encoded.tsv x %llu rows | shuffle | batch(256) | decode(bits, "
                "two_grams) | "
                "[cache] | parallel(2), median of %d",
                static_cast<unsigned long long>(dea_rows), std::max(1, rounds - 1));
  // Kinds 3 and 4 ("bitmaps off") store the same columns raw: the row codec's
  // bitmaps against the 8 KiB values, in the same rounds.
  if (!packed_only)
    ok &= compare(
        title, std::max(1, rounds - 1),
        [&](int kind, const fs::path& dir) {
          const auto options = cache_options_of(kind < 3);
          if (kind == 0) return two_epochs(dea_pipe(path) | cy::parallel(2));
          if (dea_memory_only && kind == 1) {
            // The fresh tier, held here to say how its arena faulted its memory in.
            auto tier = std::make_shared<cy::memory_tier<>>(memory_cache(dea_bytes));
            auto result = two_epochs(dea_pipe(path) | cy::cache(tier, options) | cy::parallel(2));
            const auto arena = tier->arena_stats();
            result.second.encoding += "; arena " + std::to_string(arena.mapped_bytes >> 20) +
                                      " MiB mapped, huge pages " +
                                      (arena.huge_pages_declined      ? "declined after slow faults"
                                       : arena.huge_page_regions != 0 ? "asked for, not declined"
                                                                      : "not asked for");
            return result;
          }
          if (dea_memory_only && kind == 2) {
            // 306 bytes: the DEA float32 value with both columns as bitmaps.
            auto tier = touched_memory_cache(dea_bytes, dea_rows, 306);
            auto result = two_epochs(dea_pipe(path) | cy::cache(tier, options) | cy::parallel(2));
            const auto arena = tier->arena_stats();
            result.second.encoding +=
                "; " + std::to_string(arena.reused_blocks) + " blocks from the touched memory, " +
                std::to_string(arena.carved_bytes >> 20) + " MiB carved (bytes written count the " +
                std::to_string(dea_rows) + " values put before the fill)";
            return result;
          }
          if (kind == 1 || kind == 3)
            return two_epochs(dea_pipe(path) | cy::cache(memory_cache(dea_bytes), options) |
                              cy::parallel(2));
          return two_epochs(
              dea_pipe(path) |
              cy::cache(
                  std::make_shared<cy::disk_tier>(
                      dir / "cache", cy::disk_tier_options{.capacity_bytes = dea_bytes,
                                                           .map_segments = disk_maps_segments}),
                  options) |
              cy::parallel(2));
        },
        dea_memory_only ? tier_kinds_memory : tier_kinds_ab);
  // The same with uint8 columns: a quarter of the bytes to cache and move.
  std::snprintf(title, sizeof title,
                "DEA as above with bits<uint8_t> and two_grams<uint8_t> (2 KiB per record)");
  if (!packed_only && !dea_memory_only)
    ok &= compare(
        title, std::max(1, rounds - 1),
        [&](int kind, const fs::path& dir) {
          const auto options = cache_options_of(kind < 3);
          if (kind == 0) return two_epochs(dea_pipe<std::uint8_t>(path) | cy::parallel(2));
          if (kind == 1 || kind == 3)
            return two_epochs(dea_pipe<std::uint8_t>(path) |
                              cy::cache(memory_cache(dea_bytes / 4), options) | cy::parallel(2));
          return two_epochs(
              dea_pipe<std::uint8_t>(path) |
              cy::cache(
                  std::make_shared<cy::disk_tier>(
                      dir / "cache", cy::disk_tier_options{.capacity_bytes = dea_bytes / 4,
                                                           .map_segments = disk_maps_segments}),
                  options) |
              cy::parallel(2));
        },
        tier_kinds_ab);
  // The packed placement: the cache keeps 384 bytes per record, expanded after it.
  std::snprintf(title, sizeof title,
                "DEA packed placement: decode(packed_bit_string, two_gram_indices) | [cache] | "
                "decode(packed_bits, "
                "multi_hot) | parallel(2); baseline: the float32 pipeline without cache");
  if (!dea_only)
    ok &= compare(title, std::max(1, rounds - 1), [&](int kind, const fs::path& dir) {
      if (kind == 0) return two_epochs(dea_pipe(path) | cy::parallel(2));
      if (kind == 1)
        return two_epochs(dea_packed_front(path) | cy::cache(memory_cache(dea_rows * 1024)) |
                          dea_expand() | cy::parallel(2));
      if (kind == 3) return two_epochs(dea_packed_front(path) | dea_expand() | cy::parallel(2));
      return two_epochs(
          dea_packed_front(path) |
          cy::cache(std::make_shared<cy::disk_tier>(
              dir / "cache", cy::disk_tier_options{.capacity_bytes = dea_rows * 1024,
                                                   .map_segments = disk_maps_segments})) |
          dea_expand() | cy::parallel(2));
    }, tier_kinds_packed);
  return ok ? 0 : 1;
}
