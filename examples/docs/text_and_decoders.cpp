// docs/source-delimited.md and docs/decoders.md: the delimited reader and the
// decoders used directly, without a pipeline.
#include <conveyor/decode/bits.hpp>
#include <conveyor/decode/int_set.hpp>
#include <conveyor/decode/two_gram.hpp>
#include <conveyor/source/delimited.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace cy = conveyor;

int main() {
  auto dir = std::filesystem::temp_directory_path() / ("conveyor-docs-text-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "people.tsv";
  std::ofstream(path) << "GivenName\tSurname\tBirthday\tbloomfilter\tuid\n"
                      << "Maria\tTaylor\t6/16/1937\t01100001\t1\n"
                      << "\"Rene \"\"R\"\"\"\tMiles\t2/14/1970\t10000000\t2\n";

  cy::delimited_options options;           // TSV, Python csv quoting
  options.index_directory = dir;           // the record index sidecar goes here
  cy::delimited_file file(path, options);
  const std::size_t bits_column = file.column_index("bloomfilter");

  cy::field_table table;                   // caller-owned, reused across reads
  std::vector<std::uint64_t> rows{1, 0};
  file.read(rows, table);                  // table row k holds record rows[k]
  bool ok = table.field(0, 0) == "Rene \"R\"" && table.field(1, 0) == "Maria";

  // '0'/'1' string -> floats (AVX2 when available); errors name file, record, offset.
  std::vector<float> x(8);
  cy::decode_bit_string(table.field(1, bits_column), std::span<float>(x),
                        cy::error_location{file.path(), table.record_index(1), table.byte_offset(1)});
  ok &= x[1] == 1.0f && x[0] == 0.0f;

  // Two-gram multi-hot label over the name and birthday fields (DEA alphabet, 1036 grams).
  std::vector<float> y(cy::gram_alphabet::dea().size());
  auto fields = table.row(1).first(3);
  ok &= static_cast<bool>(cy::try_encode_two_grams(fields, std::span<float>(y)));
  auto present = cy::grams_above(y, 0.5f);
  ok &= present.size() == 16;  // "mariataylor6161937" has 16 distinct grams

  // An integer set -> values, and a malformed one -> a status with its position.
  std::vector<std::int64_t> values;
  ok &= static_cast<bool>(cy::try_parse_int_set("{628739, 459782}", values)) && values.size() == 2;
  ok &= !cy::try_parse_int_set("{12, x}", values);

  std::filesystem::remove_all(dir);
  std::printf("text and decoders: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
