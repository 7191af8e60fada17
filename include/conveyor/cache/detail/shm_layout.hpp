// conveyor/cache/detail/shm_layout.hpp: the layout of the shared-memory tier's
// segment, its robust lock, and the repairs done after a process dies in it.
//
// Segment = header | slot table | arena.
//  * header: geometry (immutable after creation, CRC32C-protected), a
//    process-shared robust pthread mutex, and the arena write position.
//  * slot table: `bucket_count` buckets of `ways` slots (set-associative): a
//    key hashes to one bucket and lives in one of its ways, so there are no
//    probe chains or tombstones to repair after a crash.
//  * arena: a ring of bytes written at a monotonically growing logical
//    position; a value is intact while its position is within the last
//    `arena_bytes` written (FIFO eviction for free: writing wraps over the oldest).
//
// Why a robust mutex and sequence numbers: a trainer killed with the lock held
// must not wedge the others (the next locker gets EOWNERDEAD, repairs and calls
// pthread_mutex_consistent), and a slot whose write was cut off keeps an odd
// sequence number, so the repair drops it. Each slot also has a CRC32C over
// key, length and value that `get` checks: damage from any other cause is a
// miss, never wrong bytes.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>

#if defined(__SANITIZE_THREAD__)
#define CONVEYOR_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONVEYOR_THREAD_SANITIZER 1
#endif
#endif
#if defined(CONVEYOR_THREAD_SANITIZER)
#include <sanitizer/tsan_interface.h>
#endif

#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/tier.hpp"

namespace conveyor::detail::shm {

inline constexpr std::uint64_t magic = 0x4d48535956434e43ull;  // "CNCVYSHM" little-endian
inline constexpr std::uint32_t layout_version = 1;
inline constexpr std::uint32_t ways = 8;

/// Sizes and offsets, fixed when the segment is created.
struct geometry {
  std::uint64_t magic_value = 0;
  std::uint32_t version = 0;
  std::uint32_t ways_per_bucket = 0;
  std::uint64_t total_bytes = 0;
  std::uint64_t bucket_count = 0;
  std::uint64_t slots_offset = 0;
  std::uint64_t arena_offset = 0;
  std::uint64_t arena_bytes = 0;

  friend bool operator==(const geometry&, const geometry&) = default;
};

struct segment_header {
  geometry shape;
  std::uint32_t geometry_checksum;  // CRC32C of `shape`
  std::uint32_t padding;
  pthread_mutex_t mutex;  // robust, process-shared
  std::atomic<std::uint64_t>
      write_position;                     // logical arena bytes written; changed under the mutex
  std::atomic<std::uint64_t> generation;  // rebuilds of this segment
};

struct slot {
  std::uint64_t sequence;  // 0 empty; odd while being written; even and nonzero when complete
  std::uint64_t dataset, chain, record;
  std::uint64_t position;  // logical arena position of the value
  std::uint64_t length;
  std::uint32_t checksum;  // CRC32C of dataset, chain, record, length, then the value
  std::uint32_t padding;
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the shared-memory tier needs address-free 64-bit atomics");
static_assert(sizeof(slot) == 56, "slot layout changed: bump layout_version");

inline constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) noexcept {
  return (value + alignment - 1) / alignment * alignment;
}

inline std::uint32_t geometry_checksum(const geometry& shape) noexcept {
  return crc32c_update(0, &shape, sizeof shape);
}

/// The geometry for a segment of `total_bytes` with values of about
/// `average_value_bytes`; total_bytes == 0 in the result means "too small".
inline geometry plan_geometry(std::uint64_t total_bytes,
                              std::uint64_t average_value_bytes) noexcept {
  geometry shape;
  shape.magic_value = magic;
  shape.version = layout_version;
  shape.ways_per_bucket = ways;
  shape.slots_offset = align_up(sizeof(segment_header), 64);
  if (total_bytes < shape.slots_offset + 4096 || average_value_bytes == 0) return geometry{};
  auto room = total_bytes - shape.slots_offset;
  // Two slots per average value: with 8 ways a bucket rarely overflows before
  // the arena is full, and a slot (56 bytes) is cheap next to a value.
  auto buckets = room / ((average_value_bytes / 2 + sizeof(slot)) * ways);
  shape.bucket_count = buckets == 0 ? 1 : buckets;
  shape.arena_offset = align_up(shape.slots_offset + shape.bucket_count * ways * sizeof(slot), 64);
  if (shape.arena_offset + 1024 > total_bytes) return geometry{};
  shape.arena_bytes = total_bytes - shape.arena_offset;
  shape.total_bytes = total_bytes;
  return shape;
}

/// Accessors over a mapped segment; `base` must be 64-byte aligned.
struct segment_view {
  std::byte* base = nullptr;

