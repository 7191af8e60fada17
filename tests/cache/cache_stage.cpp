// Tests of conveyor/cache/cache_stage.hpp: same batches with and without the
// cache, later epochs served from the tier, keys separated by dataset and
// chain, damaged values recomputed, failing tiers never failing the pipeline.
#include "conveyor/cache/cache_stage.hpp"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

#include "cache_stage_support.hpp"
#include "conveyor/cache/detail/disk_segment_format.hpp"
#include "conveyor/cache/detail/row_codec.hpp"
#include "conveyor/cache/disk_tier.hpp"
#include "conveyor/cache/memory_tier.hpp"
#include "conveyor/cache/tiered.hpp"
#include "support/temp_dir.hpp"

using namespace cache_test;

// A column kind the cache cannot store (like the TSV source's text records).
struct text_like {
  static constexpr cy::fixed_string name{"t"};
  using storage = std::string;
};

namespace {

constexpr std::uint64_t record_count = 700;

auto base_pipe(call_counter calls, std::uint64_t bad_every = 0) {
  return counted_source(record_count, std::move(calls), bad_every) | cy::shuffle(7) |
         cy::batch(16) | cy::map("expand", expand);
}

std::vector<std::vector<batch_snapshot>> reference_epochs(std::uint64_t bad_every = 0,
                                                          int epochs = 3) {
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls, bad_every) |
              cy::on_errors(bad_every ? cy::on_error::skip : cy::on_error::fail) | cy::parallel(2);
  std::vector<std::vector<batch_snapshot>> out;
  for (int e = 0; e < epochs; ++e) out.push_back(run_epoch(pipe, static_cast<std::uint64_t>(e)));
  return out;
}

// Three epochs through cache(tier) | parallel(2) equal the uncached run, and
// epochs 1 and 2 never call the source (also under write-back: a record
// evicted from the memory tier is in the disk tier before any lookup can miss
// it, see docs/cache-memory.md).
template <class Tier>
void check_same_as_uncached(std::shared_ptr<Tier> tier) {
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  CHECK(run_epoch(pipe, 0) == expected[0]);
  CHECK(calls->load() == record_count);
  CHECK(cy::cache_stats(pipe).misses == record_count);
  CHECK(cy::cache_stats(pipe).stored == record_count);
  CHECK(run_epoch(pipe, 1) == expected[1]);
  CHECK(run_epoch(pipe, 2) == expected[2]);
  auto stats = cy::cache_stats(pipe);
  CHECK(calls->load() == record_count);  // epochs 1 and 2: no source read at all
  CHECK(stats.hits == 2 * record_count);
  CHECK(stats.invalid == 0);
  CHECK(stats.tier_errors == 0);
}

cy::memory_tier_options small_memory_options() {
  cy::memory_tier_options options;
  options.capacity_bytes = 48 << 10;
  options.shard_count = 2;
  return options;
}

}  // namespace

TEST_CASE("cache_stage: the cached pipeline has the uncached pipeline's type and batch type") {
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(cy::memory_tier<>(1 << 20)) | cy::parallel(2);
  static_assert(std::is_same_v<decltype(pipe)::batch_type, row_batch>);
  auto both_forms = cy::cache(base_pipe(calls), std::make_shared<cy::memory_tier<>>(1 << 20));
  static_assert(std::is_same_v<decltype(both_forms)::batch_type, row_batch>);
  static_assert(cy::detail::cacheable_batch_v<row_batch>);
  static_assert(!cy::detail::cacheable_batch_v<cy::record_batch<cy::dense<"x", float>, text_like>>);
}

TEST_CASE(
    "cache_stage: memory_tier gives the uncached batches over 3 epochs, epochs 2-3 from the "
    "cache") {
  check_same_as_uncached(std::make_shared<cy::memory_tier<>>(64 << 20));
}

TEST_CASE(
    "cache_stage: disk_tier gives the uncached batches, and a new process (tier) reuses them") {
  cy::test::temp_dir dir("cache-stage");
  check_same_as_uncached(std::make_shared<cy::disk_tier>(dir.path() / "cache"));
  // A second pipeline on a reopened directory: all hits from the start.
  auto expected = reference_epochs(0, 1);
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(std::make_shared<cy::disk_tier>(dir.path() / "cache")) |
              cy::parallel(2);
  CHECK(run_epoch(pipe, 0) == expected[0]);
  CHECK(calls->load() == 0);
}

TEST_CASE(
    "cache_stage: tiered<memory, disk> write-through and write-back give the uncached batches") {
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back}) {
    cy::test::temp_dir dir("cache-stage");
    cy::disk_tier disk(dir.path() / "cache");
    // A small memory tier, so the disk tier serves part of the later epochs.
    auto stack = std::make_shared<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>(
        policy, cy::memory_tier<>(small_memory_options()), disk);
    check_same_as_uncached(stack);
    CHECK(disk.stats().hits > 0);
  }
}

