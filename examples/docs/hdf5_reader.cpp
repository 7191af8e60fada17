// docs/source-binary.md, HDF5: two datasets of one file as the columns of a
// pipeline source (link conveyor::hdf5).
#include <hdf5.h>
#include <unistd.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/source/hdf5_source.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace cy = conveyor;

int main() {
  auto path = std::filesystem::temp_directory_path() /
              ("conveyor-docs-" + std::to_string(::getpid()) + ".h5");
  {  // /x: float32 (1000, 16) in chunks of 64 rows; /y: int64 (1000,). Written with the C API.
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {1000, 16}, chunk[2] = {64, 16};
    hid_t space = H5Screate_simple(2, dims, nullptr);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(plist, 2, chunk);
    hid_t x = H5Dcreate2(file, "/x", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    std::vector<float> values(1000 * 16);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i / 16);
    H5Dwrite(x, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    hid_t label_space = H5Screate_simple(1, dims, nullptr);
    hid_t y = H5Dcreate2(file, "/y", H5T_NATIVE_INT64, label_space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    std::vector<std::int64_t> labels(1000);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 10);
    H5Dwrite(y, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels.data());
    H5Dclose(y);
    H5Sclose(label_space);
    H5Dclose(x);
    H5Pclose(plist);
    H5Sclose(space);
    H5Fclose(file);
  }
  bool ok = true;
  std::uint64_t rows = 0;
  {
    // Record i is row i of both datasets; dtypes and widths are checked at open.
    auto pipe = cy::hdf5_source<cy::dense<"x", float>, cy::dense<"y", std::int64_t>>(
                    path, {"/x", "/y"}, {16, 1}) |
                cy::shuffle(/*seed=*/42) | cy::batch(100) | cy::parallel(2);
    for (auto& batch : pipe.epoch(0)) {
      const auto& x = batch.get<"x">();  // dense_column<float>: rows x 16
      const auto& y = batch.get<"y">();  // dense_column<int64_t>: rows x 1
      for (std::size_t r = 0; r < batch.rows(); ++r) {
        const auto record = batch.indices()[r];
        ok = ok && x(r, 15) == static_cast<float>(record) &&
             y(r, 0) == static_cast<std::int64_t>(record % 10);
      }
      rows += batch.rows();
    }
    std::cout << pipe.stats();  // a row for the source ("<file>:/x,/y") and one for parallel
  }
  std::filesystem::remove(path);
  ok = ok && rows == 1000;
  std::printf("hdf5 reader: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
