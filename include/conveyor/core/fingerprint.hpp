// conveyor/core/fingerprint.hpp: the hashes to build a fingerprint() of your
// own with (a source's, a decoder's, a stage's): the ones the library's own
// fingerprints use.
//
// A fingerprint is a 64-bit identity. cache(...) keys its entries by the
// source's fingerprint and those of the stages before it, so a source should
// fold in what it reads (for a file, file_fingerprint in
// source/file_fingerprint.hpp) and a decoder or stage every parameter that
// changes its output; then another dataset or another setting never hits old
// entries. Not cryptographic: a fingerprint tells versions apart, it does not
// authenticate them.
//
//   std::uint64_t fingerprint() const noexcept {
//     return cy::hash_combine(cy::hash_combine(cy::hash_name("my_decoder"), width_), scale_bits_);
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "conveyor/core/detail/hash.hpp"

namespace conveyor {

/// Folds `value` into the running hash `h` (splitmix64's finalizer of
/// `h ^ value`: full avalanche). One step is symmetric, `hash_combine(a, b) ==
/// hash_combine(b, a)`, so start from a constant (hash_name("my_stage")) and
/// fold the values in one at a time: then their order matters.
constexpr std::uint64_t hash_combine(std::uint64_t h, std::uint64_t value) noexcept {
  return detail::combine(h, value);
}

/// `hash_name(text)`: FNV-1a 64 of a name or other short text (what a stage
/// without fingerprint() is keyed by, its name()).
using detail::hash_name;

/// `hash_bytes(data, size)`: a 64-bit hash of a byte range, 8 bytes a step
/// (content samples, a header); not cryptographic.
using detail::hash_bytes;

}  // namespace conveyor
