// Tests for the HDF5 reader and source: every file is created with HDF5's C API
// in a temporary directory, then read back through conveyor::hdf5_dataset and
// conveyor::hdf5_source in pipelines.
#include <doctest/doctest.h>
#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <conveyor/conveyor.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conveyor/source/hdf5.hpp"
#include "conveyor/source/hdf5_source.hpp"
#include "support/error_text.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using conveyor::element_type;
using conveyor::hdf5_content;
using conveyor::test::temp_dir;

namespace {

// Writes one dataset of `dims` with `file_type` from `data` (in `memory_type`),
// chunked by `chunk` rows when non-zero, deflated when `deflate`.
void write_dataset(hid_t file, const char* name, hid_t file_type, hid_t memory_type,
                   std::vector<hsize_t> dims, const void* data, hsize_t chunk = 0,
                   bool deflate = false) {
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t create = H5Pcreate(H5P_DATASET_CREATE);
  if (chunk > 0) {
    auto chunk_dims = dims;
    chunk_dims[0] = chunk;
    H5Pset_chunk(create, static_cast<int>(chunk_dims.size()), chunk_dims.data());
    if (deflate) H5Pset_deflate(create, 4);
  }
  hid_t dataset = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, create, H5P_DEFAULT);
  REQUIRE(dataset >= 0);
  REQUIRE(H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(dataset);
  H5Pclose(create);
  H5Sclose(space);
}

struct sample {
  std::int32_t id;
  double score;
  char name[6];
  float vec[3];
};

constexpr std::uint64_t rows = 1000;
constexpr std::uint64_t width = 16;

float value_at(std::uint64_t row, std::uint64_t column) {
  return static_cast<float>(row * width + column) * 0.5f;
}

// The fixture file: numeric, string, compound, enum and scalar datasets.
fs::path make_file(const temp_dir& dir) {
  const auto path = dir.path() / "data.h5";
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(file >= 0);
  std::vector<float> matrix(rows * width);
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < width; ++c) matrix[r * width + c] = value_at(r, c);
  H5Gclose(H5Gcreate2(file, "/train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  write_dataset(file, "/train/x", H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, {rows, width}, matrix.data(), 64);
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0)
    write_dataset(file, "/train/x_deflate", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {rows, width},
                  matrix.data(), 100, true);
  write_dataset(file, "/contiguous", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {rows, 4, 4}, matrix.data());

  std::vector<std::int64_t> ids(rows);
  for (std::uint64_t r = 0; r < rows; ++r) ids[r] = -static_cast<std::int64_t>(r) * 1000003;
  write_dataset(file, "/ids", H5T_STD_I64LE, H5T_NATIVE_INT64, {rows}, ids.data(), 128);

  hid_t fixed = H5Tcopy(H5T_C_S1);
  H5Tset_size(fixed, 8);
  const char fixed_text[3][8] = {"alpha", "beta", "gamma"};
  write_dataset(file, "/fixed", fixed, fixed, {3}, fixed_text);
  H5Tset_strpad(fixed, H5T_STR_SPACEPAD);
  const char padded_text[2][8] = {{'a', 'b', ' ', ' ', ' ', ' ', ' ', ' '},
                                  {'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'}};
  write_dataset(file, "/padded", fixed, fixed, {2}, padded_text);
  H5Tclose(fixed);

  hid_t variable = H5Tcopy(H5T_C_S1);
  H5Tset_size(variable, H5T_VARIABLE);
  const char* words[4] = {"one", "", "three and more", "four"};
  write_dataset(file, "/words", variable, variable, {2, 2}, words);
  H5Tclose(variable);

  hid_t name_type = H5Tcopy(H5T_C_S1);
  H5Tset_size(name_type, 6);
  const hsize_t vec_dims[1] = {3};
  hid_t vec_type = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, vec_dims);
  hid_t compound = H5Tcreate(H5T_COMPOUND, sizeof(sample));
  H5Tinsert(compound, "id", offsetof(sample, id), H5T_NATIVE_INT32);
  H5Tinsert(compound, "score", offsetof(sample, score), H5T_NATIVE_DOUBLE);
  H5Tinsert(compound, "name", offsetof(sample, name), name_type);
  H5Tinsert(compound, "vec", offsetof(sample, vec), vec_type);
  hid_t packed = H5Tcopy(compound);
  H5Tpack(packed);  // the file stores it packed; conveyor must realign
  std::vector<sample> samples(50);
  for (int i = 0; i < 50; ++i) {
    samples[i] = {i, i * 1.5, "", {float(i), float(i) + 1, float(i) + 2}};
    std::snprintf(samples[i].name, sizeof samples[i].name, "s%d", i);
  }
  write_dataset(file, "/samples", packed, compound, {50}, samples.data(), 8);
  H5Tclose(packed);
  H5Tclose(compound);
  H5Tclose(vec_type);
  H5Tclose(name_type);

