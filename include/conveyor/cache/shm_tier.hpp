// conveyor/cache/shm_tier.hpp: a cache tier in POSIX shared memory, shared by
// every process on a node that attaches the same name.
//
// The segment layout, the robust lock and the crash repairs are described in
// cache/detail/shm_layout.hpp; the decisions in docs/cache-disk-shm.md.
#pragma once

#include <sys/file.h>

#include <algorithm>
#include <atomic>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "conveyor/cache/detail/shm_layout.hpp"
#include "conveyor/cache/detail/tier_counters.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

/// Settings of a `shm_tier`.
struct shm_tier_options {
  /// Size of the whole segment (header, slot table, arena) when this process
  /// creates it; a process attaching an existing segment uses its size.
  std::uint64_t capacity_bytes = std::uint64_t{256} << 20;
  /// Sizes the slot table: about capacity / average_value_bytes slots.
  std::uint64_t average_value_bytes = 4096;
  /// How long an operation waits for the segment's lock before it gives up
  /// (counted as a failure, answered as a miss). Bounds the wait behind a
  /// process that is stopped (not dead) while holding the lock.
  std::chrono::milliseconds lock_timeout{2000};
  /// When the segment cannot be created or attached: false (default) gives an
  /// unavailable tier (gets miss, puts fail, counted); true throws `io_error`.
  bool throw_if_unavailable = false;
};

/// A cache tier in a named shared-memory segment. Satisfies `cache_tier`.
///
/// Attach-or-create by name: the first process creates and formats the
/// segment; later ones attach to it. A segment whose header is damaged (bad
/// magic or geometry checksum) is rebuilt empty; one written by another layout
/// version is left alone and this tier is unavailable (or throws), because
/// processes of that version may still use it. Remove a segment with `remove`.
///
/// Eviction: set-associative slots (8 ways per bucket) over a ring arena. A new
/// value goes to the next arena position, overwriting the oldest bytes (FIFO);
/// a bucket with all 8 ways live drops its oldest entry.
///
/// Crash safety: one robust, process-shared mutex guards the segment. A process
/// killed while holding it is detected by the next locker (EOWNERDEAD), which
/// drops the half-written slot and carries on. Every value carries a CRC32C that
/// `get` verifies, so a damaged entry is a miss, never wrong bytes.
///
/// Thread-safety: all member functions may be called from any thread of any
/// attached process at once; each takes the segment lock once (values are
/// copied under it). Counters in `stats()` are this object's, not the node's.
/// get/put never throw for lock or segment failures; they may throw bad_alloc.
class shm_tier {
 public:
  /// Attaches to or creates the segment `name` (a POSIX shm name without the
  /// leading slash, e.g. "conveyor-dea"). Maps the whole segment; allocates nothing else.
  explicit shm_tier(std::string name, shm_tier_options options = {})
      : name_(std::move(name)), options_(options) {
    try {
      attach();
    } catch (const boost::interprocess::interprocess_exception& failure) {
      unavailable_reason_ = failure.what();
    }
    if (!unavailable_reason_.empty()) {
      counters_.bump(counters_.failures);
      view_.base = nullptr;
      if (options_.throw_if_unavailable)
        throw io_error("shared-memory tier unavailable: " + unavailable_reason_,
                       "/dev/shm/" + name_);
    }
  }

  shm_tier(const shm_tier&) = delete;
  shm_tier& operator=(const shm_tier&) = delete;
  ~shm_tier() = default;

  /// Deletes the named segment (processes that have it mapped keep their view).
  static bool remove(const std::string& name) {
    return boost::interprocess::shared_memory_object::remove(name.c_str());
  }

