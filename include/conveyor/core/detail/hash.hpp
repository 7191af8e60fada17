// conveyor/core/detail/hash.hpp: the library's one set of non-cryptographic
// hashes, so fingerprints, cache keys and plan keys agree on what they mean.
//
// mix64 is the splitmix64 finalizer (Steele, Lea, Flood 2014): a bijection of
// 64-bit words with full avalanche. fnv1a is FNV-1a 64 (Fowler, Noll, Vo),
// used for short names; hash_bytes covers long byte ranges 8 bytes a step.
// Every place that seeds a hash uses a named salt below, so two hashes of the
// same fields for different purposes never collide by construction.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace conveyor::detail {

/// Seeds of the hashes, one per purpose. Changing one invalidates what was
/// keyed by it (the cache's entries, a persisted index), never correctness.
namespace salt {
inline constexpr std::uint64_t fnv_offset = 0xcbf29ce484222325ull;  ///< FNV-1a 64 offset basis
inline constexpr std::uint64_t golden = 0x9e3779b97f4a7c15ull;      ///< 2^64 / phi
inline constexpr std::uint64_t chain = 0x6a09e667f3bcc908ull;       ///< start of a chain fingerprint
inline constexpr std::uint64_t epoch_key = 0x632be59bd9b4e019ull;   ///< shuffle key of an epoch
inline constexpr std::uint64_t block_key = 0x5851f42d4c957f2dull;   ///< shuffle key within blocks
inline constexpr std::uint64_t decode = 0xdec0deull;                ///< the decode stage
inline constexpr std::uint64_t bits = 0xb175ull;                    ///< bits / packed_bits decoders
inline constexpr std::uint64_t two_grams = 0x2963ull;               ///< two_grams decoder
inline constexpr std::uint64_t int_set = 0x1575e7ull;               ///< int_set decoder
inline constexpr std::uint64_t source = 0x50c0ull;                  ///< a source's identity
}  // namespace salt

/// splitmix64's finalizer: a bijection with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/// Folds `value` into the running hash `h` (order matters).
constexpr std::uint64_t combine(std::uint64_t h, std::uint64_t value) noexcept { return mix64(h ^ value); }

/// FNV-1a 64 of `text`, continuing from `h` (salt::fnv_offset to start).
constexpr std::uint64_t fnv1a(std::string_view text, std::uint64_t h = salt::fnv_offset) noexcept {
  for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

/// FNV-1a of a name, for stages and sources that offer no fingerprint of their own.
constexpr std::uint64_t hash_name(std::string_view text) noexcept { return fnv1a(text); }

/// A 64-bit hash of a byte range, 8 bytes a step (a multiply-rotate over
/// words, finished with mix64). For integrity checks of files we wrote and for
/// content samples in fingerprints; not cryptographic.
inline std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t seed = salt::golden) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t state = seed ^ (size * 0xff51afd7ed558ccdull);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    state = std::rotl(state ^ mix64(word), 29) * 0xc4ceb9fe1a85ec53ull;
  }
  std::uint64_t tail = 0;
  for (std::size_t shift = 0; i < size; ++i, shift += 8) tail |= std::uint64_t{bytes[i]} << shift;
  state = std::rotl(state ^ mix64(tail), 29) * 0xc4ceb9fe1a85ec53ull;
  return mix64(state);
}

}  // namespace conveyor::detail
