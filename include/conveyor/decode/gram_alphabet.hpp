// conveyor/decode/gram_alphabet.hpp: the list of two-grams a label vector
// indexes, with O(1) lookup of a pair of characters.
//
// A gram is two characters, each a code point in U+0000..U+00FF (ASCII and
// Latin-1), given as UTF-8 text. Lookup goes through a 65536-entry table indexed
// by (first << 8 | second), built once at construction (for the DEA alphabet on
// the first call of dea()), never a search per gram.
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

  /// The DEA attack's 1036 grams (aa..zz, a0..z9, 00..99); built on the first
  /// call (thread-safe), then shared.
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
  // Built at run time, not as a constexpr table: evaluating 65536 entries at
  // compile time cost every translation unit including this header 0.4 s.
  explicit gram_alphabet(dea_tag) {
    auto table = std::make_shared<detail::gram_table>();
    table->fill(detail::absent_gram);
    grams_.reserve(1036);
    const auto add = [&](char first, char second) {
      (*table)[static_cast<unsigned>(first) << 8 | static_cast<unsigned>(second)] =
          static_cast<std::uint16_t>(grams_.size());
      grams_.push_back({first, second});
    };
    for (char first = 'a'; first <= 'z'; ++first)
      for (char second = 'a'; second <= 'z'; ++second) add(first, second);
    for (char first = 'a'; first <= 'z'; ++first)
      for (char digit = '0'; digit <= '9'; ++digit) add(first, digit);
    for (char first = '0'; first <= '9'; ++first)
      for (char second = '0'; second <= '9'; ++second) add(first, second);
    table_ = table->data();
    owned_table_ = std::move(table);
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
  std::shared_ptr<const detail::gram_table> owned_table_;
  const std::uint16_t* table_ = nullptr;
};

/// The DEA alphabet (same as gram_alphabet::dea()).
inline const gram_alphabet& dea_alphabet() { return gram_alphabet::dea(); }

}  // namespace conveyor