  hid_t flag = H5Tenum_create(H5T_NATIVE_INT8);
  std::int8_t no = 0, yes = 1;
  H5Tenum_insert(flag, "FALSE", &no);
  H5Tenum_insert(flag, "TRUE", &yes);
  const std::int8_t flags[4] = {1, 0, 0, 1};
  write_dataset(file, "/flags", flag, flag, {4}, flags);
  H5Tclose(flag);

  // Chunked, only the first chunk written: the rest are unallocated (fill 0).
  {
    const hsize_t dims[1] = {1000}, chunk[1] = {100}, first[1] = {0}, count[1] = {100};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t create = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(create, 1, chunk);
    hid_t sparse = H5Dcreate2(file, "/sparse", H5T_NATIVE_INT32, space, H5P_DEFAULT, create, H5P_DEFAULT);
    std::vector<std::int32_t> head(100);
    for (int i = 0; i < 100; ++i) head[i] = i + 1;
    H5Sselect_hyperslab(space, H5S_SELECT_SET, first, nullptr, count, nullptr);
    hid_t memory = H5Screate_simple(1, count, nullptr);
    H5Dwrite(sparse, H5T_NATIVE_INT32, memory, space, H5P_DEFAULT, head.data());
    H5Sclose(memory);
    H5Dclose(sparse);
    H5Pclose(create);
    H5Sclose(space);
  }

  hid_t scalar_space = H5Screate(H5S_SCALAR);
  hid_t scalar = H5Dcreate2(file, "/scalar", H5T_NATIVE_INT, scalar_space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
  H5Dclose(scalar);
  H5Sclose(scalar_space);
  H5Fclose(file);
  return path;
}

template <class Action>
std::string data_error_text(Action&& action) {
  try {
    action();
  } catch (const conveyor::data_error& error) {
    return error.what();
  }
  FAIL("expected a data_error");
  return {};
}

void check_rows(const std::vector<std::uint64_t>& indices, const std::vector<float>& got) {
  for (std::size_t i = 0; i < indices.size(); ++i)
    for (std::uint64_t c = 0; c < width; ++c) REQUIRE(got[i * width + c] == value_at(indices[i], c));
}

}  // namespace

TEST_CASE("hdf5_dataset reads numeric batches in the order given") {
  temp_dir dir;
  const auto path = make_file(dir);
  conveyor::hdf5_dataset x(path, "/train/x");
  CHECK(x.size() == rows);
  CHECK(x.content() == hdf5_content::numeric);
  CHECK(x.layout().dtype == element_type::float32);
  CHECK(x.layout().shape == std::vector<std::uint64_t>{width});
  CHECK(x.chunk_rows() == 64);

  // Scattered, duplicated, consecutive, same-chunk-with-gap, and sorted batches.
  const std::vector<std::vector<std::uint64_t>> batches{
      {999, 0, 500, 500, 1, 2, 3, 70, 64, 66}, {10, 11, 12, 13}, {5}, {}, {63, 64, 127, 128}};
  for (const auto& batch : batches) {
    std::vector<float> got(batch.size() * width, -1.0f);
    x.read(batch, std::span<float>(got));
    check_rows(batch, got);
  }
  std::mt19937_64 random(7);
  std::vector<std::uint64_t> batch(256);
  for (auto& index : batch) index = random() % rows;
  std::vector<float> got(batch.size() * width);
  x.read(batch, std::span<float>(got));
  check_rows(batch, got);

  CHECK_FALSE(x.reads_directly());  // big-endian on disk: HDF5 converts

  for (const bool direct : {true, false}) {
    CAPTURE(direct);
    conveyor::hdf5_dataset cube(path, "/contiguous", {.direct_reads = direct});
    CHECK(cube.reads_directly() == direct);
    CHECK(cube.chunk_rows() == 0);
    CHECK(cube.layout().shape == std::vector<std::uint64_t>{4, 4});
    cube.read(batch, std::span<float>(got));
    check_rows(batch, got);
    // One OR-ed selection for all blocks, whatever their number.
    conveyor::hdf5_dataset one_selection(path, "/train/x", {.max_selection_blocks = 1000});
    one_selection.read(batch, std::span<float>(got));
    check_rows(batch, got);
  }

  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    conveyor::hdf5_dataset deflated(path, "/train/x_deflate", {.chunk_cache_bytes = 1 << 16});
    deflated.read(batch, std::span<float>(got));
    check_rows(batch, got);
  }
}

