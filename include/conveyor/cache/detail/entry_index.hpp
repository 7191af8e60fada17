// conveyor/cache/detail/entry_index.hpp: a memory tier shard's index, key ->
// entry, as an open-addressing table of {hash, entry*} slots with linear
// probing and backward-shift deletion (no tombstones).
//
// Why not std::unordered_map: a lookup there walks bucket -> the node before
// the bucket's first (another key's node) -> the node, three dependent cache
// misses before the entry itself, which dominated a batch of hits (perf: about
// 60% of a cached epoch of small values in the node walk). Here a lookup reads
// one run of adjacent 16-byte slots (compared by full hash first) and then the
// entry, which the caller reads anyway; `prefetch(hash)` lets a batch start
// every slot's miss before the first compare.
//
// Load: at most 4/5 of the slots are used, at least 2/5 after a growth, so a
// slot costs at most 40 bytes per entry (memory_tier's entry_overhead_bytes
// counts that). Not thread-safe: the shard's lock guards it. Growth allocates
// (std::bad_alloc, the table unchanged); everything else is noexcept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/cache/detail/linear_probe.hpp"
#include "conveyor/cache/detail/memory_entry.hpp"

namespace conveyor::detail {

class entry_index {
 public:
  struct slot {
    std::uint64_t hash = 0;
    memory_entry* entry = nullptr;  // nullptr: empty
  };
  static constexpr std::size_t max_bytes_per_entry = sizeof(slot) * 5 / 2;  // at 2/5 load

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Starts loading the slot where a lookup of `hash` begins.
  void prefetch(std::uint64_t hash) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }

  [[nodiscard]] memory_entry* find(const cache_key& key, std::uint64_t hash) const noexcept {
    if (slots_.empty()) return nullptr;
    for (std::size_t at = hash & mask_;; at = (at + 1) & mask_) {
      const slot& s = slots_[at];
      if (s.entry == nullptr) return nullptr;
      if (s.hash == hash && s.entry->key == key) return s.entry;
    }
  }

  /// The first entry whose slot holds `hash`, without reading any entry (so
  /// a batch can start loading every candidate before comparing keys); the
  /// caller compares the key and falls back to `find` when it differs (a
  /// full 64-bit hash collision), or nullptr when no slot holds `hash`.
  [[nodiscard]] memory_entry* find_hash(std::uint64_t hash) const noexcept {
    if (slots_.empty()) return nullptr;
    for (std::size_t at = hash & mask_;; at = (at + 1) & mask_) {
      const slot& s = slots_[at];
      if (s.entry == nullptr) return nullptr;
      if (s.hash == hash) return s.entry;
    }
  }

  /// Makes room for one more entry (may grow: std::bad_alloc leaves the table
  /// as it was). Call before changing anything else, so that `insert` cannot fail.
  void reserve_one() {
    if ((size_ + 1) * 5 <= slots_.size() * 4) return;
    grow_table(
        slots_, mask_, 16, [](const slot& s) { return s.entry != nullptr; },
        [](const slot& s) { return s.hash; });
  }

  /// Adds `entry` (its key absent; reserve_one() called since the last insert).
  void insert(memory_entry* entry) noexcept {
    std::size_t at = entry->hash & mask_;
    while (slots_[at].entry != nullptr) at = (at + 1) & mask_;
    slots_[at] = slot{entry->hash, entry};
    ++size_;
  }

  /// Removes `entry` (present) from the table.
  void erase(const memory_entry* entry) noexcept {
    std::size_t at = entry->hash & mask_;
    while (slots_[at].entry != entry) at = (at + 1) & mask_;
    backward_shift_erase(
        slots_, mask_, at, [](const slot& s) { return s.entry != nullptr; },
        [](const slot& s) { return s.hash; });
    --size_;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const slot& s : slots_)
      if (s.entry != nullptr) f(s.entry);
  }

 private:
  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace conveyor::detail
