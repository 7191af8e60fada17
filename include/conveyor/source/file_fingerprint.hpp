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

#include "conveyor/core/fingerprint.hpp"
#include "conveyor/source/detail/binary_column.hpp"

namespace conveyor {

/// The identity and content of the file at `path` (see the top of this
/// header); throws io_error when it cannot be mapped.
using detail::file_fingerprint;

}  // namespace conveyor