TEST_CASE("hdf5_dataset: 1-D point selections, enums, checks") {
  temp_dir dir;
  const auto path = make_file(dir);
  const std::vector<std::uint64_t> batch{900, 3, 450, 3, 4};
  std::vector<std::int64_t> got(batch.size());
  for (const bool direct : {false, true}) {
    CAPTURE(direct);
    conveyor::hdf5_dataset ids(path, "/ids", {.direct_reads = direct});
    CHECK(ids.reads_directly() == direct);
    CHECK(ids.layout().dtype == element_type::int64);
    CHECK(ids.layout().shape.empty());
    ids.read(batch, std::span<std::int64_t>(got));
    for (std::size_t i = 0; i < batch.size(); ++i)
      CHECK(got[i] == -static_cast<std::int64_t>(batch[i]) * 1000003);
  }
  conveyor::hdf5_dataset ids(path, "/ids");

  // Unallocated chunks have no address: the direct path falls back to H5Dread.
  conveyor::hdf5_dataset sparse(path, "/sparse");
  CHECK(sparse.reads_directly());
  const std::vector<std::uint64_t> sparse_rows{500, 5, 99, 999};
  std::vector<std::int32_t> sparse_values(4, -1);
  sparse.read(sparse_rows, std::span<std::int32_t>(sparse_values));
  CHECK(sparse_values == std::vector<std::int32_t>{0, 6, 100, 0});

  std::vector<double> wrong(batch.size());
  const auto text = data_error_text([&] { ids.read(batch, std::span<double>(wrong)); });
  CHECK(text.find("data.h5") != std::string::npos);
  CHECK(text.find("'/ids'") != std::string::npos);
  CHECK(text.find("int64") != std::string::npos);
  const std::vector<std::uint64_t> past_end{rows};
  CHECK_THROWS_AS(ids.read(past_end, std::span<std::int64_t>(got.data(), 1)), std::out_of_range);
  CHECK_THROWS_AS(ids.read(batch, std::span<std::int64_t>(got.data(), 2)), std::invalid_argument);

  conveyor::hdf5_dataset flags(path, "/flags");
  CHECK(flags.layout().dtype == element_type::int8);
  std::vector<std::int8_t> flag_values(4);
  const std::vector<std::uint64_t> all{0, 1, 2, 3};
  flags.read(all, std::span<std::int8_t>(flag_values));
  CHECK(flag_values == std::vector<std::int8_t>{1, 0, 0, 1});
}

TEST_CASE("hdf5_dataset reads fixed and variable-length strings") {
  temp_dir dir;
  const auto path = make_file(dir);
  conveyor::hdf5_dataset fixed(path, "/fixed");
  CHECK(fixed.content() == hdf5_content::fixed_string);
  CHECK(fixed.record_bytes() == 8);
  const std::vector<std::uint64_t> order{2, 0, 1};
  CHECK(fixed.read_strings(order) == std::vector<std::string>{"gamma", "alpha", "beta"});
  std::vector<float> floats(3);
  const auto text = data_error_text([&] { fixed.read(order, std::span<float>(floats)); });
  CHECK(text.find("'/fixed'") != std::string::npos);
  CHECK(text.find("fixed-length strings") != std::string::npos);

  conveyor::hdf5_dataset padded(path, "/padded");
  const std::vector<std::uint64_t> both{1, 0};
  CHECK(padded.read_strings(both) == std::vector<std::string>{"cdefghij", "ab"});

  conveyor::hdf5_dataset words(path, "/words");
  CHECK(words.content() == hdf5_content::variable_string);
  CHECK(words.elements_per_record() == 2);
  const std::vector<std::uint64_t> rows_asked{1, 0, 1};
  CHECK(words.read_strings(rows_asked) ==
        std::vector<std::string>{"three and more", "four", "one", "", "three and more", "four"});
  std::vector<std::byte> bytes(3 * words.record_bytes());
  CHECK_THROWS_AS(words.read(rows_asked, bytes), conveyor::data_error);
}