TEST_CASE("cache_stage: the stats table shows the cache row, and cache_stats its counts") {
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(cy::memory_tier<>(64 << 20), {.name = "decoded-cache"}) |
              cy::parallel(2);
  (void)run_epoch(pipe, 0);
  (void)run_epoch(pipe, 1);
  auto stats = pipe.stats();
  const cy::stage_stats* row = nullptr;
  for (const auto& s : stats.stages)
    if (s.name == "decoded-cache") row = &s;
  REQUIRE(row != nullptr);
  CHECK(row->rows == 2 * record_count);
  CHECK(row->batches == 2 * ((record_count + 15) / 16));
  CHECK(row->busy.count() > 0);
  std::ostringstream table;
  table << stats;
  CHECK(table.str().find("decoded-cache") != std::string::npos);
  auto counts = cy::cache_stats(pipe);
  CHECK(counts.hits == record_count);
  CHECK(counts.misses == record_count);
  CHECK(counts.upstream_calls == (record_count + 15) / 16);
  CHECK(counts.hit_ratio() == doctest::Approx(0.5));
  CHECK(counts.tier.puts == record_count);
  std::ostringstream line;
  line << counts;
  CHECK(line.str().find("hits 700") != std::string::npos);
  CHECK_THROWS_AS((void)cy::cache_stats(pipe, 1), std::out_of_range);
}

TEST_CASE("cache_stage: another dataset or another chain never hits the same tier's entries") {
  auto tier = std::make_shared<cy::memory_tier<>>(64 << 20);
  auto calls_a = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto calls_b = std::make_shared<std::atomic<std::uint64_t>>(0);
  // Same size and width, different name and values: a different dataset.
  auto a = counted_source(record_count, calls_a, 0, "set-a") | cy::batch(32) |
           cy::map("expand", expand) | cy::cache(tier);
  auto b = counted_source(record_count, calls_b, 0, "set-b", 2.0f) | cy::batch(32) |
           cy::map("expand", expand) | cy::cache(tier);
  (void)run_epoch(a, 0);
  auto b_first = run_epoch(b, 0);
  CHECK(cy::cache_stats(b).hits == 0);
  CHECK(calls_b->load() == record_count);
  for (const auto& batch : b_first)
    for (std::size_t r = 0; r < batch.indices.size(); ++r)
      CHECK(batch.x[r * 3] == static_cast<float>(batch.indices[r]) * 2.0f * 1.5f);
  // Same source, a differently named map stage: a different chain.
  auto calls_c = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto c = counted_source(record_count, calls_c, 0, "set-a") | cy::batch(32) |
           cy::map("expand-v2", expand) | cy::cache(tier);
  (void)run_epoch(c, 0);
  CHECK(cy::cache_stats(c).hits == 0);
  // ... while the identical chain does hit.
  auto calls_d = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto d = counted_source(record_count, calls_d, 0, "set-a") | cy::batch(32) |
           cy::map("expand", expand) | cy::cache(tier);
  (void)run_epoch(d, 0);
  CHECK(cy::cache_stats(d).hits == record_count);
  CHECK(calls_d->load() == 0);
}

TEST_CASE("cache_stage: damaged values are detected, counted, recomputed and overwritten") {
  auto memory = std::make_shared<cy::memory_tier<>>(64 << 20);
  auto tier = std::make_shared<instrumented_tier<cy::memory_tier<>>>(memory);
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  CHECK(run_epoch(pipe, 0) == expected[0]);
  auto keys = tier->stored_keys();
  REQUIRE(keys.size() == record_count);
  // Damage 6 entries in 6 ways, directly through the tier.
  cy::byte_buffer value;
  REQUIRE(memory->get(keys[0], value));
  std::vector<cy::byte_buffer> damaged(6, value);
  damaged[0] = cy::byte_buffer(40, std::byte{0x5a});                  // garbage
  damaged[1].resize(damaged[1].size() - 1);                           // truncated
  damaged[2].back() ^= std::byte{0x01};                               // payload bit flip
  damaged[3][9] ^= std::byte{0x80};                                   // type tag
  damaged[4][cy::detail::row_fixed_header_bytes] ^= std::byte{0x01};  // a width
  damaged[5] = cy::byte_buffer{};                                     // empty
  for (std::size_t k = 0; k < damaged.size(); ++k) REQUIRE(memory->put(keys[k * 50], damaged[k]));
  CHECK(run_epoch(pipe, 1) == expected[1]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.invalid == damaged.size());
  CHECK(stats.hits == record_count - damaged.size());
  CHECK(calls->load() == record_count + damaged.size());
  // Overwritten with good values: the next epoch is all hits again.
  CHECK(run_epoch(pipe, 2) == expected[2]);
  CHECK(cy::cache_stats(pipe).invalid == damaged.size());
  CHECK(calls->load() == record_count + damaged.size());
}

