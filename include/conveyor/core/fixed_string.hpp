// conveyor/core/fixed_string.hpp: strings usable as template arguments.
//
// Column names are part of a batch's type, so a stage that needs a column
// upstream does not produce fails to compile. `column<"x">` names a column.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace conveyor {

template <std::size_t N>
struct fixed_string {
  char chars[N]{};

  constexpr fixed_string(const char (&text)[N]) noexcept { std::copy_n(text, N, chars); }  // NOLINT

  [[nodiscard]] constexpr std::string_view view() const noexcept { return {chars, N - 1}; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return N - 1; }

  template <std::size_t M>
  constexpr bool operator==(const fixed_string<M>& other) const noexcept {
    return view() == other.view();
  }
};

/// A column name as a value: `column<"x">`. Used to name decoder outputs and
/// to select columns.
template <fixed_string Name>
struct column_name {
  static constexpr auto name = Name;
  [[nodiscard]] static constexpr std::string_view view() noexcept { return Name.view(); }
};

template <fixed_string Name>
inline constexpr column_name<Name> column{};

}  // namespace conveyor
