// conveyor/core/fixed_string.hpp: strings usable as template arguments.
//
// Column names are part of a batch's type, so a stage that needs a column
// upstream does not produce fails to compile. `column<"x">` names a column.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

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
  using column_name_type = column_name;  ///< marks the type (see the concept column_name_type)
  [[nodiscard]] static constexpr std::string_view view() noexcept { return Name.view(); }
};

template <fixed_string Name>
inline constexpr column_name<Name> column{};

/// A column_name<...> type, the type of `column<"x">`. A function taking a
/// column name takes a parameter of a type C with this constraint and reads
/// `C::name`, rather than deducing `Name` from a `column_name<Name>`
/// parameter: nvcc 13.0 cannot deduce a template argument whose type is
/// itself deduced (the fixed_string<N> of `Name`), so such a call does not
/// compile in a .cu file (docs/gpu.md).
/// (Checked by a member type, not as `std::same_as<C, column_name<C::name>>`,
/// which nvcc 13.0 evaluates to false in a concept.)
template <class C>
concept column_name_type =
    std::same_as<typename std::remove_cvref_t<C>::column_name_type, std::remove_cvref_t<C>>;

namespace detail {

/// A name spelled out as characters, for compile errors.
template <char... Characters>
struct spelled {};
template <fixed_string Name, std::size_t... I>
spelled<Name.chars[I]...> spell(std::index_sequence<I...>);  // declared only: named in decltype

/// How compile errors show a column name: an error template takes this type
/// where it would take the name. clang 14 prints a fixed_string template
/// argument as an array of integers ({{102, 101, ...}}) but a character pack
/// as characters (spelled<'f', 'e', ...>); g++ prints a fixed_string as text
/// (column_name<fixed_string<9>{"features"}>).
#if defined(__clang__)
template <fixed_string Name>
using readable_name = decltype(spell<Name>(std::make_index_sequence<Name.size()>{}));
#else
template <fixed_string Name>
using readable_name = column_name<Name>;
#endif

}  // namespace detail

}  // namespace conveyor
