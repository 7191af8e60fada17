// conveyor/cache/detail/disk_index.hpp: the disk tier's index, key -> where
// the key's newest record lies, as an open-addressing table of 64-byte slots
// (key and location in one cache line) with linear probing and backward-shift
// deletion (no tombstones).
//
// Why not std::unordered_map (the first version): a lookup there walks
// bucket -> the node before the bucket's first -> the node, dependent cache
// misses for every key of a batch; perf of a DEA second epoch from the disk
// tier showed `_Hashtable::_M_find_before_node` at 6% of all samples, about a
// quarter of the tier's read path. Here a lookup reads one run of adjacent
// slots, usually one line, and `prefetch(hash)` lets a batch start every
// slot's miss before the first compare (segment_store::visit does).
//
// Load: at most 4/5 of the slots are used, at least 2/5 after a growth, so
// the index costs 80-160 bytes per key. An empty slot has fd == -1 (every
// indexed record's segment has an open descriptor). Not thread-safe: the
// segment store's lock guards it. Growth allocates (std::bad_alloc leaves
// the table as it was); everything else is noexcept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/cache/detail/linear_probe.hpp"
#include "conveyor/cache/tier.hpp"

namespace conveyor::detail::disk_format {

/// Where a key's newest record lies.
struct record_location {
  std::uint64_t segment_id = 0;
  std::uint64_t offset = 0;  // of the record header
  std::uint64_t value_length = 0;
  const std::byte* mapped = nullptr;  // the segment's mapping when it covers the record
  int fd = -1;                        // the segment's descriptor; -1 marks an empty slot
};

class disk_index {
 public:
  struct alignas(64) slot {
    cache_key key;
    record_location where;
  };
  static_assert(sizeof(slot) == 64, "a slot is one cache line: key and location in one miss");

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Starts loading the slot where a lookup of a key with this hash begins.
  void prefetch(std::uint64_t hash) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }

  /// The location of `key` (whose hash is `hash`), or null. Valid until the
  /// next change of the table.
  [[nodiscard]] const record_location* find(const cache_key& key,
                                            std::uint64_t hash) const noexcept {
    if (slots_.empty()) return nullptr;
    for (std::size_t at = hash & mask_;; at = (at + 1) & mask_) {
      const slot& s = slots_[at];
      if (s.where.fd < 0) return nullptr;
      if (s.key == key) return &s.where;
    }
  }
  [[nodiscard]] const record_location* find(const cache_key& key) const noexcept {
    return find(key, key.hash());
  }
  [[nodiscard]] bool contains(const cache_key& key) const noexcept { return find(key) != nullptr; }

  /// Sets `key`'s location (`where.fd` >= 0), adding the key if absent. May
  /// grow the table (std::bad_alloc: the table unchanged).
  void assign(const cache_key& key, const record_location& where) {
    const std::uint64_t hash = key.hash();
    if (slots_.empty() || (size_ + 1) * 5 > slots_.size() * 4) grow();
    std::size_t at = hash & mask_;
    for (; slots_[at].where.fd >= 0; at = (at + 1) & mask_) {
      if (slots_[at].key == key) {
        slots_[at].where = where;
        return;
      }
    }
    slots_[at] = slot{key, where};
    ++size_;
  }

  /// Removes `key`; false when it was absent.
  bool erase(const cache_key& key) noexcept {
    if (slots_.empty()) return false;
    std::size_t at = key.hash() & mask_;
    for (;; at = (at + 1) & mask_) {
      if (slots_[at].where.fd < 0) return false;
      if (slots_[at].key == key) break;
    }
    backward_shift_erase(
        slots_, mask_, at, [](const slot& s) { return s.where.fd >= 0; },
        [](const slot& s) { return s.key.hash(); });
    --size_;
    return true;
  }

 private:
  void grow() {
    grow_table(
        slots_, mask_, 64, [](const slot& s) { return s.where.fd >= 0; },
        [](const slot& s) { return s.key.hash(); });
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace conveyor::detail::disk_format
