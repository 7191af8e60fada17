// conveyor/decode/gram_alphabet.hpp: the list of two-grams a label vector
// indexes, with O(1) lookup of a pair of characters.
//
// A gram is two characters, each a code point in U+0000..U+00FF (ASCII and
// Latin-1), given as UTF-8 text. Lookup goes through a 65536-entry table indexed
// by (first << 8 | second): built at compile time for the DEA alphabet, once at
// construction for a user alphabet, never a search per gram.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/decode/detail/utf8.hpp"

namespace conveyor {

namespace detail {

/// Table entry for a pair that is not in the alphabet.
inline constexpr std::uint16_t absent_gram = 0xFFFF;
using gram_table = std::array<std::uint16_t, 65536>;

/// The DEA alphabet's table: aa..zz at 26*i+j, a0..z9 at 676+10*l+d, 00..99 at 936+10*a+b.
consteval gram_table make_dea_gram_table() {
  gram_table table{};
  for (auto& entry : table) entry = absent_gram;
  for (unsigned first = 0; first < 26; ++first) {
    for (unsigned second = 0; second < 26; ++second)
      table[('a' + first) << 8 | ('a' + second)] = static_cast<std::uint16_t>(26 * first + second);
    for (unsigned digit = 0; digit < 10; ++digit)
      table[('a' + first) << 8 | ('0' + digit)] = static_cast<std::uint16_t>(676 + 10 * first + digit);
  }
  for (unsigned first = 0; first < 10; ++first)
    for (unsigned second = 0; second < 10; ++second)
      table[('0' + first) << 8 | ('0' + second)] = static_cast<std::uint16_t>(936 + 10 * first + second);
  return table;
}

inline constexpr gram_table dea_gram_table = make_dea_gram_table();

}  // namespace detail

/// An ordered list of distinct two-grams; gram i is label column i.
/// Immutable after construction; copies share the lookup table; all const
/// members are thread-safe.
class gram_alphabet {
 public:
  /// Builds an alphabet from UTF-8 grams (allocates the 128 KiB table once).
  /// Throws std::invalid_argument when a gram is not exactly two code points in
  /// U+0000..U+00FF, when a gram repeats, or with 65535 grams or more.
  /// Grams are matched against lowercased text: a gram with an uppercase letter
  /// or a space never matches (as in the Python original).
  explicit gram_alphabet(std::span<const std::string_view> grams) {
    if (grams.size() >= detail::absent_gram) throw std::invalid_argument("gram_alphabet: too many grams");
    auto table = std::make_shared<detail::gram_table>();
    table->fill(detail::absent_gram);
    grams_.reserve(grams.size());
    for (std::size_t index = 0; index < grams.size(); ++index) {
      const auto key = key_of(grams[index]);
      if (!key) {
        throw std::invalid_argument("gram_alphabet: gram " + std::to_string(index) + " (\"" +
                                    std::string(grams[index]) +
                                    "\") is not two characters in U+0000..U+00FF");
      }
      auto& entry = (*table)[*key];
      if (entry != detail::absent_gram) {
        throw std::invalid_argument("gram_alphabet: gram " + std::to_string(index) + " (\"" +
                                    std::string(grams[index]) + "\") repeats gram " +
                                    std::to_string(entry));
      }
      entry = static_cast<std::uint16_t>(index);
      grams_.emplace_back(grams[index]);
    }
    table_ = table->data();
    owned_table_ = std::move(table);
  }
  gram_alphabet(std::initializer_list<std::string_view> grams)
      : gram_alphabet(std::span<const std::string_view>(grams.begin(), grams.size())) {}

  /// The DEA attack's 1036 grams; its table is a compile-time constant.
  static const gram_alphabet& dea() {
    static const gram_alphabet alphabet{dea_tag{}};
    return alphabet;
  }

  [[nodiscard]] std::size_t size() const noexcept { return grams_.size(); }
  /// Gram i as UTF-8 (i < size()).
  [[nodiscard]] std::string_view gram(std::size_t index) const noexcept { return grams_[index]; }
  /// Column of a UTF-8 gram, if it is in the alphabet. No allocation.
  [[nodiscard]] std::optional<std::size_t> index_of(std::string_view gram) const noexcept {
    const auto key = key_of(gram);
    if (!key || table_[*key] == detail::absent_gram) return std::nullopt;
    return table_[*key];
  }
  /// Column of the pair (first, second) of code points < 0x100, or
  /// detail::absent_gram. The encoder's hot path: one load.
  [[nodiscard]] std::uint16_t lookup(unsigned first, unsigned second) const noexcept {
    return table_[first << 8 | second];
  }

 private:
  struct dea_tag {};
  explicit gram_alphabet(dea_tag) : table_(detail::dea_gram_table.data()) {
    grams_.resize(1036);
    for (unsigned key = 0; key < detail::dea_gram_table.size(); ++key) {
      const std::uint16_t index = detail::dea_gram_table[key];
      if (index != detail::absent_gram) grams_[index] = {static_cast<char>(key >> 8), static_cast<char>(key & 0xFF)};
    }
  }

  /// (first << 8 | second) for a gram of two code points < 0x100, else nullopt.
  static std::optional<unsigned> key_of(std::string_view gram) noexcept {
    const auto* bytes = reinterpret_cast<const unsigned char*>(gram.data());
    unsigned key = 0;
    std::size_t position = 0;
    for (int character = 0; character < 2; ++character) {
      if (position >= gram.size()) return std::nullopt;
      char32_t code_point = 0;
      const std::size_t length = detail::decode_utf8_code_point(bytes + position, gram.size() - position, code_point);
      if (length == 0 || code_point > 0xFF) return std::nullopt;
      key = key << 8 | static_cast<unsigned>(code_point);
      position += length;
    }
    if (position != gram.size()) return std::nullopt;
    return key;
  }

  std::vector<std::string> grams_;
  std::shared_ptr<const detail::gram_table> owned_table_;  // empty for the DEA alphabet
  const std::uint16_t* table_ = nullptr;
};

/// The DEA alphabet (same as gram_alphabet::dea()).
inline const gram_alphabet& dea_alphabet() { return gram_alphabet::dea(); }

}  // namespace conveyor
