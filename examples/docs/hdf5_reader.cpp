// docs/source-binary.md, HDF5: batched reads of a chunked dataset (link conveyor::hdf5).
#include <conveyor/source/hdf5.hpp>
#include <hdf5.h>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace cy = conveyor;

int main() {
  auto path = std::filesystem::temp_directory_path() / ("conveyor-docs-" + std::to_string(::getpid()) + ".h5");
  {  // A 1000 x 16 float32 dataset in chunks of 64 rows, written with the C API.
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {1000, 16}, chunk[2] = {64, 16};
    hid_t space = H5Screate_simple(2, dims, nullptr);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(plist, 2, chunk);
    hid_t dataset = H5Dcreate2(file, "/x", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    std::vector<float> values(1000 * 16);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i / 16);
    H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    H5Dclose(dataset);
    H5Pclose(plist);
    H5Sclose(space);
    H5Fclose(file);
  }
  bool ok;
  {
    cy::hdf5_dataset x(path, "/x");
    std::vector<std::uint64_t> batch{999, 3, 500};  // any order; read sorted and coalesced
    std::vector<float> rows(batch.size() * 16);
    x.read(batch, std::span<float>(rows));
    ok = x.size() == 1000 && rows[0] == 999.0f && rows[16] == 3.0f && rows[47] == 500.0f;
  }
  std::filesystem::remove(path);
  std::printf("hdf5 reader: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
