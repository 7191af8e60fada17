// conveyor/source/element_type.hpp: the numeric element types binary sources
// hold (.npy, fixed-width records, HDF5), their sizes and names, and the C++
// type that matches each one for typed reads and dense columns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "conveyor/core/half.hpp"

namespace conveyor {

/// The element type of a numeric record, always stored little-endian in memory
/// once a source has read it.
enum class element_type : std::uint8_t {
  boolean,  ///< one byte, 0 or 1 (numpy `|b1`)
  int8,
  uint8,
  int16,
  uint16,
  int32,
  uint32,
  int64,
  uint64,
  float16,  ///< IEEE half, read as conveyor::float16 (core/half.hpp)
  float32,
  float64,
};

/// Size of one element in bytes. Constant time, no allocation.
constexpr std::size_t element_size(element_type type) noexcept {
  switch (type) {
    case element_type::boolean:
    case element_type::int8:
    case element_type::uint8: return 1;
    case element_type::int16:
    case element_type::uint16:
    case element_type::float16: return 2;
    case element_type::int32:
    case element_type::uint32:
    case element_type::float32: return 4;
    case element_type::int64:
    case element_type::uint64:
    case element_type::float64: return 8;
  }
  return 0;
}

/// A readable name ("float32", "uint8", "bool") for messages and docs.
constexpr std::string_view element_type_name(element_type type) noexcept {
  switch (type) {
    case element_type::boolean: return "bool";
    case element_type::int8: return "int8";
    case element_type::uint8: return "uint8";
    case element_type::int16: return "int16";
    case element_type::uint16: return "uint16";
    case element_type::float16: return "float16";
    case element_type::int32: return "int32";
    case element_type::uint32: return "uint32";
    case element_type::float32: return "float32";
    case element_type::int64: return "int64";
    case element_type::uint64: return "uint64";
    case element_type::float64: return "float64";
  }
  return "unknown";
}

namespace detail {
template <class T>
struct element_type_of_impl {};
template <> struct element_type_of_impl<bool> { static constexpr element_type value = element_type::boolean; };
template <> struct element_type_of_impl<std::int8_t> { static constexpr element_type value = element_type::int8; };
template <> struct element_type_of_impl<std::uint8_t> { static constexpr element_type value = element_type::uint8; };
template <> struct element_type_of_impl<std::int16_t> { static constexpr element_type value = element_type::int16; };
template <> struct element_type_of_impl<std::uint16_t> { static constexpr element_type value = element_type::uint16; };
template <> struct element_type_of_impl<std::int32_t> { static constexpr element_type value = element_type::int32; };
template <> struct element_type_of_impl<std::uint32_t> { static constexpr element_type value = element_type::uint32; };
template <> struct element_type_of_impl<std::int64_t> { static constexpr element_type value = element_type::int64; };
template <> struct element_type_of_impl<std::uint64_t> { static constexpr element_type value = element_type::uint64; };
template <> struct element_type_of_impl<float16> { static constexpr element_type value = element_type::float16; };
template <> struct element_type_of_impl<float> { static constexpr element_type value = element_type::float32; };
template <> struct element_type_of_impl<double> { static constexpr element_type value = element_type::float64; };
}  // namespace detail

/// A C++ type a typed read can fill: bool, the fixed-width integers,
/// conveyor::float16, float, double.
template <class T>
concept numeric_element = requires { detail::element_type_of_impl<std::remove_cv_t<T>>::value; };

/// The element type matching the C++ type `T`, e.g. `element_type_of<float>`.
template <numeric_element T>
inline constexpr element_type element_type_of = detail::element_type_of_impl<std::remove_cv_t<T>>::value;

/// The shape and element type of one record of a source: a source of `size()`
/// records holds an array of shape `[size(), shape...]`.
struct record_layout {
  element_type dtype = element_type::uint8;
  std::vector<std::uint64_t> shape;  ///< per-record dimensions; empty for a scalar record

  /// Elements in one record (1 for a scalar record).
  [[nodiscard]] std::uint64_t elements() const noexcept {
    std::uint64_t count = 1;
    for (auto dim : shape) count *= dim;
    return count;
  }
  /// Bytes in one record.
  [[nodiscard]] std::uint64_t bytes() const noexcept { return elements() * element_size(dtype); }
};

}  // namespace conveyor