TEST_CASE("cache_stage: records dropped under skip are absent and never stored") {
  constexpr std::uint64_t bad_every = 10;
  auto expected = reference_epochs(bad_every);
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls, bad_every) | cy::cache(cy::memory_tier<>(64 << 20)) |
              cy::parallel(2) | cy::on_errors(cy::on_error::skip);
  const std::uint64_t bad = record_count / bad_every;
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_epoch(pipe, e) == expected[e]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.stored == record_count - bad);
  CHECK(stats.hits == 2 * (record_count - bad));
  CHECK(calls->load() == record_count + 2 * bad);  // only the bad records are asked for again
  CHECK(pipe.stats().stages[0].skipped == 3 * bad);
}

TEST_CASE("cache_stage: a tier that throws is counted and served as misses") {
  auto memory = std::make_shared<cy::memory_tier<>>(64 << 20);
  auto tier = std::make_shared<instrumented_tier<cy::memory_tier<>>>(memory);
  tier->throw_every(3);
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_epoch(pipe, e) == expected[e]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.tier_errors == tier->thrown());
  CHECK(stats.tier_errors > 0);
  CHECK(stats.hits > 0);
}

TEST_CASE(
    "cache_stage: a tier failing halfway through a batch's lookup or store never yields a wrong "
    "row") {
  static_assert(cy::visiting_tier<failing_in_place_tier> &&
                cy::in_place_put_tier<failing_in_place_tier> &&
                cy::in_process_tier<failing_in_place_tier>);
  auto tier = std::make_shared<failing_in_place_tier>(64 << 20);
  auto expected = reference_epochs(0, 4);
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  CHECK(run_epoch(pipe, 0) == expected[0]);  // fills the tier
  tier->fail_every(3);                       // every third lookup or store now throws halfway
  for (std::uint64_t e = 1; e < 4; ++e) CHECK(run_epoch(pipe, e) == expected[e]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.tier_errors == tier->thrown());
  CHECK(stats.tier_errors > 0);
  CHECK(stats.hits > 0);
  CHECK(stats.invalid == 0);
  // The memory tier under it released its locks: it still answers and stores.
  cy::byte_buffer value;
  CHECK(tier->inner().put(cy::cache_key{1, 2, 3}, std::span<const std::byte>(value)));
  CHECK(tier->inner().get(cy::cache_key{1, 2, 3}, value));
  CHECK(tier->inner().size_bytes() <= tier->inner().capacity_bytes());
}

TEST_CASE("cache_stage: a memory tier's values are checked for type tag and lengths on every hit") {
  // In-process values skip the CRC32C (tier.hpp, in_process_tier); the header
  // is still checked, so another chain's or a truncated value is a miss.
  auto tier = std::make_shared<failing_in_place_tier>(64 << 20);  // never fails: records the keys
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  CHECK(run_epoch(pipe, 0) == expected[0]);
  auto keys = tier->stored_keys();
  REQUIRE(keys.size() == record_count);
  auto& memory = tier->inner();
  cy::byte_buffer value;
  REQUIRE(memory.get(keys[0], value));
  std::vector<cy::byte_buffer> damaged(5, value);
  damaged[0] = cy::byte_buffer(40, std::byte{0x5a});                  // garbage
  damaged[1].resize(damaged[1].size() - 1);                           // truncated
  damaged[2][9] ^= std::byte{0x80};                                   // type tag
  damaged[3][cy::detail::row_fixed_header_bytes] ^= std::byte{0x01};  // a width
  damaged[4] = cy::byte_buffer{};                                     // empty
  for (std::size_t k = 0; k < damaged.size(); ++k) REQUIRE(memory.put(keys[k * 50], damaged[k]));
  CHECK(run_epoch(pipe, 1) == expected[1]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.invalid == damaged.size());
  CHECK(stats.hits == record_count - damaged.size());
  CHECK(calls->load() == record_count + damaged.size());
}

TEST_CASE("cache_stage: a disk tier that cannot open its directory: all misses, correct output") {
  cy::test::temp_dir dir("cache-stage");
  auto disk = std::make_shared<cy::disk_tier>(dir.file("not-a-directory", "x") / "cache");
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(disk) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_epoch(pipe, e) == expected[e]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.hits == 0);
  CHECK(stats.not_stored == 3 * record_count);
  CHECK(stats.tier.failures > 0);
  CHECK(calls->load() == 3 * record_count);
}

