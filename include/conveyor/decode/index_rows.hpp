// conveyor/decode/index_rows.hpp: the format of an index-list column, a
// record's set of labels as a fixed-width row of int32 indices padded with
// no_index.
//
// two_gram_indices writes such rows (ascending); multi_hot (host) and
// gpu::expand_multi_hot (device) expand them into multi-hot rows. A source or
// decoder of your own that writes index rows pads them with no_index. A
// header of its own, with nothing but <cstdint>, so a .cu file can name it.
#pragma once

#include <cstdint>

namespace conveyor {

/// The padding of an index-list row: no value (-1; every real index is >= 0).
inline constexpr std::int32_t no_index = -1;

}  // namespace conveyor