TEST_CASE("hdf5_dataset reads compound records into a matching struct") {
  temp_dir dir;
  const auto path = make_file(dir);
  conveyor::hdf5_dataset samples(path, "/samples");
  CHECK(samples.content() == hdf5_content::compound);
  REQUIRE(samples.fields().size() == 4);
  CHECK(samples.record_bytes() == sizeof(sample));
  const auto& fields = samples.fields();
  CHECK(fields[0].name == "id");
  CHECK(fields[0].offset == offsetof(sample, id));
  CHECK(fields[0].dtype == element_type::int32);
  CHECK(fields[1].offset == offsetof(sample, score));
  CHECK(fields[1].dtype == element_type::float64);
  CHECK(fields[2].content == hdf5_content::fixed_string);
  CHECK(fields[2].offset == offsetof(sample, name));
  CHECK(fields[3].offset == offsetof(sample, vec));
  CHECK(fields[3].shape == std::vector<std::uint64_t>{3});

  const std::vector<std::uint64_t> batch{49, 7, 8, 9, 0};
  std::vector<sample> got(batch.size());
  samples.read(batch, std::as_writable_bytes(std::span(got)));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto r = static_cast<int>(batch[i]);
    CHECK(got[i].id == r);
    CHECK(got[i].score == r * 1.5);
    CHECK(std::string(got[i].name) == "s" + std::to_string(r));
    CHECK(got[i].vec[2] == float(r) + 2);
  }
}

TEST_CASE("hdf5_dataset: missing file, non-HDF5 file, missing or scalar dataset") {
  temp_dir dir;
  const auto path = make_file(dir);
  CHECK_THROWS_AS(conveyor::hdf5_dataset(dir.path() / "absent.h5", "/x"), conveyor::io_error);
  { std::ofstream(dir.path() / "text.h5") << "not hdf5 at all"; }
  CHECK(data_error_text([&] {
          conveyor::hdf5_dataset(dir.path() / "text.h5", "/x");
        }).find("not an HDF5 file") != std::string::npos);
  const auto missing = data_error_text([&] { conveyor::hdf5_dataset(path, "/train/nothing"); });
  CHECK(missing.find("data.h5") != std::string::npos);
  CHECK(missing.find("'/train/nothing'") != std::string::npos);
  CHECK(data_error_text([&] { conveyor::hdf5_dataset(path, "/scalar"); }).find("scalar") !=
        std::string::npos);
  CHECK_THROWS_AS(conveyor::hdf5_dataset(path, "/train"), conveyor::data_error);  // a group
}

TEST_CASE("hdf5_dataset is read from several threads at once") {
  temp_dir dir;
  const auto path = make_file(dir);
  for (const bool serialize : {false, true}) {
    CAPTURE(serialize);
    conveyor::hdf5_serialize_always(serialize);
    conveyor::hdf5_dataset x(path, "/train/x");
    conveyor::hdf5_dataset words(path, "/words");
    conveyor::hdf5_dataset ids(path, "/ids");  // direct path: chunk table filled concurrently
    REQUIRE(ids.reads_directly());
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        std::mt19937_64 random(t);
        std::vector<std::uint64_t> batch(64);
        std::vector<float> got(batch.size() * width);
        for (int round = 0; round < 30; ++round) {
          for (auto& index : batch) index = random() % rows;
          x.read(batch, std::span<float>(got));
          for (std::size_t i = 0; i < batch.size(); ++i)
            if (got[i * width + 3] != value_at(batch[i], 3)) ++mismatches;
          std::vector<std::int64_t> id_values(batch.size());
          ids.read(batch, std::span<std::int64_t>(id_values));
          for (std::size_t i = 0; i < batch.size(); ++i)
            if (id_values[i] != -static_cast<std::int64_t>(batch[i]) * 1000003) ++mismatches;
          const std::vector<std::uint64_t> word_rows{random() % 2};
          if (words.read_strings(word_rows)[1] != (word_rows[0] == 0 ? "" : "four")) ++mismatches;
        }
      });
    for (auto& thread : threads) thread.join();
    CHECK(mismatches.load() == 0);
  }
  conveyor::hdf5_serialize_always(false);
  MESSAGE("HDF5 library thread-safe: " << conveyor::hdf5_is_threadsafe());
}

