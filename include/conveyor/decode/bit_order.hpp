// conveyor/decode/bit_order.hpp: where value i of a packed bit row sits in
// its byte, the order argument of unpack_bits, unpack_bit_rows and
// gpu::unpack_bits.
//
// A header of its own, with nothing but <cstdint>, so a .cu file and the
// device-side helpers in decode/detail/ can name it without the host kernels.
#pragma once

#include <cstdint>

namespace conveyor {

/// Where value i of a packed row sits within byte i / 8 (numpy.packbits'
/// `bitorder`).
enum class bit_order : std::uint8_t {
  big,     ///< value i is bit 7 - i % 8 (the most significant bit first); numpy's default
  little,  ///< value i is bit i % 8 (the least significant bit first)
};

}  // namespace conveyor