TEST_CASE(
    "cache_stage: a disk tier whose disk fills up (RLIMIT_FSIZE, in a child) keeps the output "
    "correct") {
  auto expected = reference_epochs();
  cy::test::temp_dir dir("cache-stage");
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 0;
    try {
      auto disk = std::make_shared<cy::disk_tier>(
          dir.path() / "cache",
          cy::disk_tier_options{.capacity_bytes = 1 << 20, .segment_bytes = 256 << 10});
      auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
      auto pipe = base_pipe(calls) | cy::cache(disk) | cy::parallel(2);
      if (run_epoch(pipe, 0) != expected[0]) code = 2;
      // The disk becomes full now: segments may not grow past 16 KiB.
      rlimit limit{16 << 10, 16 << 10};
      ::setrlimit(RLIMIT_FSIZE, &limit);
      for (std::uint64_t e = 1; e < 3; ++e)
        if (run_epoch(pipe, e) != expected[e]) code = 3;
      // Fresh directory, full from the start: a new tier in a sibling directory.
      auto full = std::make_shared<cy::disk_tier>(dir.path() / "full");
      auto pipe2 = base_pipe(calls) | cy::cache(full) | cy::parallel(2);
      for (std::uint64_t e = 0; e < 3; ++e)
        if (run_epoch(pipe2, e) != expected[e]) code = 4;
      full->flush();  // a write-behind tier counts its failed writes on its own thread
      auto stats = cy::cache_stats(pipe2);
      if (stats.tier.failures == 0) code = 5;
      if (stats.hits == 0) code = 6;  // what fit in 16 KiB is served
    } catch (...) {
      code = 7;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE(
    "cache_stage: keys are per record, so another batching or order reuses them in mixed batches") {
  // Warm half the records with another shuffle and batch size (plan stages
  // are not part of the chain), leaving the epoch early; then every batch of
  // the standard pipeline mixes hits and misses.
  auto tier = std::make_shared<cy::memory_tier<>>(64 << 20);
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto warm = counted_source(record_count, calls) | cy::shuffle(3) | cy::batch(10) |
              cy::map("expand", expand) | cy::cache(tier);
  std::size_t batches = 0;
  for (auto& b : warm.epoch(0)) {
    (void)b;
    if (++batches == 35) break;
  }
  CHECK(calls->load() == 350);
  auto expected = reference_epochs();
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  CHECK(run_epoch(pipe, 1) == expected[1]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.hits == 350);
  CHECK(stats.misses == 350);
  CHECK(calls->load() == 700);
}

TEST_CASE(
    "cache_stage: stored rows whose width disagrees with upstream's are recomputed, never mixed "
    "in") {
  // A map stage whose output width changes without a rename (the chain
  // fingerprint cannot see it): half the records are stored with width 2, then
  // the width becomes 3. Mixed batches must come out entirely at width 3. (An
  // all-hit batch would be served at width 2: the documented reason to rename a
  // changed map stage. Order is a pure function of the seeds: with these, every
  // batch of epoch 1 mixes hits and misses or has no hit at all.)
  auto width = std::make_shared<std::atomic<std::size_t>>(2);
  auto widen = [width](source_batch&& in, const cy::stage_context& ctx) {
    cy::record_batch<cy::dense<"w", float>> out(ctx.pool, in.info(), in.indices());
    auto& w = out.get<"w">();
    w = cy::dense_column<float>(ctx.pool, in.rows(), width->load());
    for (std::size_t r = 0; r < in.rows(); ++r)
      for (std::size_t c = 0; c < w.width(); ++c)
        w(r, c) = in.get<"v">()(r, 0) + static_cast<float>(c);
    return out;
  };
  auto tier = std::make_shared<cy::memory_tier<>>(64 << 20);
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = counted_source(record_count, calls) | cy::shuffle(5) | cy::batch(10) |
              cy::map("widen", widen) | cy::cache(tier) | cy::parallel(2);
  std::size_t batches = 0;
  for (auto& b : pipe.epoch(0)) {
    CHECK(b.get<"w">().width() == 2);
    if (++batches == 35) break;
  }
  width->store(3);
  auto hits_before = cy::cache_stats(pipe).hits;
  std::uint64_t rows = 0;
  for (auto& b : pipe.epoch(1)) {
    const auto& w = b.get<"w">();
    REQUIRE(w.width() == 3);
    for (std::size_t r = 0; r < b.rows(); ++r)
      for (std::size_t c = 0; c < 3; ++c)
        CHECK(w(r, c) == static_cast<float>(b.indices()[r]) + static_cast<float>(c));
    rows += b.rows();
  }
  CHECK(rows == record_count);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.invalid > 0);
  CHECK(stats.hits == hits_before);  // every stale hit was refused
}

TEST_CASE(
    "cache_stage: an upstream error reaches the consumer as without the cache, naming the record") {
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls, 10) | cy::cache(cy::memory_tier<>(64 << 20)) | cy::parallel(2);
  std::string message;
  try {
    for (auto& b : pipe.epoch(0)) (void)b;
  } catch (const cy::stage_error& error) {
    message = error.what();
  }
  CHECK(message.find("bad record") != std::string::npos);
  CHECK(message.find("generate") != std::string::npos);
}

