// dea_export <input.tsv> <output_dir>
//
// Writes features.npy (float32, rows x bits) and labels.npy (float32, rows x
// 1036) for a TSV in the dataset extension attack's layout: the encoding (a
// '0'/'1' string) second to last, the uid last, and every column before the
// encoding part of the label text. Rows stay in file order. The output is
// bit-identical to the original Python preprocessing (see docs/dea.md).
//
// The width of the bit strings is taken from the first record; every record
// must have the same width. An input without records (a header line only) is
// an error naming the input. A malformed record stops the export with its file,
// record and byte offset, and no partial .npy is left behind.
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/tsv.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

namespace cy = conveyor;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <input.tsv> <output_dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path input = argv[1], output = argv[2];
  const auto features_path = output / "features.npy", labels_path = output / "labels.npy";
  try {
    cy::delimited_options options = cy::delimited_options::tsv();
    options.persist_index = false;  // a one-shot export gains nothing from a sidecar
    auto source = cy::tsv_file(input, options);
    const auto& file = source.file();
    if (file.header().size() < 3)
      throw cy::data_error("expected at least 3 columns (text..., encoding, uid), found " +
                               std::to_string(file.header().size()),
                           file.path());
    // Checked here, where the input can be named: with no record there is no
    // width to take, and the .npy writer would refuse a zero-width row naming
    // the output file instead.
    if (file.size() == 0)
      throw cy::data_error("has no records (only a header line): nothing to export", file.path());
    cy::record_buffer buffer;
    const std::size_t bits = file.record(0, buffer).field(file.header().size() - 2).size();
    if (bits == 0)
      throw cy::data_error("the encoding column '" + file.header()[file.header().size() - 2] +
                               "' is empty in the first record: no bit width to export",
                           file.path(), 0, file.record_offset(0));
    std::filesystem::create_directories(output);
    cy::npy_writer features(features_path, {cy::element_type::float32, {bits}});
    cy::npy_writer labels(labels_path, {cy::element_type::float32, {cy::gram_alphabet::dea().size()}});

    auto pipe = std::move(source) | cy::batch(1024) |
                cy::decode(cy::bits<float>(cy::field_ref::at(-2), bits) >> cy::column<"x">,
                           cy::two_grams<float>(cy::field_set::all_but_last(2)) >> cy::column<"y">) |
                cy::parallel(2) | cy::prefetch(2);
    std::uint64_t rows = 0;
    for (auto& batch : pipe.epoch(0)) {
      features.write(std::as_bytes(batch.get<"x">().values()));
      labels.write(std::as_bytes(batch.get<"y">().values()));
      rows += batch.rows();
    }
    features.close();
    labels.close();
    std::printf("%llu rows: %s (%zu bits), %s (%zu grams)\n", static_cast<unsigned long long>(rows),
                features_path.c_str(), bits, labels_path.c_str(), cy::gram_alphabet::dea().size());
    return 0;
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(features_path, ignored);
    std::filesystem::remove(labels_path, ignored);
    std::fprintf(stderr, "dea_export: %s\n", e.what());
    return 1;
  }
}
