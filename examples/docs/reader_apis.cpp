// docs/source-delimited.md and docs/source-binary.md: the readers under the
// sources (delimited_file, binary_records_file, npy_file, npy_writer) called
// directly, and an npy_source pipeline. Self-contained: it writes every file
// it reads, in a temporary directory it works in.
#include <unistd.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/source/binary_records.hpp>
#include <conveyor/source/delimited.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/npy_source.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {
bool ok = true;

// The functions below are laid out as the docs quote them.
// clang-format off
void delimited_reader() {
  conveyor::delimited_file file("fakename_1k_bf_encoded.tsv");   // TSV by default
  // conveyor::delimited_file file("train.csv", conveyor::delimited_options::csv());
  const std::size_t bits = file.column_index("bloomfilter");      // throws data_error if absent

  conveyor::field_table table;                                    // caller-owned, reused
  std::vector<std::uint64_t> rows{7, 3, 42};
  file.read(rows, table);                                         // table row k = record rows[k]
  std::string_view filter = table.field(0, bits);                 // record 7's bloom filter

  conveyor::record_buffer buffer;                                 // for single records
  auto record = file.record(0, buffer);
  std::string_view given = record.field(0);  // "Maria"; also field_count(), byte_offset(), record_index()
  ok = ok && filter.size() == 1024 && given == "Maria";
}

void npy_pipeline() {
  auto pipe = cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"y", float>>(
                  {"features.npy", "labels.npy"})
            | cy::shuffle(42) | cy::batch(256) | cy::parallel(2);
  for (auto& b : pipe.epoch(0)) {
    const auto& bits = b.get<"bits">();   // dense_column<uint8_t>: rows x 1024
    const auto& y = b.get<"y">();         // dense_column<float>: rows x 1
    // ...
    ok = ok && bits.width() == 1024 && y.width() == 1;
  }
}

void fixed_width_reader() {
  // 16 header bytes, then records of 1024 little-endian float32.
  cy::binary_records_file file("features.bin", {.header_bytes = 16,
                                                .layout = {cy::element_type::float32, {1024}}});
  std::vector<std::uint64_t> batch{7, 3, 900};
  std::vector<float> x(batch.size() * 1024);
  file.read(batch, std::span<float>(x));
  auto raw = file.record(7);  // std::span<const std::byte> into the mapping, no copy
  ok = ok && x[0] == 7.0f && x[2 * 1024] == 900.0f && raw.size() == 4096;
}

void npy_reader_and_writer(const std::vector<std::uint64_t>& batch, const std::vector<std::uint8_t>& chunk,
                           const std::vector<float>& values) {
  cy::npy_file x("x.npy");                    // e.g. shape (200000, 32, 32), '<f4'
  std::uint64_t records = x.size();           // 200000 in that example
  const auto& record_shape = x.layout().shape;  // {32, 32}
  std::vector<float> rows(batch.size() * 32 * 32);
  x.read(batch, std::span<float>(rows));

  // Streaming writer: rows go to disk as they come; the count goes into the header at close().
  cy::npy_writer out("y.npy", {cy::element_type::uint8, {1036}});
  out.write(std::span<const std::uint8_t>(chunk));   // any number of whole rows, any number of times
  out.close();                                       // throws io_error if the final write fails

  // Or the whole array at once:
  std::uint64_t shape[] = {2, 3};
  cy::write_npy("small.npy", cy::element_type::float32, shape, std::as_bytes(std::span(values)));
  ok = ok && records == 100 && record_shape.size() == 2;
}
// clang-format on

void write_files() {
  {
    std::ofstream tsv("fakename_1k_bf_encoded.tsv");
    tsv << "GivenName\tSurname\tbloomfilter\n";
    for (int i = 0; i < 50; ++i)
      tsv << (i == 0 ? "Maria" : "Name" + std::to_string(i)) << "\tTaylor\t"
          << std::string(1024, i % 2 ? '1' : '0') << '\n';
  }
  {
    std::vector<std::uint8_t> features(600 * 1024, 1);
    std::vector<float> labels(600, 0.5f);
    const std::uint64_t feature_shape[] = {600, 1024}, label_shape[] = {600};
    cy::write_npy("features.npy", cy::element_type::uint8, feature_shape,
                  std::as_bytes(std::span(features)));
    cy::write_npy("labels.npy", cy::element_type::float32, label_shape,
                  std::as_bytes(std::span(labels)));
  }
  {
    std::ofstream bin("features.bin", std::ios::binary);
    bin << std::string(16, 'h');
    std::vector<float> record(1024);
    for (int r = 0; r < 1000; ++r) {
      std::fill(record.begin(), record.end(), static_cast<float>(r));
      bin.write(reinterpret_cast<const char*>(record.data()),
                static_cast<std::streamsize>(record.size() * 4));
    }
  }
  std::vector<float> x(100 * 32 * 32, 1.0f);
  const std::uint64_t x_shape[] = {100, 32, 32};
  cy::write_npy("x.npy", cy::element_type::float32, x_shape, std::as_bytes(std::span(x)));
}
}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conveyor-docs-reader-apis-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  write_files();
  delimited_reader();
  npy_pipeline();
  fixed_width_reader();
  npy_reader_and_writer({3, 1, 2}, std::vector<std::uint8_t>(4 * 1036, 1),
                        std::vector<float>(6, 2.0f));
  std::filesystem::current_path(previous);
  std::filesystem::remove_all(dir);
  std::cout << "reader APIs: " << (ok ? "ok" : "WRONG") << '\n';
  return ok ? 0 : 1;
}