// --- the pipeline source -----------------------------------------------------

namespace cy = conveyor;

namespace {

std::int64_t id_at(std::uint64_t row) {
  return -static_cast<std::int64_t>(row) * 1000003;
}
std::int32_t sparse_at(std::uint64_t row) {
  return row < 100 ? static_cast<std::int32_t>(row) + 1 : 0;
}

// Four aligned columns of the fixture, one per read path: /train/x goes through
// H5Dread (big-endian on disk), /ids and /contiguous are copied from the memory
// map (chunked and contiguous), /sparse falls back to H5Dread for unwritten chunks.
auto fixture_source(const fs::path& path) {
  return cy::hdf5_source<cy::dense<"x", float>, cy::dense<"id", std::int64_t>,
                         cy::dense<"cube", float>, cy::dense<"sparse", std::int32_t>>(
      path, {"/train/x", "/ids", "/contiguous", "/sparse"}, {width, 1, 16, std::nullopt});
}

template <class Batch>
void check_fixture_row(const Batch& batch, std::size_t r) {
  const auto record = batch.indices()[r];
  const auto& x = batch.template get<"x">();
  const auto& cube = batch.template get<"cube">();
  REQUIRE(x.width() == width);
  REQUIRE(cube.width() == 16);
  for (std::uint64_t c = 0; c < width; ++c) {
    REQUIRE(x(r, c) == value_at(record, c));
    REQUIRE(cube(r, c) == value_at(record, c));
  }
  REQUIRE(batch.template get<"id">()(r, 0) == id_at(record));
  REQUIRE(batch.template get<"sparse">()(r, 0) == sparse_at(record));
}

template <class Pipe>
std::vector<std::uint64_t> delivered(Pipe& pipe) {
  std::vector<std::uint64_t> order;
  for (auto& batch : pipe.epoch(0))
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      check_fixture_row(batch, r);
      order.push_back(batch.indices()[r]);
    }
  return order;
}

using conveyor::test::contains;
using conveyor::test::error_text;

}  // namespace

TEST_CASE("hdf5_source: datasets as aligned columns through shuffle, batch and parallel(2)") {
  temp_dir dir;
  const auto path = make_file(dir);
  static_assert(cy::fingerprinted_source<decltype(fixture_source(path))>);
  auto serial = fixture_source(path) | cy::shuffle(42) | cy::batch(48) | cy::parallel(1);
  auto threaded = fixture_source(path) | cy::shuffle(42) | cy::batch(48) | cy::parallel(2);
  const auto expected = delivered(serial);
  auto sorted = expected;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::uint64_t> all(rows);
  for (std::uint64_t i = 0; i < rows; ++i) all[i] = i;
  CHECK(sorted == all);
  CHECK_FALSE(std::is_sorted(expected.begin(), expected.end()));
  CHECK(delivered(threaded) == expected);

  // Buffers flow backwards: the delivered columns come from the sink's pool.
  const auto sink = std::make_shared<cy::pageable_pool>();
  auto pooled = fixture_source(path) | cy::batch(250) | cy::with_pool(sink);
  for (auto& batch : pooled.epoch(0)) {
    CHECK(batch.get<"x">().buffer().pool() == sink);
    CHECK(batch.get<"sparse">().buffer().pool() == sink);
  }

  const auto source = fixture_source(path);
  CHECK(source.size() == rows);
  CHECK(source.name() == "data.h5:/train/x,/ids,/contiguous,/sparse");
  CHECK_FALSE(source.dataset(0).reads_directly());
  CHECK(source.dataset(1).reads_directly());
  CHECK(source.dataset(2).reads_directly());
  CHECK(source.fingerprint() == fixture_source(path).fingerprint());
}

