// Fuzzes conveyor/decode/int_set.hpp: no crash or UB on arbitrary bytes, and the
// three output forms agree with each other (list, caller span, multi-hot row).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "conveyor/decode/int_set.hpp"

namespace {
namespace cy = conveyor;
void require(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::int64_t> values;
  const auto listed = cy::try_parse_int_set(text, values);
  require(listed.ok() || listed.position <= size);

  std::vector<std::int64_t> span_storage(8);
  std::size_t count = 0;
  const auto spanned = cy::try_parse_int_set(text, span_storage, count);
  if (listed.ok() && values.size() <= span_storage.size()) {
    require(spanned.ok() && count == values.size() && std::equal(values.begin(), values.end(), span_storage.begin()));
  } else if (!listed.ok() && spanned.code != cy::decode_errc::too_many_values) {
    require(spanned.code == listed.code && spanned.position == listed.position);
  }

  constexpr std::size_t width = 64;
  std::vector<std::uint8_t> row(width, 7);
  const auto hot = cy::try_parse_int_set_multi_hot(text, std::span<std::uint8_t>(row));
  if (listed.ok()) {
    const bool all_inside = std::all_of(values.begin(), values.end(), [](auto v) { return v >= 0 && v < 64; });
    require(hot.ok() == all_inside);
    if (all_inside) {
      for (std::size_t i = 0; i < width; ++i)
        require(row[i] == (std::find(values.begin(), values.end(), static_cast<std::int64_t>(i)) != values.end()));
    }
  } else if (hot.code != cy::decode_errc::value_out_of_range || listed.code == cy::decode_errc::value_out_of_range) {
    require(hot.code == listed.code);
  }
  // The throwing form throws data_error exactly when the status says so.
  try {
    cy::parse_int_set(text, values, cy::error_location{"fuzz", 0, 0});
    require(listed.ok());
  } catch (const cy::data_error& e) {
    require(!listed.ok() && e.where().offset == listed.position);
  }
  return 0;
}
