// conveyor/source/detail/row_gather.hpp: the batch-read machinery shared by the
// binary sources: validate a batch, order it by storage position, copy rows.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace conveyor::detail {

static_assert(std::endian::native == std::endian::little,
              "conveyor's binary sources hand out little-endian rows and assume a little-endian host");

// One requested row: where it lives in storage and where it goes in the output.
struct row_request {
  std::uint64_t index;
  std::uint64_t position;
};

// Throws std::out_of_range / std::invalid_argument: these are caller bugs, not
// bad data, so they stay out of the data_error skip policy.
inline void check_indices(std::span<const std::uint64_t> indices, std::uint64_t records,
                          const std::string& name) {
  for (auto index : indices)
    if (index >= records)
      throw std::out_of_range(name + ", record " + std::to_string(index) +
                              ": record index out of range (the source holds " +
                              std::to_string(records) + " records)");
}

inline void check_batch(std::span<const std::uint64_t> indices, std::size_t out_bytes,
                        std::uint64_t record_bytes, std::uint64_t records, const std::string& name) {
  if (out_bytes != indices.size() * record_bytes)
    throw std::invalid_argument(name + ": output holds " + std::to_string(out_bytes) +
                                " bytes, a batch of " + std::to_string(indices.size()) +
                                " records needs " + std::to_string(indices.size() * record_bytes));
  check_indices(indices, records, name);
}

// The batch in storage order; ties keep the caller's order so duplicates work.
inline std::vector<row_request> storage_order(std::span<const std::uint64_t> indices) {
  std::vector<row_request> requests(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) requests[i] = {indices[i], i};
  if (!std::is_sorted(indices.begin(), indices.end()))
    std::stable_sort(requests.begin(), requests.end(),
                     [](const row_request& a, const row_request& b) { return a.index < b.index; });
  return requests;
}

// Copies rows from a contiguous row-major store in the storage order of
// `requests` (from storage_order); a run consecutive both in storage and in the
// output is one memcpy. Sources with several columns order a batch once and
// gather every column with it.
inline void gather_rows(const std::byte* rows, std::uint64_t record_bytes,
                        std::span<const row_request> requests, std::span<std::byte> out) {
  if (requests.empty() || record_bytes == 0) return;
  std::size_t begin = 0;
  while (begin < requests.size()) {
    std::size_t end = begin + 1;
    while (end < requests.size() && requests[end].index == requests[end - 1].index + 1 &&
           requests[end].position == requests[end - 1].position + 1)
      ++end;
    std::memcpy(out.data() + requests[begin].position * record_bytes,
                rows + requests[begin].index * record_bytes, (end - begin) * record_bytes);
    begin = end;
  }
}

// gather_rows for a batch of record indices in any order.
inline void gather_rows(const std::byte* rows, std::uint64_t record_bytes,
                        std::span<const std::uint64_t> indices, std::span<std::byte> out) {
  if (indices.empty() || record_bytes == 0) return;
  gather_rows(rows, record_bytes, storage_order(indices), out);
}

// Reverses the bytes of each element in place (big-endian storage -> native).
inline void byteswap_elements(std::span<std::byte> bytes, std::size_t element_bytes) {
  if (element_bytes <= 1) return;
  for (std::size_t at = 0; at + element_bytes <= bytes.size(); at += element_bytes)
    std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                 bytes.begin() + static_cast<std::ptrdiff_t>(at + element_bytes));
}

// bool elements read from storage may hold any byte; make them valid bools.
inline void normalize_bools(std::span<std::byte> bytes) {
  for (auto& byte : bytes) byte = byte == std::byte{0} ? std::byte{0} : std::byte{1};
}

// A run of consecutive rows read with one selection block.
struct row_span {
  std::uint64_t first;
  std::uint64_t count;
};

// Coalesces sorted unique rows into spans. Consecutive rows always join; rows
// separated by a gap join too when both lie in the same storage chunk of
// `chunk_rows` rows (0: not chunked) and the gap is at most `max_gap_rows`,
// because the chunk is fetched whole anyway and one block is cheaper to select
// than two.
inline std::vector<row_span> coalesce_rows(std::span<const std::uint64_t> rows,
                                           std::uint64_t chunk_rows, std::uint64_t max_gap_rows) {
  std::vector<row_span> spans;
  for (auto row : rows) {
    if (!spans.empty()) {
      auto& last = spans.back();
      const auto end = last.first + last.count;
      const bool adjacent = row == end;
      const bool same_chunk = chunk_rows > 0 && row / chunk_rows == (end - 1) / chunk_rows;
      if (adjacent || (same_chunk && row - end <= max_gap_rows)) {
        last.count = row - last.first + 1;
        continue;
      }
    }
    spans.push_back({row, 1});
  }
  return spans;
}

}  // namespace conveyor::detail