namespace {

// A disk tier seen through, counting flush() calls and what each found: the
// thread it ran on and the bytes still queued once the disk tier had flushed.
class flush_watching_tier {
 public:
  explicit flush_watching_tier(std::shared_ptr<cy::disk_tier> inner) : inner_(std::move(inner)) {}

  bool get(const cy::cache_key& key, cy::byte_buffer& out) { return inner_->get(key, out); }
  bool put(const cy::cache_key& key, std::span<const std::byte> value) {
    return inner_->put(key, value);
  }
  bool erase(const cy::cache_key& key) { return inner_->erase(key); }
  bool contains(const cy::cache_key& key) { return inner_->contains(key); }
  std::size_t get_many(std::span<const cy::cache_key> keys, std::span<cy::byte_buffer> values,
                       std::span<std::uint8_t> found) {
    return inner_->get_many(keys, values, found);
  }
  std::size_t put_many(std::span<const cy::cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    return inner_->put_many(keys, values);
  }
  [[nodiscard]] std::uint64_t size_bytes() const { return inner_->size_bytes(); }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return inner_->capacity_bytes(); }
  [[nodiscard]] cy::tier_stats stats() const { return inner_->stats(); }
  [[nodiscard]] std::string_view name() const { return "flush_watching"; }

  void flush() {
    inner_->flush();
    std::lock_guard lock(mutex_);
    ++flushes_;
    queued_after_flush_ = inner_->queued_bytes();
    flush_thread_ = std::this_thread::get_id();
  }
  int flushes() {
    std::lock_guard lock(mutex_);
    return flushes_;
  }
  std::uint64_t queued_after_flush() {
    std::lock_guard lock(mutex_);
    return queued_after_flush_;
  }
  std::thread::id flush_thread() {
    std::lock_guard lock(mutex_);
    return flush_thread_;
  }

 private:
  std::shared_ptr<cy::disk_tier> inner_;
  std::mutex mutex_;
  int flushes_ = 0;
  std::uint64_t queued_after_flush_ = ~std::uint64_t{0};
  std::thread::id flush_thread_;
};

// Write-behind large enough that no put ever waits for the writer.
cy::disk_tier_options roomy_write_behind() {
  return cy::disk_tier_options{.write_behind_bytes = std::uint64_t{1} << 30};
}

}  // namespace

namespace {

// The segment files of a disk tier's directory, oldest first.
std::vector<std::filesystem::path> disk_segments(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".cvs") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Where one value record of a segment file lies.
struct disk_record {
  cy::cache_key key;
  std::uint64_t value_offset = 0;  // of its value's first byte in the file
  std::uint64_t value_length = 0;
};

std::uint64_t load_u64(const std::vector<char>& bytes, std::uint64_t at) {
  std::uint64_t v = 0;
  for (int b = 7; b >= 0; --b)
    v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(at) + b]);
  return v;
}

// Walks a segment file's records (layout: cache/detail/disk_segment_format.hpp).
std::vector<disk_record> disk_records(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  namespace f = cy::detail::disk_format;
  std::vector<disk_record> out;
  std::uint64_t at = f::segment_header_size;
  while (at + f::record_header_size <= bytes.size()) {
    const std::uint64_t length = load_u64(bytes, at + 40);
    if (static_cast<unsigned char>(bytes[at + 6]) == 1)  // a value, not a tombstone
      out.push_back({cy::cache_key{load_u64(bytes, at + 8), load_u64(bytes, at + 16),
                                   load_u64(bytes, at + 24)},
                     at + f::record_header_size, length});
    at += f::record_header_size + length;
  }
  return out;
}

void xor_byte(const std::filesystem::path& file, std::uint64_t offset, unsigned char mask) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  stream.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  stream.read(&byte, 1);
  byte = static_cast<char>(byte ^ static_cast<char>(mask));
  stream.seekp(static_cast<std::streamoff>(offset));
  stream.write(&byte, 1);
}

}  // namespace

