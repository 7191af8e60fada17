// conveyor/source/file_fingerprint.hpp: a file's fingerprint, for a source of
// your own that reads files (docs/extending.md): what npy_source,
// binary_records_source and hdf5_source fold in for each file they read.
//
// `file_fingerprint(path)` hashes the path, the size, the modification time
// and sampled bytes (the first and last 4 KiB and 14 slices of 256 bytes
// between), so an edit in place gives another fingerprint without the whole
// file being read. It maps the file for the call and throws io_error when it
// cannot. Combine it with what else decides the records (hash_combine,
// core/fingerprint.hpp): the columns, their types, a header size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <type_traits>

#include "conveyor/core/fingerprint.hpp"
#include "conveyor/source/detail/binary_column.hpp"

namespace conveyor {

// file_fingerprint is the one the library's sources use, published here by a
// using-declaration. Doxygen lists no function from a using-declaration, so it
// reads the declaration below instead (docs/Doxyfile defines CONVEYOR_DOXYGEN);
// the compiler checks that the published name still has this signature.
#ifdef CONVEYOR_DOXYGEN
/// The identity and content of the file at `path` (see the top of this
/// header); throws io_error when it cannot be mapped.
std::uint64_t file_fingerprint(const std::filesystem::path& path);
#else
using detail::file_fingerprint;

static_assert(
    std::is_same_v<decltype(&file_fingerprint), std::uint64_t (*)(const std::filesystem::path&)>,
    "file_fingerprint no longer matches its declaration for the API reference above");
#endif

}  // namespace conveyor
