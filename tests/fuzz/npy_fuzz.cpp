// libFuzzer target for the .npy reader: the whole-file header parser and size
// checks, then a batch read of the first and last records with byte swapping,
// then a round trip of the parsed header through the writer's formatter.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "conveyor/core/error.hpp"
#include "conveyor/source/detail/npy_header.hpp"
#include "conveyor/source/detail/row_gather.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  const std::string name = "fuzz.npy";
  conveyor::detail::npy_header header;
  try {
    header = conveyor::detail::parse_npy_file(file, name);
  } catch (const conveyor::data_error& error) {
    if (error.where().offset != conveyor::unknown_position && error.where().offset > size) std::abort();
    return 0;
  }
  const auto records = header.shape[0];
  if (header.data_offset + header.data_bytes != size) std::abort();
  if (records > 0 && header.data_bytes / records <= (1u << 16)) {
    const auto record_bytes = header.data_bytes / records;
    const std::vector<std::uint64_t> indices{records - 1, 0};
    std::vector<std::byte> out(indices.size() * record_bytes);
    conveyor::detail::check_batch(indices, out.size(), record_bytes, records, name);
    conveyor::detail::gather_rows(file.data() + header.data_offset, record_bytes, indices, out);
    if (header.big_endian) conveyor::detail::byteswap_elements(out, element_size(header.dtype));
  }
  const auto framed = conveyor::detail::frame_npy_header(
      conveyor::detail::format_npy_header(header.dtype, header.shape));
  std::vector<std::byte> rewritten(framed.size() + header.data_bytes);
  std::memcpy(rewritten.data(), framed.data(), framed.size());
  const auto again = conveyor::detail::parse_npy_file(rewritten, name);
  if (again.shape != header.shape || again.dtype != header.dtype || again.big_endian) std::abort();
  return 0;
}
