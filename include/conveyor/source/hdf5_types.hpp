// conveyor/source/hdf5_types.hpp: what an HDF5 dataset holds, in conveyor's
// terms: hdf5_dataset::content() and, for compound datasets,
// hdf5_dataset::fields() (see hdf5.hpp and docs/source-binary.md).
//
// A header of its own, without <hdf5.h>, so code that only inspects these
// descriptions (a layout check, a struct generator) can name them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conveyor/source/element_type.hpp"

namespace conveyor {

/// What the elements of an HDF5 dataset (or compound field) are.
enum class hdf5_content : std::uint8_t {
  numeric,          ///< integers, floats, enums (as their integer type)
  fixed_string,     ///< fixed-length strings: each element is `bytes` bytes
  variable_string,  ///< variable-length strings: read with `read_strings`
  compound,         ///< compound records: see `fields()`
};

/// One field of a compound dataset as conveyor lays it out in memory: the C
/// struct layout of the fields' native types in file order (HDF5's
/// H5Tget_native_type), so a matching `struct` can receive the bytes.
struct hdf5_field {
  std::string name;
  std::size_t offset = 0;                        ///< bytes from the start of the record
  std::size_t bytes = 0;                         ///< total bytes of the field
  hdf5_content content = hdf5_content::numeric;  ///< numeric or fixed_string
  element_type dtype = element_type::uint8;      ///< for numeric fields
  std::vector<std::uint64_t> shape;              ///< array fields' dimensions; empty for scalars
};

}  // namespace conveyor
