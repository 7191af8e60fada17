// docs/source-binary.md, HDF5: hdf5_dataset read directly (numeric,
// variable-length strings, compound) and hdf5_source over two datasets of one
// file. Self-contained: it writes train.h5 with HDF5's C API in a temporary
// directory it works in (link conveyor::hdf5).
#include <hdf5.h>
#include <unistd.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/source/hdf5.hpp>         // link conveyor::hdf5
#include <conveyor/source/hdf5_source.hpp>  // link conveyor::hdf5
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {
bool ok = true;
constexpr hsize_t records = 600;

struct my_struct {
  std::int32_t id;
  float score;
};

// /train/x: float32 (600, 1024) in chunks of 64 rows; /train/y: int64 (600,);
// /names: variable-length strings; /samples: compound {id int32, score float32}.
void write_train_h5() {
  hid_t file = H5Fcreate("train.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t group = H5Gcreate2(file, "/train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t x_dims[2] = {records, 1024}, chunk[2] = {64, 1024};
  hid_t x_space = H5Screate_simple(2, x_dims, nullptr);
  hid_t chunked = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(chunked, 2, chunk);
  hid_t x =
      H5Dcreate2(file, "/train/x", H5T_NATIVE_FLOAT, x_space, H5P_DEFAULT, chunked, H5P_DEFAULT);
  std::vector<float> x_values(records * 1024);
  for (std::size_t i = 0; i < x_values.size(); ++i) x_values[i] = static_cast<float>(i / 1024);
  H5Dwrite(x, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x_values.data());

  hsize_t dims[1] = {records};
  hid_t space = H5Screate_simple(1, dims, nullptr);
  hid_t y =
      H5Dcreate2(file, "/train/y", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<std::int64_t> y_values(records);
  for (std::size_t i = 0; i < records; ++i) y_values[i] = static_cast<std::int64_t>(i % 10);
  H5Dwrite(y, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, y_values.data());

  hid_t string_type = H5Tcopy(H5T_C_S1);
  H5Tset_size(string_type, H5T_VARIABLE);
  hid_t names =
      H5Dcreate2(file, "/names", string_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<std::string> name_values(records);
  std::vector<const char*> name_pointers(records);
  for (std::size_t i = 0; i < records; ++i) {
    name_values[i] = "name " + std::to_string(i);
    name_pointers[i] = name_values[i].c_str();
  }
  H5Dwrite(names, string_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, name_pointers.data());

  hid_t compound = H5Tcreate(H5T_COMPOUND, sizeof(my_struct));
  H5Tinsert(compound, "id", offsetof(my_struct, id), H5T_NATIVE_INT32);
  H5Tinsert(compound, "score", offsetof(my_struct, score), H5T_NATIVE_FLOAT);
  hid_t samples =
      H5Dcreate2(file, "/samples", compound, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  std::vector<my_struct> sample_values(records);
  for (std::size_t i = 0; i < records; ++i)
    sample_values[i] = {static_cast<std::int32_t>(i), static_cast<float>(i) * 0.5f};
  H5Dwrite(samples, compound, H5S_ALL, H5S_ALL, H5P_DEFAULT, sample_values.data());

  for (hid_t dataset : {x, y, names, samples}) H5Dclose(dataset);
  for (hid_t type : {string_type, compound}) H5Tclose(type);
  for (hid_t each : {x_space, space}) H5Sclose(each);
  H5Pclose(chunked);
  H5Gclose(group);
  H5Fclose(file);
}

// The functions below are laid out as docs/source-binary.md quotes them.
// clang-format off
void dataset_reads(const std::vector<std::uint64_t>& batch) {
  std::vector<float> rows(batch.size() * 1024);
  cy::hdf5_dataset x("train.h5", "/train/x");          // float32 (N, 1024), chunked
  x.read(batch, std::span<float>(rows));
  cy::hdf5_dataset names("train.h5", "/names");        // variable-length strings
  std::vector<std::string> text = names.read_strings(batch);
  cy::hdf5_dataset table("train.h5", "/samples");      // compound
  for (const auto& field : table.fields()) std::cout << field.name << '\n';  // offset, bytes, dtype, shape
  std::vector<my_struct> records(batch.size());
  table.read(batch, std::as_writable_bytes(std::span(records)));
  ok = ok && rows[1024] == static_cast<float>(batch[1]) && text[0] == "name " + std::to_string(batch[0]) &&
       records[1].id == static_cast<std::int32_t>(batch[1]) && table.fields().size() == 2;
}

void source_pipeline() {
  auto pipe = cy::hdf5_source<cy::dense<"x", float>, cy::dense<"y", std::int64_t>>(
                  "train.h5", {"/train/x", "/train/y"}, {1024, 1})
            | cy::shuffle(42) | cy::batch(256) | cy::parallel(2);
  std::uint64_t rows = 0;
  for (auto& batch : pipe.epoch(0)) rows += batch.rows();
  ok = ok && rows == records;
}
// clang-format on
}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conveyor-docs-hdf5-readers-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  write_train_h5();
  dataset_reads({5, 7, 500});
  source_pipeline();
  std::filesystem::current_path(previous);
  std::filesystem::remove_all(dir);
  std::cout << "hdf5 readers: " << (ok ? "ok" : "WRONG") << '\n';
  return ok ? 0 : 1;
}
