// The DEA preprocessing from three sources: the TSV (bit strings and name
// fields), a packed-bits .npy plus a packed-labels .npy, and an HDF5 file with
// the same two packed datasets. Same seed, same plan: byte-identical batches,
// in the same order. The small files are made here.
#include <doctest/doctest.h>
#include <hdf5.h>

#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/hdf5_source.hpp>
#include <conveyor/source/npy_source.hpp>
#include <conveyor/source/tsv.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace cy = conveyor;

namespace {

constexpr std::size_t records = 300;
constexpr std::size_t filter_bits = 1024;
constexpr std::size_t label_bits = 1036;  // the DEA alphabet

std::vector<std::uint8_t> pack(const std::vector<float>& values) {  // np.packbits, big bit order
  std::vector<std::uint8_t> out((values.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i] != 0) out[i / 8] |= static_cast<std::uint8_t>(0x80u >> (i % 8));
  return out;
}

struct dea_files {
  cy::test::temp_dir dir{"dea-sources"};
  std::filesystem::path tsv, features_npy, labels_npy, h5;

  dea_files() {
    const char* given[] = {"anna", "björn", "chloé", "dmitri", "eve", "fatima", "gus", "hélène"};
    const char* family[] = {"smith", "ødegaard", "nguyen", "o'neil", "müller", "khan"};
    std::mt19937_64 random(2026);
    std::string text = "GivenName\tSurname\tBirthday\tbloomfilter\tuid\n";
    std::vector<std::uint8_t> features, labels;
    for (std::size_t i = 0; i < records; ++i) {
      std::string g = given[random() % 8], s = family[random() % 6];
      std::string birthday = std::to_string(1 + random() % 28) + "/" + std::to_string(1 + random() % 12) + "/" +
                             std::to_string(1940 + random() % 60);
      std::string bits(filter_bits, '0');
      std::vector<float> x(filter_bits);
      for (std::size_t b = 0; b < filter_bits; ++b)
        if (random() % 5 == 0) {
          bits[b] = '1';
          x[b] = 1;
        }
      text += g + "\t" + s + "\t" + birthday + "\t" + bits + "\t" + std::to_string(i) + "\n";
      std::vector<float> y(label_bits);
      std::string_view fields[] = {g, s, birthday};
      cy::encode_two_grams(std::span<const std::string_view>(fields), std::span<float>(y), cy::error_location{});
      auto px = pack(x), py = pack(y);
      features.insert(features.end(), px.begin(), px.end());
      labels.insert(labels.end(), py.begin(), py.end());
    }
    tsv = dir.file("dea.tsv", text);
    features_npy = dir.file("features.npy");
    labels_npy = dir.file("labels.npy");
    std::uint64_t feature_shape[] = {records, filter_bits / 8};
    std::uint64_t label_shape[] = {records, (label_bits + 7) / 8};
    cy::write_npy(features_npy, cy::element_type::uint8, feature_shape, std::as_bytes(std::span(features)));
    cy::write_npy(labels_npy, cy::element_type::uint8, label_shape, std::as_bytes(std::span(labels)));

    h5 = dir.file("dea.h5");
    hid_t file = H5Fcreate(h5.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(file >= 0);
    auto write = [&](const char* name, const std::vector<std::uint8_t>& data, hsize_t width) {
      hsize_t dims[] = {records, width};
      hid_t space = H5Screate_simple(2, dims, nullptr);
      hid_t dataset = H5Dcreate2(file, name, H5T_NATIVE_UINT8, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      REQUIRE(dataset >= 0);
      REQUIRE(H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) >= 0);
      H5Dclose(dataset);
      H5Sclose(space);
    };
    write("/bits", features, filter_bits / 8);
    write("/labels", labels, (label_bits + 7) / 8);
    H5Fclose(file);
  }
};

/// Every batch of epoch `e`: indices, x and y bytes, flattened in order.
struct epoch_bytes {
  std::vector<std::uint64_t> indices;
  std::vector<float> x, y;
  std::size_t batches = 0;
};
template <class Pipe>
epoch_bytes collect(Pipe& pipe, std::uint64_t e) {
  epoch_bytes out;
  for (auto& b : pipe.epoch(e)) {
    ++out.batches;
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(b)>,
                                 cy::record_batch<cy::dense<"x", float>, cy::dense<"y", float>>>);
    out.indices.insert(out.indices.end(), b.indices().begin(), b.indices().end());
    auto x = b.template get<"x">().values();
    auto y = b.template get<"y">().values();
    REQUIRE(b.template get<"x">().width() == filter_bits);
    REQUIRE(b.template get<"y">().width() == label_bits);
    out.x.insert(out.x.end(), x.begin(), x.end());
    out.y.insert(out.y.end(), y.begin(), y.end());
  }
  return out;
}

}  // namespace