TEST_CASE("hdf5_source: rows in the order given, repeats, one dataset") {
  temp_dir dir;
  const auto path = make_file(dir);
  cy::stage_context ctx;
  ctx.pool = std::make_shared<cy::pageable_pool>();
  const std::vector<std::uint64_t> indices{999, 3, 3, 4, 5, 0, 64, 63, 150, 2};
  const auto batch = fixture_source(path).read(indices, ctx);
  REQUIRE(batch.rows() == indices.size());
  for (std::size_t r = 0; r < indices.size(); ++r) {
    CHECK(batch.indices()[r] == indices[r]);
    check_fixture_row(batch, r);
  }
  const auto ids = cy::hdf5_source<cy::dense<"id", std::int64_t>>(path, "/ids");
  CHECK(ids.name() == "data.h5:/ids");
  const auto id_batch = ids.read(indices, ctx);
  for (std::size_t r = 0; r < indices.size(); ++r)
    CHECK(id_batch.get<"id">()(r, 0) == id_at(indices[r]));
  CHECK(ids.read({}, ctx).rows() == 0);
  const std::vector<std::uint64_t> past_end{rows};
  CHECK_THROWS_AS(ids.read(past_end, ctx), std::out_of_range);
}

TEST_CASE("hdf5_source: dtype, width, content and record-count mismatches are errors at open") {
  temp_dir dir;
  const auto path = make_file(dir);
  const auto file = path.string();

  const auto dtype =
      error_text([&] { (void)cy::hdf5_source<cy::dense<"id", float>>(path, "/ids"); });
  CHECK(contains(dtype, file));
  CHECK(contains(dtype, "dataset '/ids'"));
  CHECK(contains(dtype, "column 'id' expects float32 records"));
  CHECK(contains(dtype, "holds int64 records of shape () = 1 value (array shape (1000,))"));

  const auto wide = error_text([&] {
    (void)cy::hdf5_source<cy::dense<"x", float>, cy::dense<"id", std::int64_t>>(
        path, {"/train/x", "/ids"}, {8, 1});
  });
  CHECK(contains(wide, file));
  CHECK(contains(wide, "dataset '/train/x'"));
  CHECK(contains(wide, "expects float32 records of 8 values"));
  CHECK(
      contains(wide, "holds float32 records of shape (16,) = 16 values (array shape (1000, 16))"));

  const auto strings =
      error_text([&] { (void)cy::hdf5_source<cy::dense<"s", std::uint8_t>>(path, "/fixed"); });
  CHECK(contains(strings, "dataset '/fixed'"));
  CHECK(contains(strings,
                 "column 's' expects uint8 records, the dataset holds 8-byte "
                 "fixed-length strings (dataset shape (3,))"));
  const auto words =
      error_text([&] { (void)cy::hdf5_source<cy::dense<"w", std::uint8_t>>(path, "/words"); });
  CHECK(contains(words, "the dataset holds variable-length strings (dataset shape (2, 2))"));

  const auto count = error_text([&] {
    (void)cy::hdf5_source<cy::dense<"id", std::int64_t>, cy::dense<"flag", std::int8_t>>(
        path, {"/ids", "/flags"});
  });
  CHECK(contains(count, "same number of records"));
  CHECK(contains(count, "column 'id' (" + file + ", dataset '/ids') holds 1000"));
  CHECK(contains(count, "column 'flag' (" + file + ", dataset '/flags') holds 4"));

  const auto missing =
      error_text([&] { (void)cy::hdf5_source<cy::dense<"y", float>>(path, "/train/y"); });
  CHECK(contains(missing, file));
  CHECK(contains(missing, "column 'y': no dataset '/train/y'"));
  auto open_mismatch = [&] { (void)cy::hdf5_source<cy::dense<"id", float>>(path, "/ids"); };
  CHECK_THROWS_AS(open_mismatch(), cy::data_error);
}

TEST_CASE("hdf5_source: a truncated file names the file and both sizes") {
  temp_dir dir;
  const auto path = make_file(dir);
  const auto whole = fs::file_size(path);
  fs::resize_file(path, whole / 2);
  const auto message =
      error_text([&] { (void)cy::hdf5_source<cy::dense<"id", std::int64_t>>(path, "/ids"); });
  CHECK(contains(message, path.string()));
  CHECK(contains(message, "column 'id'"));
  // HDF5 finds it when opening: the superblock's end of file against the file's.
  CHECK(contains(message, "truncated file"));
  CHECK(contains(message, "eof = " + std::to_string(whole / 2)));
  CHECK(contains(message, "stored_eof = " + std::to_string(whole)));
}