  /// Copies the value of `key` into `out` and returns true on a verified hit.
  /// On a miss or a failed check returns false and leaves `out` empty.
  bool get(const cache_key& key, byte_buffer& out) {
    auto start = std::chrono::steady_clock::now();
    out.clear();
    bool hit = false;
    locked([&] {
      auto* entry = find(key);
      if (entry == nullptr) return;
      const std::byte* value = view_.arena() + entry->position % shape_.arena_bytes;
      out.assign(value, value + entry->length);
      if (detail::shm::slot_checksum(key, entry->length, out.data()) != entry->checksum) {
        entry->sequence = 0;
        counters_.bump(counters_.failures);
        out.clear();
        return;
      }
      hit = true;
    });
    counters_.record_get(hit, out.size(), start);
    return hit;
  }

  /// Stores `value` under `key`, replacing an older value. Returns false
  /// (counted) when the value is larger than `max_value_bytes()`, the lock
  /// cannot be taken in time, or the tier is unavailable.
  bool put(const cache_key& key, std::span<const std::byte> value) {
    auto start = std::chrono::steady_clock::now();
    bool stored = false;
    if (available() && value.size() <= max_value_bytes())
      stored = locked([&] { store(key, value); });
    return counters_.record_put(stored, value.size(), start);
  }

  /// Removes `key`; returns whether it was present.
  bool erase(const cache_key& key) {
    bool erased = false;
    locked([&] {
      if (auto* entry = find(key)) {
        entry->sequence = 0;
        erased = true;
      }
    });
    return erased;
  }

  /// Whether a live entry for `key` exists (its checksum is checked by `get`).
  [[nodiscard]] bool contains(const cache_key& key) {
    bool present = false;
    locked([&] { present = find(key) != nullptr; });
    return present;
  }

  /// `get` for each key; found[i] is 1 on a hit. Returns the hit count.
  std::size_t get_many(std::span<const cache_key> keys, std::span<byte_buffer> values,
                       std::span<std::uint8_t> found) {
    return get_each(*this, keys, values, found);
  }

