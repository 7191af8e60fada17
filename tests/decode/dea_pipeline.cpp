// The reference workload end to end: tsv_file | batch | decode, and the
// dea_export tool, against the hashes and worked examples of the data README.
#include <doctest/doctest.h>

#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/tsv.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "support/sha256.hpp"
#include "support/temp_dir.hpp"

namespace cy = conveyor;
namespace fs = std::filesystem;

namespace {
const fs::path data_dir = CONVEYOR_SHARED_DATA_DIR;
const fs::path reference = data_dir / "fakename_1k_bf_encoded.tsv";
constexpr const char* features_sha = "967b2ca73d9e8b0d1b2705d133b299ef4c7a02b329716079565fa0c8ec7b3ed5";
constexpr const char* labels_sha = "99f84054ec097ba6d19e9a8ce3de90b294faf888e3da659f374f8f69b14e4689";

cy::delimited_options no_sidecar() {
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;  // never write beside the shared data
  return options;
}

auto dea_pipeline(const fs::path& path, cy::error_policy policy = cy::on_error::fail) {
  return cy::tsv_file(path, no_sidecar()) | cy::batch(100) |
         cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                    cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
         cy::parallel(2) | cy::prefetch(2) | cy::on_errors(policy);
}

// Writes `contents` to `name` in one directory for the whole run, removed at exit.
fs::path temp_file(const std::string& name, const std::string& contents) {
  static const cy::test::temp_dir dir("dea");
  return dir.file(name, contents);
}

std::string bits_of(std::size_t n, char fill = '0') { return std::string(n, fill); }
}  // namespace

TEST_CASE("the DEA pipeline reproduces the original's features and labels bit for bit") {
  if (!fs::exists(reference)) {
    MESSAGE("skipped: ../shared/data is absent");
    return;
  }
  auto pipe = dea_pipeline(reference);
  cy::test::sha256 features, labels;
  std::uint64_t rows = 0, ones = 0;
  std::vector<std::size_t> row0, row1;
  for (auto& b : pipe.epoch(0)) {
    auto& x = b.get<"x">();
    auto& y = b.get<"y">();
    CHECK(x.width() == 1024);
    CHECK(y.width() == 1036);
    features.update(x.data(), x.size_bytes());
    labels.update(y.data(), y.size_bytes());
    for (float v : y.values()) ones += v == 1.0f;
    for (std::size_t r = 0; r < b.rows(); ++r) {
      CHECK(b.indices()[r] == rows + r);  // file order
      if (b.indices()[r] < 2)
        for (std::size_t g = 0; g < 1036; ++g)
          if (y(r, g) == 1.0f) (b.indices()[r] == 0 ? row0 : row1).push_back(g);
    }
    rows += b.rows();
  }
  CHECK(rows == 1000);
  CHECK(ones == 17554);
  CHECK(features.hex() == features_sha);
  CHECK(labels.hex() == labels_sha);
  // The README's worked examples (rows 1 and 2 of the file).
  CHECK(row0 == std::vector<std::size_t>{17, 19, 24, 208, 300, 312, 381, 450, 494, 635, 852, 952, 955, 973, 997, 1029});
  CHECK(row1 == std::vector<std::size_t>{116, 117, 122, 219, 290, 320, 342, 446, 858, 950, 955, 957, 977, 1006, 1033});
}

#ifdef CONVEYOR_DEA_EXPORT
TEST_CASE("dea_export writes .npy files with the published hashes") {
  if (!fs::exists(reference)) {
    MESSAGE("skipped: ../shared/data is absent");
    return;
  }
  cy::test::temp_dir out_dir("dea-export");
  auto out = out_dir.file("out");  // dea_export creates it
  std::string command = std::string(CONVEYOR_DEA_EXPORT) + " '" + reference.string() + "' '" + out.string() + "'";
  REQUIRE(std::system(command.c_str()) == 0);
  cy::npy_file features(out / "features.npy"), labels(out / "labels.npy");
  REQUIRE(features.size() == 1000);
  REQUIRE(labels.size() == 1000);
  auto hash_of = [](const cy::npy_file& f) {
    std::vector<std::uint64_t> all(f.size());
    std::iota(all.begin(), all.end(), 0);
    std::vector<std::byte> bytes(f.size() * f.record_bytes());
    f.read(all, bytes);
    cy::test::sha256 h;
    h.update(bytes.data(), bytes.size());
    return h.hex();
  };
  CHECK(hash_of(features) == features_sha);
  CHECK(hash_of(labels) == labels_sha);

  // A malformed input: a clear error, exit status 1, and no partial output.
  auto bad = temp_file("bad.tsv", "a\tb\tbloomfilter\tuid\nx\ty\t" + bits_of(8) + "\t1\nx\ty\t0101\t2\n");
  auto bad_out = out / "bad";
  std::string bad_command = std::string(CONVEYOR_DEA_EXPORT) + " '" + bad.string() + "' '" + bad_out.string() + "' 2>/dev/null";
  CHECK(std::system(bad_command.c_str()) != 0);
  CHECK_FALSE(fs::exists(bad_out / "features.npy"));
}
#endif