  [[nodiscard]] segment_header& header() const noexcept {
    return *reinterpret_cast<segment_header*>(base);
  }
  [[nodiscard]] slot* slots() const noexcept {
    return reinterpret_cast<slot*>(base + header().shape.slots_offset);
  }
  [[nodiscard]] std::byte* arena() const noexcept { return base + header().shape.arena_offset; }
  [[nodiscard]] slot* bucket_of(const cache_key& key, const geometry& shape) const noexcept {
    return reinterpret_cast<slot*>(base + shape.slots_offset) +
           (key.hash() % shape.bucket_count) * ways;
  }
};

/// True when the header at `base` (of a mapping `mapped_bytes` long) has our
/// magic, an intact geometry checksum and a geometry that fits the mapping.
/// `version_out` receives the stored layout version.
inline bool header_intact(const std::byte* base, std::uint64_t mapped_bytes,
                          std::uint32_t& version_out) noexcept {
  if (mapped_bytes < sizeof(segment_header)) return false;
  geometry shape;
  std::memcpy(&shape, base, sizeof shape);
  std::uint32_t stored_checksum;
  std::memcpy(&stored_checksum, base + offsetof(segment_header, geometry_checksum),
              sizeof stored_checksum);
  if (shape.magic_value != magic || stored_checksum != geometry_checksum(shape)) return false;
  version_out = shape.version;
  return shape.total_bytes == mapped_bytes && shape.bucket_count > 0 &&
         shape.ways_per_bucket == ways && shape.slots_offset >= sizeof(segment_header) &&
         shape.arena_offset >= shape.slots_offset + shape.bucket_count * ways * sizeof(slot) &&
         shape.arena_offset + shape.arena_bytes == shape.total_bytes && shape.arena_bytes > 0;
}

/// Empties the slot table and the arena position (the mutex is left alone).
inline void clear_contents(segment_view view, const geometry& shape) noexcept {
  std::memset(static_cast<void*>(view.base + shape.slots_offset), 0,
              shape.bucket_count * ways * sizeof(slot));
  view.header().write_position.store(0, std::memory_order_relaxed);
}

/// Writes a fresh segment over whatever is at `view.base`: geometry, a new
/// robust mutex, empty slots. Only while no process can be using it.
inline bool initialize_segment(segment_view view, const geometry& shape,
                               std::uint64_t generation) noexcept {
  std::memset(static_cast<void*>(view.base), 0, sizeof(segment_header));
  auto& header = view.header();
  pthread_mutexattr_t attributes;
  if (::pthread_mutexattr_init(&attributes) != 0) return false;
  bool ok = ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED) == 0 &&
            ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST) == 0 &&
            ::pthread_mutex_init(&header.mutex, &attributes) == 0;
  ::pthread_mutexattr_destroy(&attributes);
  if (!ok) return false;
  header.generation.store(generation, std::memory_order_relaxed);
  clear_contents(view, shape);
  header.shape = shape;
  header.geometry_checksum = geometry_checksum(shape);
  return true;
}

/// After a process died holding the lock: drop every slot it left half written.
/// Returns how many were dropped.
inline std::uint64_t drop_unfinished_slots(segment_view view, const geometry& shape) noexcept {
  std::uint64_t dropped = 0;
  slot* all = view.slots();
  for (std::uint64_t i = 0; i < shape.bucket_count * ways; ++i)
    if (all[i].sequence & 1u) {
      all[i].sequence = 0;
      ++dropped;
    }
  return dropped;
}

/// The slot checksum over its key, length and the value bytes.
inline std::uint32_t slot_checksum(const cache_key& key, std::uint64_t length,
                                   const std::byte* value) noexcept {
  std::uint64_t fields[4] = {key.dataset, key.chain, key.record, length};
  return crc32c_update(crc32c_update(0, fields, sizeof fields), value,
                       static_cast<std::size_t>(length));
}

/// How a lock attempt ended.
enum class lock_outcome { locked, recovered, failed };

/// pthread_mutex_timedlock with EOWNERDEAD handling: on a dead owner, `repair`
/// runs with the lock held before the mutex is marked consistent.
template <class Repair>
lock_outcome lock_robust(pthread_mutex_t& mutex, std::chrono::milliseconds timeout,
                         Repair&& repair) noexcept {
  timespec deadline{};
  ::clock_gettime(CLOCK_REALTIME, &deadline);
  auto nanos = deadline.tv_nsec + (timeout.count() % 1000) * 1000000;
  deadline.tv_sec += static_cast<time_t>(timeout.count() / 1000 + nanos / 1000000000);
  deadline.tv_nsec = static_cast<long>(nanos % 1000000000);
  int result = ::pthread_mutex_timedlock(&mutex, &deadline);
  if (result == 0) return lock_outcome::locked;
  if (result != EOWNERDEAD) return lock_outcome::failed;
#if defined(CONVEYOR_THREAD_SANITIZER)
  // TSan's pthread_mutex_timedlock interceptor records only a 0 result as an
  // acquisition (its lock and trylock interceptors also count EOWNERDEAD), so
  // tell it that this thread owns the mutex now.
  __tsan_mutex_pre_lock(&mutex, __tsan_mutex_try_lock);
  __tsan_mutex_post_lock(&mutex, __tsan_mutex_try_lock, 0);
#endif
  repair();
  if (::pthread_mutex_consistent(&mutex) != 0) {
    ::pthread_mutex_unlock(&mutex);
    return lock_outcome::failed;
  }
  return lock_outcome::recovered;
}

}  // namespace conveyor::detail::shm
