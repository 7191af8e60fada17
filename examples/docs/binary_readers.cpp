// docs/source-binary.md: .npy files and fixed-width records as pipeline sources.
#include <unistd.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/source/binary_records_source.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/npy_source.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

namespace cy = conveyor;
namespace fs = std::filesystem;

int main() {
  auto dir = fs::temp_directory_path() / ("conveyor-docs-binary-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  constexpr std::uint64_t records = 1000;

  // features.npy: uint8 (1000, 128), streamed to disk a chunk at a time (the
  // row count goes into the header at close()); labels.npy: float32 (1000,).
  {
    cy::npy_writer features(dir / "features.npy", {cy::element_type::uint8, {128}});
    std::vector<std::uint8_t> chunk(100 * 128);
    for (std::uint64_t first = 0; first < records; first += 100) {
      for (std::size_t i = 0; i < chunk.size(); ++i)
        chunk[i] = static_cast<std::uint8_t>((first + i / 128 + i % 128) & 0xff);
      features.write(std::span<const std::uint8_t>(chunk));
    }
    features.close();
    std::vector<float> labels(records);
    for (std::uint64_t i = 0; i < records; ++i) labels[i] = static_cast<float>(i) * 0.5f;
    const std::uint64_t shape[] = {records};
    cy::write_npy(dir / "labels.npy", cy::element_type::float32, shape,
                  std::as_bytes(std::span(labels)));
  }

  // Two files, two aligned columns of one record; widths checked at open.
  auto pipe = cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"y", float>>(
                  {dir / "features.npy", dir / "labels.npy"}, {128, 1}) |
              cy::shuffle(/*seed=*/42) | cy::batch(256) | cy::parallel(2);
  bool ok = true;
  std::uint64_t rows = 0;
  for (auto& batch : pipe.epoch(0)) {
    const auto& bits = batch.get<"bits">();  // dense_column<uint8_t>: rows x 128
    const auto& y = batch.get<"y">();        // dense_column<float>: rows x 1
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const auto record = batch.indices()[r];
      ok = ok && bits(r, 5) == static_cast<std::uint8_t>((record + 5) & 0xff) &&
           y(r, 0) == static_cast<float>(record) * 0.5f;
    }
    rows += batch.rows();
  }
  ok = ok && rows == records;

  // A fixed-width records file: a 16-byte header, then int32 records of 3 values.
  {
    std::ofstream raw(dir / "records.bin", std::ios::binary);
    char header[16] = {};
    raw.write(header, sizeof header);
    for (std::int32_t i = 0; i < 30; ++i) raw.write(reinterpret_cast<const char*>(&i), sizeof i);
  }
  auto records_pipe =
      cy::binary_records_source<cy::dense<"x", std::int32_t>>(
          dir / "records.bin", {.header_bytes = 16, .layout = {cy::element_type::int32, {3}}}) |
      cy::shuffle(7) | cy::batch(4) | cy::parallel(2);
  for (auto& batch : records_pipe.epoch(0))
    for (std::size_t r = 0; r < batch.rows(); ++r)
      ok = ok && batch.get<"x">()(r, 2) == static_cast<std::int32_t>(batch.indices()[r] * 3 + 2);

  // A dtype the file does not hold is an error when the source is made.
  try {
    (void)cy::npy_source<cy::dense<"y", double>>(dir / "labels.npy");
    ok = false;
  } catch (const cy::data_error& error) {
    std::printf("%s\n",
                error.what());  // ...labels.npy, byte offset 10: column 'y' expects float64 ...
  }

  fs::remove_all(dir);
  std::printf("binary readers: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