  /// `put` for each pair; returns how many were stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    return put_each(*this, keys, values);
  }
  /// `put_many` that also sets stored[i] to whether values[i] was stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    return put_each(*this, keys, values, stored);
  }

  /// Header and slot table plus the arena bytes written so far (at most all of it).
  [[nodiscard]] std::uint64_t size_bytes() const noexcept {
    if (!available()) return 0;
    auto written = view_.header().write_position.load(std::memory_order_relaxed);
    return shape_.arena_offset + std::min(written, shape_.arena_bytes);
  }
  [[nodiscard]] std::uint64_t capacity_bytes() const noexcept { return shape_.total_bytes; }
  [[nodiscard]] std::string_view name() const noexcept { return "shm"; }
  [[nodiscard]] const std::string& segment_name() const noexcept { return name_; }
  [[nodiscard]] bool available() const noexcept { return view_.base != nullptr; }
  [[nodiscard]] const std::string& unavailable_reason() const noexcept {
    return unavailable_reason_;
  }
  /// `get` (and `get_many`, one `get` per key) copies the value out of the
  /// shared segment into `out` and checks the slot's CRC32C (key, length,
  /// value) on that copy, which no other process can change
  /// (`verifying_tier`): the cache stage does not check the row's CRC32C again.
  static constexpr bool values_verified = true;

  /// The largest value `put` accepts: a quarter of the arena.
  [[nodiscard]] std::uint64_t max_value_bytes() const noexcept { return shape_.arena_bytes / 4; }
  /// Times this object found the lock's owner dead and repaired the segment.
  [[nodiscard]] std::uint64_t recovered_locks() const noexcept {
    return recovered_.load(std::memory_order_relaxed);
  }
  /// Times this object found the segment damaged and rebuilt it empty.
  [[nodiscard]] std::uint64_t rebuilds() const noexcept {
    return rebuilds_.load(std::memory_order_relaxed);
  }

  /// A snapshot of this object's counters. Thread-safe.
  [[nodiscard]] tier_stats stats() const {
    return counters_.snapshot(size_bytes(), capacity_bytes());
  }

 private:
  void attach() {
    namespace ipc = boost::interprocess;
    ipc::permissions owner_only(0600);
    memory_ =
        ipc::shared_memory_object(ipc::open_or_create, name_.c_str(), ipc::read_write, owner_only);
    int fd = memory_.get_mapping_handle().handle;
    // Creation and validation happen under flock on the segment itself, which
    // the kernel releases if this process dies here.
    if (::flock(fd, LOCK_EX) != 0) {
      unavailable_reason_ = "cannot flock the segment";
      return;
    }
    struct unlock_on_exit {
      int fd;
      ~unlock_on_exit() { ::flock(fd, LOCK_UN); }
    } unlock{fd};
    ipc::offset_t size = 0;
    memory_.get_size(size);
    auto requested =
        detail::shm::plan_geometry(options_.capacity_bytes, options_.average_value_bytes);
    if (size == 0) {
      if (requested.total_bytes == 0) {
        unavailable_reason_ = "capacity_bytes is too small for a segment";
        return;
      }
      memory_.truncate(static_cast<ipc::offset_t>(requested.total_bytes));
      map_and_format(requested, 0);
      return;
    }
    region_ = ipc::mapped_region(memory_, ipc::read_write);
    view_.base = static_cast<std::byte*>(region_.get_address());
    std::uint32_t version = 0;
    if (detail::shm::header_intact(view_.base, region_.get_size(), version)) {
      if (version != detail::shm::layout_version) {
        unavailable_reason_ = "the segment has layout version " + std::to_string(version) +
                              ", this build needs " + std::to_string(detail::shm::layout_version) +
                              "; remove it with shm_tier::remove";
        return;
      }
      shape_ = view_.header().shape;
      return;
    }
    // Damaged or half-created: rebuild it empty, at its present size if that works.
    rebuilds_.fetch_add(1, std::memory_order_relaxed);
    auto rebuilt = detail::shm::plan_geometry(region_.get_size(), options_.average_value_bytes);
    if (rebuilt.total_bytes == 0) {
      if (requested.total_bytes == 0) {
        unavailable_reason_ = "capacity_bytes is too small for a segment";
        return;
      }
      region_ = ipc::mapped_region();
      memory_.truncate(static_cast<ipc::offset_t>(requested.total_bytes));
      rebuilt = requested;
    }
    map_and_format(rebuilt, 1);
  }

  void map_and_format(const detail::shm::geometry& shape, std::uint64_t generation) {
    region_ = boost::interprocess::mapped_region(memory_, boost::interprocess::read_write, 0,
                                                 shape.total_bytes);
    view_.base = static_cast<std::byte*>(region_.get_address());
    if (!detail::shm::initialize_segment(view_, shape, generation)) {
      unavailable_reason_ = "cannot initialize the robust mutex";
      return;
    }
    shape_ = shape;
  }

  // Runs `work` with the segment lock held; false (counted) when the lock could
  // not be taken. Repairs after a dead owner and rebuilds a damaged header.
  template <class Work>
  bool locked(Work&& work) {
    if (!available()) {
      counters_.bump(counters_.failures);
      return false;
    }
    auto& header = view_.header();
    auto outcome = detail::shm::lock_robust(header.mutex, options_.lock_timeout, [&] {
      detail::shm::drop_unfinished_slots(view_, shape_);
    });
    if (outcome == detail::shm::lock_outcome::failed) {
      counters_.bump(counters_.failures);
      return false;
    }
    if (outcome == detail::shm::lock_outcome::recovered)
      recovered_.fetch_add(1, std::memory_order_relaxed);
    struct unlock_on_exit {
      pthread_mutex_t& mutex;
      ~unlock_on_exit() { ::pthread_mutex_unlock(&mutex); }
    } unlock{header.mutex};
    if (!(header.shape == shape_) ||
        header.geometry_checksum != detail::shm::geometry_checksum(shape_)) {
      header.shape = shape_;
      header.geometry_checksum = detail::shm::geometry_checksum(shape_);
      detail::shm::clear_contents(view_, shape_);
      header.generation.fetch_add(1, std::memory_order_relaxed);
      rebuilds_.fetch_add(1, std::memory_order_relaxed);
    }
    work();
    return true;
  }

  // Whether a slot holds a complete value whose arena bytes are not yet overwritten.
  [[nodiscard]] bool live(const detail::shm::slot& entry) const noexcept {
    if (entry.sequence == 0 || (entry.sequence & 1u)) return false;
    auto written = view_.header().write_position.load(std::memory_order_relaxed);
    auto oldest_intact = written > shape_.arena_bytes ? written - shape_.arena_bytes : 0;
    return entry.length <= max_value_bytes() && entry.position >= oldest_intact &&
           entry.position % shape_.arena_bytes + entry.length <= shape_.arena_bytes &&
           entry.position <= written && entry.length <= written - entry.position;
  }

  // The live slot of `key`, or nullptr. Lock held.
  detail::shm::slot* find(const cache_key& key) noexcept {
    auto* bucket = view_.bucket_of(key, shape_);
    for (std::uint32_t way = 0; way < detail::shm::ways; ++way) {
      auto& entry = bucket[way];
      if (entry.dataset != key.dataset || entry.chain != key.chain || entry.record != key.record)
        continue;
      if (live(entry)) return &entry;
      if (entry.sequence != 0 && !(entry.sequence & 1u)) {
        entry.sequence = 0;  // overwritten by the arena: evicted
        counters_.bump(counters_.evictions);
      }
    }
    return nullptr;
  }

  // Lock held. Picks a way (same key, else a free one, else the oldest), then
  // marks it unfinished, advances the arena, copies, and marks it complete.
  void store(const cache_key& key, std::span<const std::byte> value) {
    auto* bucket = view_.bucket_of(key, shape_);
    detail::shm::slot* target = find(key);
    for (std::uint32_t way = 0; way < detail::shm::ways && target == nullptr; ++way)
      if (!live(bucket[way])) target = &bucket[way];
    if (target == nullptr) {
      target =
          std::min_element(bucket, bucket + detail::shm::ways,
                           [](const auto& a, const auto& b) { return a.position < b.position; });
      counters_.bump(counters_.evictions);
    }
    auto& header = view_.header();
    auto position = header.write_position.load(std::memory_order_relaxed);
    auto ring_offset = position % shape_.arena_bytes;
    if (ring_offset + value.size() > shape_.arena_bytes)
      position += shape_.arena_bytes - ring_offset;
    target->sequence = (target->sequence + 1) | 1u;
    header.write_position.store(detail::shm::align_up(position + value.size(), 8),
                                std::memory_order_relaxed);
    if (!value.empty())
      std::memcpy(view_.arena() + position % shape_.arena_bytes, value.data(), value.size());
    target->dataset = key.dataset;
    target->chain = key.chain;
    target->record = key.record;
    target->position = position;
    target->length = value.size();
    target->checksum = detail::shm::slot_checksum(key, value.size(), value.data());
    target->sequence += 1;
  }

  std::string name_;
  shm_tier_options options_;
  std::string unavailable_reason_;
  boost::interprocess::shared_memory_object memory_;
  boost::interprocess::mapped_region region_;
  detail::shm::segment_view view_;
  detail::shm::geometry shape_;  // this process's copy, to detect a damaged header

  std::atomic<std::uint64_t> recovered_{0}, rebuilds_{0};
  detail::tier_counters counters_;
};

static_assert(cache_tier<shm_tier>, "shm_tier must satisfy the cache_tier concept");
static_assert(put_reporting_tier<shm_tier>);
static_assert(verifying_tier<shm_tier> && !in_process_tier<shm_tier>);

}  // namespace conveyor
