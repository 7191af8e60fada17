// Fuzzes conveyor/decode/two_gram.hpp: arbitrary bytes split into fields at tabs
// must never crash; float and uint8 labels agree; the one-field form on the
// concatenation agrees with the multi-field form; a failure is invalid UTF-8;
// the ASCII fast path agrees with the general code-point walk.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/decode/two_gram.hpp"

namespace {
namespace cy = conveyor;
void require(bool condition) {
  if (!condition) std::abort();
}
const cy::gram_alphabet& latin1_alphabet() {
  static const cy::gram_alphabet alphabet{"ab", "\u00e9\u00e9", "k1", "\t\u00a0", "\u00ff\u00df", "i\u00e5"};
  return alphabet;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields;
  std::string joined;
  for (std::size_t start = 0;;) {
    const std::size_t tab = text.find('\t', start);
    fields.push_back(text.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    joined += fields.back();
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  for (const cy::gram_alphabet* alphabet : {&cy::dea_alphabet(), &latin1_alphabet()}) {
    std::vector<float> floats(alphabet->size(), 5.0f);
    std::vector<std::uint8_t> bytes(alphabet->size(), 5), joined_bytes(alphabet->size(), 5);
    const auto float_status = cy::try_encode_two_grams(fields, std::span<float>(floats), *alphabet);
    const auto byte_status = cy::try_encode_two_grams(fields, std::span<std::uint8_t>(bytes), *alphabet);
    const auto joined_status = cy::try_encode_two_grams(joined, std::span<std::uint8_t>(joined_bytes), *alphabet);
    require(float_status.code == byte_status.code && float_status.field == byte_status.field &&
            float_status.position == byte_status.position);
    require(float_status.ok() || float_status.code == cy::decode_errc::invalid_utf8);
    for (std::size_t i = 0; i < floats.size(); ++i) {
      require(floats[i] == 0.0f || floats[i] == 1.0f);
      require(floats[i] == static_cast<float>(bytes[i]));
    }
    // The ASCII fast path, where it applies, writes what the code-point walk writes.
    std::vector<float> fast(alphabet->size(), 5.0f), general(alphabet->size(), 5.0f);
    if (cy::detail::encode_two_grams_ascii(std::span<const std::string_view>(fields), fast.data(), *alphabet)) {
      require(cy::detail::encode_two_grams_general(std::span<const std::string_view>(fields), general.data(),
                                                   *alphabet)
                  .ok());
      require(fast == general);
    }
    // Splitting at field boundaries cannot turn valid UTF-8 invalid; it can only
    // cut a sequence, which the joined text may still hold whole.
    if (joined_status.ok() == float_status.ok() && float_status.ok()) require(bytes == joined_bytes);
    if (joined_status.ok() != float_status.ok()) require(joined_status.ok() || !float_status.ok());
  }
  return 0;
}