// The disk tier checks each record's CRC32C on its own copy (`verifying_tier`),
// so the stage does not verify the row's CRC32C again on a disk hit; a record
// damaged on disk must still never become a row.
TEST_CASE(
    "cache_stage: a disk tier's record damaged on disk after open is a counted miss, never a "
    "wrong row, with the stage trusting the tier's check") {
  for (bool map_segments : {true, false}) {
    CAPTURE(map_segments);
    cy::test::temp_dir dir("cache-stage");
    // Writes inside put: the segment holds every record once epoch 0 ends.
    auto disk = std::make_shared<cy::disk_tier>(
        dir.path() / "cache",
        cy::disk_tier_options{.write_behind_bytes = 0, .map_segments = map_segments});
    auto expected = reference_epochs();
    auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
    auto pipe = base_pipe(calls) | cy::cache(disk) | cy::parallel(2);
    CHECK(run_epoch(pipe, 0) == expected[0]);
    REQUIRE(calls->load() == record_count);
    auto files = disk_segments(dir.path() / "cache");
    REQUIRE(files.size() == 1);
    auto records = disk_records(files[0]);
    REQUIRE(records.size() == record_count);

    // The stage trusts a disk hit's row past its header: a row marked "no
    // CRC32C computed" (which a verifying read refuses) is served as a hit.
    cy::byte_buffer value;
    REQUIRE(disk->get(records[10].key, value));
    REQUIRE(value.size() > cy::detail::row_fixed_header_bytes);
    for (std::size_t b = 16; b < 20; ++b) value[b] = std::byte{0};  // the row's CRC32C
    value[20] |= std::byte{cy::detail::row_flag_no_checksum};       // flags: not computed
    REQUIRE(disk->put(records[10].key, value));
    // Damage 6 records' payload bytes (past the row header: a row that trusts
    // its tier would accept them) after the tier opened: the tier's own check
    // catches them on the hit path (mapping or preadv).
    std::vector<cy::cache_key> damaged_records;
    for (std::size_t k = 0; k < 6; ++k) {
      const auto& r = records[100 * k + 7];
      REQUIRE(r.value_length > cy::detail::row_fixed_header_bytes + 16);
      xor_byte(files[0], r.value_offset + r.value_length - 1 - k, 0x10);
      damaged_records.push_back(r.key);
    }
    const auto failures_before = disk->stats().failures;
    CHECK(run_epoch(pipe, 1) == expected[1]);
    auto stats = cy::cache_stats(pipe);
    CHECK(disk->stats().failures - failures_before == damaged_records.size());
    CHECK(stats.invalid == 0);  // refused by the tier, not by the row check; the marked row taken
    CHECK(stats.hits == record_count - damaged_records.size());
    CHECK(stats.misses == record_count + damaged_records.size());
    CHECK(calls->load() == record_count + damaged_records.size());
    // Recomputed and stored again: the next epoch is all hits.
    CHECK(run_epoch(pipe, 2) == expected[2]);
    CHECK(calls->load() == record_count + damaged_records.size());
  }
}

static_assert(cy::verifying_tier<cy::disk_tier>);
static_assert(cy::verifying_tier<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>);
static_assert(cy::verifying_tier<cy::tiered<cy::memory_tier<>, cy::memory_tier<>>>);
static_assert(!cy::verifying_tier<cy::memory_tier<>>);  // in-process: trusted for that reason
// A wrapper promises nothing it does not declare, and one such tier in a
// stack makes the stack verify rows again.
static_assert(!cy::verifying_tier<instrumented_tier<cy::disk_tier>>);
static_assert(!cy::verifying_tier<cy::tiered<cy::memory_tier<>, instrumented_tier<cy::disk_tier>>>);
static_assert(cy::flushable_tier<cy::disk_tier>);
static_assert(cy::flushable_tier<flush_watching_tier>);
static_assert(!cy::flushable_tier<cy::memory_tier<>>);
static_assert(cy::flushable_tier<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>);
static_assert(!cy::flushable_tier<cy::tiered<cy::memory_tier<>, cy::memory_tier<>>>);
static_assert(cy::detail::ends_epochs<cy::detail::cache_stage<cy::disk_tier>>);
static_assert(!cy::detail::ends_epochs<cy::detail::cache_stage<cy::memory_tier<>>>);

TEST_CASE(
    "cache_stage: a complete epoch flushes the write-behind disk tier when the loop ends, on the "
    "consumer's thread") {
  cy::test::temp_dir dir("cache-stage");
  auto disk = std::make_shared<cy::disk_tier>(dir.path() / "cache", roomy_write_behind());
  auto tier = std::make_shared<flush_watching_tier>(disk);
  auto expected = reference_epochs(0, 2);
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 2; ++e) {
    std::vector<batch_snapshot> seen;
    auto run = pipe.epoch(e);
    for (auto& b : run) {
      seen.push_back(snapshot_of(b));
      CHECK(tier->flushes() == static_cast<int>(e));  // not while batches remain
    }
    CHECK(seen == expected[e]);
    CHECK(tier->flushes() == static_cast<int>(e) + 1);  // before the run is destroyed
    CHECK(tier->flush_thread() == std::this_thread::get_id());
    CHECK(tier->queued_after_flush() == 0);
    CHECK(disk->queued_bytes() == 0);
    CHECK(disk->size_bytes() > 0);
  }
  CHECK(calls->load() == record_count);
}

