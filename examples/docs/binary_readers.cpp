// docs/source-binary.md: .npy written and read back, and fixed-width records.
#include <conveyor/source/binary_records.hpp>
#include <conveyor/source/npy.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <vector>

namespace cy = conveyor;
namespace fs = std::filesystem;

int main() {
  auto dir = fs::temp_directory_path() / ("conveyor-docs-binary-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  // Streaming .npy writer: rows go to disk as they come; the count is written at close().
  {
    cy::npy_writer out(dir / "x.npy", {cy::element_type::float32, {4}});
    for (int chunk = 0; chunk < 3; ++chunk) {
      std::vector<float> rows(2 * 4);
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(chunk * 8 + static_cast<int>(i));
      out.write(std::as_bytes(std::span<const float>(rows)));
    }
    out.close();
  }
  cy::npy_file x(dir / "x.npy");  // shape (6, 4), '<f4'
  std::vector<std::uint64_t> batch{5, 0, 3};
  std::vector<float> rows(batch.size() * 4);
  x.read(batch, std::span<float>(rows));
  bool ok = x.size() == 6 && rows[0] == 20.0f && rows[4] == 0.0f && rows[8] == 12.0f;

  // Fixed-width records after a 16-byte header.
  {
    std::ofstream raw(dir / "records.bin", std::ios::binary);
    char header[16] = {};
    raw.write(header, sizeof header);
    for (std::int32_t i = 0; i < 10; ++i) raw.write(reinterpret_cast<const char*>(&i), sizeof i);
  }
  cy::binary_records_file file(dir / "records.bin", {.header_bytes = 16, .layout = {cy::element_type::int32, {}}});
  std::vector<std::int32_t> values(batch.size());
  file.read(batch, std::span<std::int32_t>(values));
  ok = ok && file.size() == 10 && values[0] == 5 && values[1] == 0 && values[2] == 3;

  fs::remove_all(dir);
  std::printf("binary readers: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
