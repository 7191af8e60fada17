// docs/decoders.md: the decoders' kernels called directly (bits, packed bits,
// two-gram labels, integer sets), and the DEA features decoded from packed
// .npy files in a pipeline. Self-contained: it writes the .npy files it reads.
#include <unistd.h>

#include <array>
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/bits.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/decode/int_set.hpp>
#include <conveyor/decode/packed_bits.hpp>
#include <conveyor/decode/two_gram.hpp>
#include <conveyor/source/npy.hpp>
#include <conveyor/source/npy_source.hpp>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace cy = conveyor;

// The functions below are laid out as docs/decoders.md quotes them.
// clang-format off
namespace {
bool ok = true;
void report(std::size_t position) {
  std::cout << "bad character at " << position << '\n';
  ok = false;
}
struct dea_row {
  std::string bloomfilter;
};

void bits_kernels(const dea_row& row, std::uint64_t record, std::uint64_t field_offset,
                  std::string_view text, const cy::error_location& where) {
  std::vector<float> x(1024);
  cy::decode_bit_string(row.bloomfilter, std::span<float>(x),
                        cy::error_location{"train.tsv", record, field_offset});

  std::vector<cy::bfloat16> h(1024);                     // or cy::float16, std::uint8_t
  if (auto st = cy::try_decode_bit_string(text, std::span<cy::bfloat16>(h)); !st)
    report(st.position);

  std::vector<std::uint8_t> packed(128);                 // 1024 bits -> 128 bytes
  cy::pack_bit_string(text, packed, where);               // numpy.packbits order
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(x), where);
  ok = ok && x[0] == 1.0f && x[1] == 0.0f;
}

void packed_bits_kernels(const std::vector<std::uint8_t>& packed,
                         const std::vector<std::uint8_t>& batch_bytes,
                         std::vector<cy::bfloat16>& batch_x) {
  // One 1024-bit filter, 128 bytes, as np.packbits(bits) wrote it:
  std::vector<float> x(1024);
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(x));
  // np.packbits(bits, bitorder="little"):
  cy::unpack_bits(std::span<const std::uint8_t>(packed), std::span<float>(x), cy::bit_order::little);
  // A batch: np.packbits(rows_x_bits, axis=-1) is rows x 128 bytes -> rows x 1024 values.
  cy::unpack_bit_rows(std::span<const std::uint8_t>(batch_bytes), std::span<cy::bfloat16>(batch_x), 1024);
}

void two_gram_kernels(std::uint64_t record, const std::vector<float>& scores) {
  const std::array<std::string_view, 3> fields{"Maria", "Taylor", "6/16/1937"};
  std::vector<float> y(cy::dea_alphabet().size());         // 1036; no need to zero
  cy::encode_two_grams(fields, std::span<float>(y), cy::error_location{"train.tsv", record});
  // y has ones at 17, 19, 24, 208, ... 1029 (README row 1)

  auto top = cy::top_k_grams(scores, 10);                   // [{index, gram, score}], best first
  auto hits = cy::grams_above(scores, 0.5f);                // alphabet order

  cy::gram_alphabet mine{"ab", "\u00e9t", "k1"};            // user alphabet (UTF-8 grams)
  std::vector<std::uint8_t> row(mine.size());
  cy::try_encode_two_grams(fields, std::span<std::uint8_t>(row), mine);
  ok = ok && y[17] == 1.0f && y[1029] == 1.0f && top.size() == 10 && hits.size() <= scores.size();
}

void int_set_kernels(std::string_view field, const cy::error_location& where) {
  std::vector<std::int64_t> values;
  cy::parse_int_set("{628739, 459782}", values, where);         // {628739, 459782}

  std::vector<float> row(2'100'000);
  cy::parse_int_set_multi_hot(field, std::span<float>(row), where); // zeroes row, sets 1s
  ok = ok && values.size() == 2 && row[628739] == 1.0f;
}

// clang-format on

// features.npy: uint8 (n, 128), 1024 packed bits; labels.npy: uint8 (n, 130),
// 1036 packed bits (the last byte's 4 low bits are padding, zero).
void write_packed_arrays(std::uint64_t n) {
  std::vector<std::uint8_t> features(n * 128), labels(n * 130);
  for (std::size_t i = 0; i < features.size(); ++i) features[i] = static_cast<std::uint8_t>(i * 7);
  for (std::size_t i = 0; i < labels.size(); ++i)
    labels[i] = i % 130 == 129 ? 0x50 : static_cast<std::uint8_t>(i * 3);
  const std::uint64_t feature_shape[] = {n, 128}, label_shape[] = {n, 130};
  cy::write_npy("features.npy", cy::element_type::uint8, feature_shape,
                std::as_bytes(std::span(features)));
  cy::write_npy("labels.npy", cy::element_type::uint8, label_shape,
                std::as_bytes(std::span(labels)));
}
}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("conveyor-docs-decoder-kernels-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir);

  std::string bits(1024, '0');
  bits[0] = '1';
  bits_kernels({bits}, 7, 1000, bits, cy::error_location{"train.tsv", 7, 1000});
  std::vector<std::uint8_t> packed(128, 0x80), batch_bytes(4 * 128, 0xff);
  std::vector<cy::bfloat16> batch_x(4 * 1024);
  packed_bits_kernels(packed, batch_bytes, batch_x);
  two_gram_kernels(1, std::vector<float>(cy::dea_alphabet().size(), 0.25f));
  int_set_kernels("{628739, 459782}", cy::error_location{"train.tsv", 3});

  write_packed_arrays(300);
  // Laid out as docs/decoders.md quotes it.
  // clang-format off
  auto from_npy = cy::npy_source<cy::dense<"bits", std::uint8_t>, cy::dense<"ybits", std::uint8_t>>(
                      {"features.npy", "labels.npy"}) | cy::shuffle(42) | cy::batch(256) |
                  cy::decode(cy::packed_bits<float>(cy::column<"bits">, 1024) >> cy::column<"x">,
                             cy::packed_bits<float>(cy::column<"ybits">, 1036) >> cy::column<"y">);
  // clang-format on
  std::uint64_t rows = 0;
  for (auto& batch : from_npy.epoch(0)) {
    rows += batch.rows();
    ok = ok && batch.get<"x">().width() == 1024 && batch.get<"y">().width() == 1036;
  }
  std::filesystem::current_path(previous);
  std::filesystem::remove_all(dir);
  std::cout << "decoder kernels: " << (ok && rows == 300 ? "ok" : "WRONG") << '\n';
  return ok && rows == 300 ? 0 : 1;
}