TEST_CASE("bad records name file, record and byte offset; skip drops and counts them") {
  std::string header = "GivenName\tSurname\tBirthday\tbloomfilter\tuid\n";
  std::string good = "Ann\tLee\t1/2/1990\t" + bits_of(1024, '1') + "\t7\n";
  std::string bad_char = "Bob\tRay\t3/4/1980\t" + bits_of(500) + "x" + bits_of(523) + "\t8\n";
  std::string short_bits = "Cy\tDo\t5/6/1970\t" + bits_of(1000) + "\t9\n";
  auto path = temp_file("bad_records.tsv", header + good + bad_char + good + short_bits + good);

  try {
    auto pipe = dea_pipeline(path);
    for (auto& b : pipe.epoch(0)) (void)b;
    FAIL("no error");
  } catch (const cy::stage_error& e) {
    CHECK(e.stage() == "decode");
    CHECK(e.where().file == path.string());
    CHECK(e.where().record == 1);
    // The 'x' is the 501st character of the bit string of the second record.
    std::uint64_t expected = header.size() + good.size() + std::string("Bob\tRay\t3/4/1980\t").size() + 500;
    CHECK(e.where().offset == expected);
  }

  auto pipe = dea_pipeline(path, cy::on_error::skip);
  std::vector<std::uint64_t> kept;
  for (auto& b : pipe.epoch(0)) kept.insert(kept.end(), b.indices().begin(), b.indices().end());
  CHECK(kept == std::vector<std::uint64_t>{0, 2, 4});
  auto stats = pipe.stats();
  CHECK(stats.stages[1].name == "decode");
  CHECK(stats.stages[1].skipped == 2);

  // A row with a missing field is the reader's error, also located.
  auto torn = temp_file("torn.tsv", header + good + "Dee\tFox\t" + bits_of(1024) + "\t10\n");
  try {
    auto p = dea_pipeline(torn);
    for (auto& b : p.epoch(0)) (void)b;
    FAIL("no error");
  } catch (const cy::stage_error& e) {
    CHECK(e.where().record == 1);
    CHECK(e.where().offset == header.size() + good.size());
  }
  auto skipping = dea_pipeline(torn, cy::on_error::skip);
  std::uint64_t rows = 0;
  for (auto& b : skipping.epoch(0)) rows += b.rows();
  CHECK(rows == 1);
  CHECK(skipping.stats().stages[0].skipped == 1);
}

TEST_CASE("a missing column is an error naming the file and the column") {
  auto path = temp_file("no_bloom.tsv", "GivenName\tSurname\tBirthday\tencoding\tuid\nA\tB\tC\t01\t1\n");
  auto pipe = dea_pipeline(path);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : pipe.epoch(0)) (void)b;
      }(),
      doctest::Contains("bloomfilter"), cy::stage_error);
}

TEST_CASE("from the second epoch the DEA pipeline is served from the cache, identical to no cache") {
  if (!fs::exists(reference)) {
    MESSAGE("skipped: ../shared/data is absent");
    return;
  }
  auto tier = std::make_shared<cy::memory_tier<>>(64ull << 20);
  auto make = [&](bool cached) {
    auto decoded = cy::tsv_file(reference, no_sidecar()) | cy::shuffle(5) | cy::batch(64) |
                   cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">,
                              cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">);
    if (cached) {
      auto with_cache = std::move(decoded) | cy::cache(tier) | cy::parallel(2) | cy::prefetch(2);
      return cy::any_pipeline<decltype(with_cache)::batch_type>(std::move(with_cache));
    }
    auto plain = std::move(decoded) | cy::parallel(2) | cy::prefetch(2);
    return cy::any_pipeline<decltype(plain)::batch_type>(std::move(plain));
  };
  auto digest = [](auto& pipe, std::uint64_t epoch) {
    cy::test::sha256 h;
    for (auto& b : pipe.epoch(epoch)) {
      h.update(b.indices().data(), b.indices().size_bytes());
      h.update(b.template get<"x">().data(), b.template get<"x">().size_bytes());
      h.update(b.template get<"y">().data(), b.template get<"y">().size_bytes());
    }
    return h.hex();
  };
  auto plain = make(false);
  auto cached = make(true);
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) CHECK(digest(cached, epoch) == digest(plain, epoch));
  auto stats = tier->stats();
  CHECK(stats.misses == 1000);  // epoch 0 fills the cache
  CHECK(stats.hits == 2000);    // epochs 1 and 2 are served from it
}

#ifdef CONVEYOR_DEA_EXPORT
TEST_CASE("dea_export: an input without records is an error naming the input, not the output") {
  cy::test::temp_dir out_dir("dea-export-empty");
  auto out = out_dir.file("out");
  auto run = [&](const fs::path& input) {
    const auto stderr_path = out.string() + ".stderr";
    const std::string command = std::string(CONVEYOR_DEA_EXPORT) + " '" + input.string() + "' '" +
                                out.string() + "' 2>'" + stderr_path + "'";
    const int status = std::system(command.c_str());
    std::ifstream in(stderr_path);
    std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::remove(stderr_path);
    return std::pair{status, message};
  };

  const auto header_only = temp_file("header_only.tsv", "a\tb\tbloomfilter\tuid\n");
  const auto [status, message] = run(header_only);
  CHECK(status != 0);
  CHECK(message == "dea_export: " + header_only.string() +
                       ": has no records (only a header line): nothing to export\n");
  CHECK_FALSE(fs::exists(out / "features.npy"));

  // An empty first encoding: no width, also named in the input.
  const auto no_width = temp_file("no_width.tsv", "a\tb\tbloomfilter\tuid\nx\ty\t\t1\n");
  const auto [width_status, width_message] = run(no_width);
  CHECK(width_status != 0);
  CHECK(width_message ==
        "dea_export: " + no_width.string() +
            ", record 0, byte offset 20: the encoding column 'bloomfilter' is empty in the "
            "first record: no bit width to export\n");
  CHECK_FALSE(fs::exists(out / "features.npy"));

  // An empty file: the reader's own error, also naming the input.
  const auto empty = temp_file("empty.tsv", "");
  const auto [empty_status, empty_message] = run(empty);
  CHECK(empty_status != 0);
  CHECK(empty_message.find(empty.string() + ": has no header line") != std::string::npos);
}
#endif