TEST_CASE("cache_stage: tiered<memory, disk> forwards the end-of-epoch flush to its disk tier") {
  cy::test::temp_dir dir("cache-stage");
  auto watching = flush_watching_tier(
      std::make_shared<cy::disk_tier>(dir.path() / "cache", roomy_write_behind()));
  for (auto policy : {cy::write_policy::write_through, cy::write_policy::write_back}) {
    int before = watching.flushes();
    auto stack = std::make_shared<cy::tiered<cy::memory_tier<>, flush_watching_tier&>>(
        policy, cy::memory_tier<>(small_memory_options()), watching);
    auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
    auto pipe = base_pipe(calls) | cy::cache(stack) | cy::parallel(2);
    for (auto& b : pipe.epoch(0)) (void)b;
    CHECK(watching.flushes() == before + 1);
    CHECK(watching.queued_after_flush() == 0);
  }
}

TEST_CASE(
    "cache_stage: an epoch left by break does not flush; the disk tier's destructor writes its "
    "values") {
  cy::test::temp_dir dir("cache-stage");
  std::uint64_t first_batch_rows = 0;
  {
    auto disk = std::make_shared<cy::disk_tier>(dir.path() / "cache", roomy_write_behind());
    auto tier = std::make_shared<flush_watching_tier>(disk);
    auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
    auto pipe = base_pipe(calls) | cy::cache(tier);  // sequential: only batch 0 is produced
    for (auto& b : pipe.epoch(0)) {
      first_batch_rows = b.rows();
      break;
    }
    CHECK(tier->flushes() == 0);
    CHECK(calls->load() == first_batch_rows);
    CHECK(cy::cache_stats(pipe).stored == first_batch_rows);
  }  // the pipeline, then the disk tier go: its destructor writes the queue
  REQUIRE(first_batch_rows == 16);
  auto reopened = std::make_shared<cy::disk_tier>(dir.path() / "cache");
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(reopened);
  for (auto& b : pipe.epoch(0)) (void)b;
  CHECK(cy::cache_stats(pipe).hits == first_batch_rows);
  CHECK(calls->load() == record_count - first_batch_rows);
}

// ---- bitmap columns ----------------------------------------------------------

namespace {

auto binary_pipe(call_counter calls) {
  return counted_source(record_count, std::move(calls)) | cy::shuffle(7) | cy::batch(16) |
         cy::map("expand-binary", expand_binary);
}

std::vector<std::vector<binary_snapshot>> binary_reference(int epochs = 3) {
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = binary_pipe(calls) | cy::parallel(2);
  std::vector<std::vector<binary_snapshot>> out;
  for (int e = 0; e < epochs; ++e)
    out.push_back(run_binary_epoch(pipe, static_cast<std::uint64_t>(e)));
  return out;
}

// Of the 4 dense columns of each of the 700 records (support header): x is
// binary but in every 7th record, u always, h but in every 5th, y never.
constexpr std::uint64_t binary_bitmaps = (700 - 100) + 700 + (700 - 140);
constexpr std::uint64_t binary_raws = 100 + 140 + 700;

// Three epochs through cache(tier, pack) | parallel(2) are bit-identical to
// the uncached run, epochs 1 and 2 all hits; returns the tier's bytes.
template <class Tier>
void check_binary_same_as_uncached(std::shared_ptr<Tier> tier, bool pack) {
  CAPTURE(pack);
  static const auto expected = binary_reference();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  cy::cache_options options;
  options.pack_binary_columns = pack;
  auto pipe = binary_pipe(calls) | cy::cache(tier, options) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_binary_epoch(pipe, e) == expected[e]);
  auto stats = cy::cache_stats(pipe);
  CHECK(calls->load() == record_count);
  CHECK(stats.hits == 2 * record_count);
  CHECK(stats.invalid == 0);
  CHECK(stats.tier_errors == 0);
  CHECK(stats.bitmap_columns == (pack ? binary_bitmaps : 0));
  CHECK(stats.raw_columns == (pack ? binary_raws : binary_raws + binary_bitmaps));
}

}  // namespace

