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

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "conveyor/core/detail/hash.hpp"

namespace conveyor {

/// Folds `value` into the running hash `h` (splitmix64's finalizer of
/// `h ^ value`: full avalanche). One step is symmetric, `hash_combine(a, b) ==
/// hash_combine(b, a)`, so start from a constant (hash_name("my_stage")) and
/// fold the values in one at a time: then their order matters.
constexpr std::uint64_t hash_combine(std::uint64_t h, std::uint64_t value) noexcept {
  return detail::combine(h, value);
}

// hash_name and hash_bytes are the library's own, published here by
// using-declarations. Doxygen lists no function from a using-declaration, so it
// reads the declarations below instead (docs/Doxyfile defines CONVEYOR_DOXYGEN);
// the compiler checks that the published names still have these signatures.
#ifdef CONVEYOR_DOXYGEN
/// `hash_name(text)`: FNV-1a 64 of a name or other short text (what a stage
/// without fingerprint() is keyed by, its name()).
constexpr std::uint64_t hash_name(std::string_view text) noexcept;

/// `hash_bytes(data, size)`: a 64-bit hash of a byte range, 8 bytes a step
/// (content samples, a header); not cryptographic. `seed` starts the hash
/// from another value (the default is a fixed constant).
std::uint64_t hash_bytes(const void* data, std::size_t size,
                         std::uint64_t seed = detail::salt::golden) noexcept;
#else
using detail::hash_bytes;
using detail::hash_name;

static_assert(std::is_same_v<decltype(&hash_name), std::uint64_t (*)(std::string_view) noexcept>,
              "hash_name no longer matches its declaration for the API reference above");
static_assert(hash_name("") == 0xcbf29ce484222325ull,
              "hash_name is no longer FNV-1a 64, as documented above");
static_assert(std::is_same_v<decltype(&hash_bytes),
                             std::uint64_t (*)(const void*, std::size_t, std::uint64_t) noexcept>,
              "hash_bytes no longer matches its declaration for the API reference above");
static_assert(
    requires(const void* data, std::size_t size) {
      { hash_bytes(data, size) } -> std::same_as<std::uint64_t>;
    },
    "hash_bytes(data, size) no longer has a default seed, as documented above");
#endif

}  // namespace conveyor
