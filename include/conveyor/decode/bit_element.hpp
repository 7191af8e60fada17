// conveyor/decode/bit_element.hpp: the element types a bit decoder writes,
// the concept bit_element that bits, packed_bits, two_grams, int_set,
// multi_hot and the gpu:: expanders constrain their element type with.
//
// A header of its own, with nothing but core/half.hpp, so a decoder of your
// own (docs/extending.md) and a .cu file can name the concept without the
// host kernels. The encodings of 0 and 1 in each type are machinery
// (decode/detail/bit_values.hpp).
#pragma once

#include <concepts>
#include <cstdint>

#include "conveyor/core/half.hpp"

namespace conveyor {

/// Element types the bit decoders can write: 0/1 as float, float16, bfloat16 or uint8.
template <class T>
concept bit_element = std::same_as<T, float> || std::same_as<T, float16> ||
    std::same_as<T, bfloat16> || std::same_as<T, std::uint8_t>;

}  // namespace conveyor