TEST_CASE(
    "cache_stage: binary columns are stored as bitmaps in every tier and come back bit-exact") {
  SUBCASE("memory tier (trusted past the header)") {
    auto packed = std::make_shared<cy::memory_tier<>>(64 << 20);
    check_binary_same_as_uncached(packed, true);
    auto raw = std::make_shared<cy::memory_tier<>>(64 << 20);
    check_binary_same_as_uncached(raw, false);
    // About 4.2 KiB of x per record raw; 129 bytes as a bitmap.
    CHECK(packed->size_bytes() * 4 < raw->size_bytes());
  }
  SUBCASE("a tier whose values are CRC-checked by the stage") {
    auto memory = std::make_shared<cy::memory_tier<>>(64 << 20);
    static_assert(!cy::in_process_tier<instrumented_tier<cy::memory_tier<>>> &&
                  !cy::verifying_tier<instrumented_tier<cy::memory_tier<>>>);
    check_binary_same_as_uncached(std::make_shared<instrumented_tier<cy::memory_tier<>>>(memory),
                                  true);
  }
  SUBCASE("disk tier, and tiered<memory, disk> write-back") {
    cy::test::temp_dir dir("cache-stage");
    check_binary_same_as_uncached(std::make_shared<cy::disk_tier>(dir.path() / "cache"), true);
    cy::disk_tier disk(dir.path() / "stack");
    auto stack = std::make_shared<cy::tiered<cy::memory_tier<>, cy::disk_tier&>>(
        cy::write_policy::write_back, cy::memory_tier<>(small_memory_options()), disk);
    check_binary_same_as_uncached(stack, true);
    CHECK(disk.stats().hits > 0);
  }
}

TEST_CASE("cache_stage: values written with bitmaps are read by a stage that packs nothing") {
  // The setting changes what a stage writes, never what it reads: a tier
  // filled by one is all hits for the other, both ways.
  auto expected = binary_reference(2);
  for (bool first_packs : {true, false}) {
    CAPTURE(first_packs);
    auto tier = std::make_shared<cy::memory_tier<>>(64 << 20);
    auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
    cy::cache_options writer, reader;
    writer.pack_binary_columns = first_packs;
    reader.pack_binary_columns = !first_packs;
    auto fill = binary_pipe(calls) | cy::cache(tier, writer) | cy::parallel(2);
    CHECK(run_binary_epoch(fill, 0) == expected[0]);
    auto read = binary_pipe(calls) | cy::cache(tier, reader) | cy::parallel(2);
    CHECK(run_binary_epoch(read, 1) == expected[1]);
    CHECK(calls->load() == record_count);
    CHECK(cy::cache_stats(read).hits == record_count);
  }
}

TEST_CASE("cache_stage: damaged values with bitmaps are misses, counted and recomputed") {
  auto memory = std::make_shared<cy::memory_tier<>>(64 << 20);
  auto tier = std::make_shared<instrumented_tier<cy::memory_tier<>>>(memory);  // CRC-checked
  auto expected = binary_reference();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = binary_pipe(calls) | cy::cache(tier) | cy::parallel(2);
  CHECK(run_binary_epoch(pipe, 0) == expected[0]);
  auto keys = tier->stored_keys();
  REQUIRE(keys.size() == record_count);
  cy::byte_buffer value;
  std::size_t k = 0;
  for (; k < keys.size(); ++k) {  // a record whose x is a bitmap: x's extent is marked
    REQUIRE(memory->get(keys[k], value));
    if (cy::detail::load_le(value.data() + cy::detail::row_fixed_header_bytes, 8) >> 63) break;
  }
  REQUIRE(k < keys.size());
  constexpr std::size_t header = cy::detail::row_header_bytes(5);
  std::vector<cy::byte_buffer> damaged(6, value);
  damaged[0].resize(damaged[0].size() - 1);                               // truncated
  damaged[1][header] ^= std::byte{0x10};                                  // a bit of x's bitmap
  damaged[2][cy::detail::row_fixed_header_bytes] ^= std::byte{0x01};      // x's width 1027 -> 1026
  damaged[3][cy::detail::row_fixed_header_bytes + 7] ^= std::byte{0x80};  // x's bitmap mark
  damaged[4][20] ^= std::byte{0x02};                                      // the bitmaps flag
  damaged[5][header + 1027 / 8] |= std::byte{0x80};                       // x's unused bits
  for (std::size_t d = 0; d < damaged.size(); ++d)
    REQUIRE(memory->put(keys[(k + d * 50) % keys.size()], damaged[d]));
  CHECK(run_binary_epoch(pipe, 1) == expected[1]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.invalid == damaged.size());
  CHECK(stats.hits == record_count - damaged.size());
  CHECK(calls->load() == record_count + damaged.size());
  CHECK(run_binary_epoch(pipe, 2) == expected[2]);
  CHECK(cy::cache_stats(pipe).invalid == damaged.size());
}