TEST_CASE("DEA batches are byte-identical from a TSV, from packed .npy files and from HDF5") {
  dea_files files;
  auto options = cy::delimited_options::tsv();
  options.persist_index = false;
  auto from_tsv = cy::tsv_file(files.tsv, options) | cy::shuffle(42) | cy::batch(64) |
                  cy::decode(cy::bits<float>("bloomfilter", filter_bits) >> cy::column<"x">,
                             cy::two_grams({"GivenName", "Surname", "Birthday"}) >> cy::column<"y">) |
                  cy::parallel(2);
  auto from_npy = cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"ybits", std::uint8_t>>(
                      {files.features_npy, files.labels_npy}) |
                  cy::shuffle(42) | cy::batch(64) |
                  cy::decode(cy::packed_bits<float>(cy::column<"bits">, filter_bits) >> cy::column<"x">,
                             cy::packed_bits<float>(cy::column<"ybits">, label_bits) >> cy::column<"y">) |
                  cy::prefetch(2);
  auto from_h5 = cy::hdf5_source<cy::dense<"bits", std::uint8_t>, cy::dense<"ybits", std::uint8_t>>(
                     files.h5, {"/bits", "/labels"}) |
                 cy::shuffle(42) | cy::batch(64) |
                 cy::decode(cy::packed_bits<float>(cy::column<"bits">, filter_bits) >> cy::column<"x">,
                            cy::packed_bits<float>(cy::column<"ybits">, label_bits) >> cy::column<"y">);
  for (std::uint64_t e = 0; e < 2; ++e) {
    auto a = collect(from_tsv, e), b = collect(from_npy, e), c = collect(from_h5, e);
    CHECK(a.batches == (records + 63) / 64);
    CHECK(a.indices.size() == records);
    CHECK(a.indices == b.indices);
    CHECK(a.indices == c.indices);
    // Byte-identical, not merely equal as floats.
    REQUIRE(a.x.size() == b.x.size());
    CHECK(std::memcmp(a.x.data(), b.x.data(), a.x.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(a.y.data(), b.y.data(), a.y.size() * sizeof(float)) == 0);
    REQUIRE(a.x.size() == c.x.size());
    CHECK(std::memcmp(a.x.data(), c.x.data(), a.x.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(a.y.data(), c.y.data(), a.y.size() * sizeof(float)) == 0);
    float ones = 0;
    for (float v : a.y) ones += v;
    CHECK(ones > records * 5);  // the labels are not all zero: the comparison means something
  }
}

TEST_CASE("packed_bits over a column of the wrong width is an error naming the column and both widths") {
  dea_files files;
  auto pipe = cy::npy_source<cy::dense<"bits", std::uint8_t>>(files.features_npy) | cy::batch(64) |
              cy::decode(cy::packed_bits<float>(cy::column<"bits">, 1036) >> cy::column<"x">);
  CHECK_THROWS_WITH_AS(
      [&] {
        for (auto& b : pipe.epoch(0)) (void)b;
      }(),
      doctest::Contains("column 'bits' has 128 bytes per row; packed_bits(1036) reads 130"), cy::stage_error);
}

TEST_CASE("a TSV that lacks a decoded field fails when the epoch starts, naming the file and its fields") {
  cy::test::temp_dir dir("dea-fields");
  auto path = dir.file("short.tsv", "GivenName\tSurname\n");  // a header and no records
  auto pipe = cy::tsv_file(path) | cy::batch(8) | cy::decode(cy::bits<float>("bloomfilter", 8) >> cy::column<"x">);
  CHECK_THROWS_WITH_AS(pipe.epoch(0), doctest::Contains("no field named 'bloomfilter' (fields: GivenName, Surname)"),
                       cy::stage_error);
}
