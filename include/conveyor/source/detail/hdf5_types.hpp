// conveyor/source/detail/hdf5_types.hpp: how an HDF5 datatype is described in
// conveyor's terms (the public hdf5_content / hdf5_field, in
// source/hdf5_types.hpp) and the in-memory datatype conveyor reads it as.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "conveyor/source/detail/hdf5_handle.hpp"
#include "conveyor/source/element_type.hpp"
#include "conveyor/source/hdf5_types.hpp"

namespace conveyor {

namespace detail {

struct hdf5_type_info {
  hdf5_content content = hdf5_content::numeric;
  element_type dtype = element_type::uint8;
  hdf5_id memory_type;
  std::size_t element_bytes = 0;
  std::vector<hdf5_field> fields;
};

// The element type of a native numeric memory type, if it is one we name.
inline std::optional<element_type> native_element_type(hid_t type) {
  const auto size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      switch (size) {
        case 1: return is_signed ? element_type::int8 : element_type::uint8;
        case 2: return is_signed ? element_type::int16 : element_type::uint16;
        case 4: return is_signed ? element_type::int32 : element_type::uint32;
        case 8: return is_signed ? element_type::int64 : element_type::uint64;
        default: return std::nullopt;
      }
    }
    case H5T_FLOAT:
      if (size == 4) return element_type::float32;
      if (size == 8) return element_type::float64;
      return std::nullopt;
    case H5T_ENUM: {
      hdf5_id base(H5Tget_super(type), H5Tclose);
      return base.valid() ? native_element_type(base.get()) : std::nullopt;
    }
    default: return std::nullopt;
  }
}

// Describes one compound member (already native); nullopt if unsupported.
inline std::optional<hdf5_field> describe_field(hid_t compound, unsigned member) {
  hdf5_field field;
  if (char* name = H5Tget_member_name(compound, member)) {
    field.name = name;
    H5free_memory(name);
  }
  field.offset = H5Tget_member_offset(compound, member);
  hdf5_id type(H5Tget_member_type(compound, member), H5Tclose);
  if (!type.valid()) return std::nullopt;
  field.bytes = H5Tget_size(type.get());
  const auto type_class = H5Tget_class(type.get());
  if (type_class == H5T_STRING) {
    if (H5Tis_variable_str(type.get()) > 0) return std::nullopt;
    field.content = hdf5_content::fixed_string;
    return field;
  }
  hid_t element = type.get();
  hdf5_id array_base;
  if (type_class == H5T_ARRAY) {
    const int rank = H5Tget_array_ndims(type.get());
    if (rank <= 0) return std::nullopt;
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Tget_array_dims2(type.get(), dims.data());
    field.shape.assign(dims.begin(), dims.end());
    array_base = hdf5_id(H5Tget_super(type.get()), H5Tclose);
    element = array_base.get();
  }
  const auto dtype = native_element_type(element);
  if (!dtype) return std::nullopt;
  field.dtype = *dtype;
  return field;
}

// Describes a dataset's file type; on an unsupported type returns nullopt and
// sets `problem` to a sentence naming it. Call inside an hdf5_session.
inline std::optional<hdf5_type_info> describe_type(hid_t file_type, std::string& problem) {
  hdf5_type_info info;
  const auto type_class = H5Tget_class(file_type);
  if (type_class == H5T_STRING) {
    if (H5Tis_variable_str(file_type) > 0) {
      info.content = hdf5_content::variable_string;
      info.memory_type = hdf5_id(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(info.memory_type.get(), H5T_VARIABLE);
      H5Tset_cset(info.memory_type.get(), H5Tget_cset(file_type));
      info.element_bytes = sizeof(char*);
    } else {
      info.content = hdf5_content::fixed_string;
      info.memory_type = hdf5_id(H5Tcopy(file_type), H5Tclose);
      info.element_bytes = H5Tget_size(file_type);
    }
    return info;
  }
  if (type_class != H5T_INTEGER && type_class != H5T_FLOAT && type_class != H5T_ENUM &&
      type_class != H5T_COMPOUND) {
    problem = "unsupported HDF5 type class (supported: integer, float, enum, string, compound)";
    return std::nullopt;
  }
  info.memory_type = hdf5_id(H5Tget_native_type(file_type, H5T_DIR_ASCEND), H5Tclose);
  if (!info.memory_type.valid()) {
    problem = "HDF5 has no native type for this dataset's type";
    return std::nullopt;
  }
  info.element_bytes = H5Tget_size(info.memory_type.get());
  if (type_class == H5T_COMPOUND) {
    info.content = hdf5_content::compound;
    const int members = H5Tget_nmembers(info.memory_type.get());
    for (int member = 0; member < members; ++member) {
      auto field = describe_field(info.memory_type.get(), static_cast<unsigned>(member));
      if (!field) {
        char* name = H5Tget_member_name(info.memory_type.get(), static_cast<unsigned>(member));
        problem = "compound field '" + std::string(name ? name : "?") +
                  "' has an unsupported type (supported: numbers, arrays of numbers, "
                  "fixed-length strings)";
        if (name) H5free_memory(name);
        return std::nullopt;
      }
      info.fields.push_back(std::move(*field));
    }
    return info;
  }
  const auto dtype = native_element_type(info.memory_type.get());
  if (!dtype) {
    problem = "unsupported numeric type of " + std::to_string(info.element_bytes) + " bytes";
    return std::nullopt;
  }
  info.dtype = *dtype;
  return info;
}

}  // namespace detail
}  // namespace conveyor
