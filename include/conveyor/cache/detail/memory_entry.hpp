// conveyor/cache/detail/memory_entry.hpp: one cached value of a memory tier,
// its key, its eviction metadata and its bytes in a single block of the tier's
// entry arena (entry_arena.hpp), plus the intrusive FIFO/LRU list the eviction
// policies thread entries on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>

#include "conveyor/cache/detail/entry_arena.hpp"
#include "conveyor/cache/tier.hpp"

namespace conveyor::detail {

// Header of an entry; the value bytes follow it in the same block so that a
// put costs one allocation and a hit reads one contiguous block.
struct memory_entry {
  cache_key key;
  std::uint64_t hash = 0;
  std::uint64_t charged_bytes = 0;  // what the entry counts against the budget
  std::size_t value_size = 0;
  memory_entry* newer = nullptr;  // toward the head (most recently inserted)
  memory_entry* older = nullptr;  // toward the tail (next eviction candidate)
  // S3-FIFO's 2-bit access counter, SIEVE's visited bit. Written by readers that
  // hold only a shared lock, so atomic; relaxed because the shard's exclusive
  // lock orders it before any eviction decision that reads it.
  std::atomic<std::uint8_t> frequency{0};
  std::uint8_t queue = 0;          // which of a policy's lists holds the entry
  std::uint16_t block_origin = 0;  // the arena's class of its block, or where else it came from

  [[nodiscard]] std::byte* value_data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  [[nodiscard]] const std::byte* value_data() const noexcept {
    return reinterpret_cast<const std::byte*>(this + 1);
  }
  [[nodiscard]] std::span<const std::byte> value() const noexcept {
    return {value_data(), value_size};
  }
};

static_assert(alignof(memory_entry) <= entry_arena::block_align,
              "memory_entry is placed at the start of an arena block");

/// The block an entry of `value_size` bytes needs.
constexpr std::size_t memory_entry_bytes(std::size_t value_size) noexcept {
  return sizeof(memory_entry) + value_size;
}

// Returns an entry's block to the arena it came from.
struct memory_entry_deleter {
  entry_arena* arena = nullptr;
  void operator()(memory_entry* entry) const noexcept {
    const entry_arena::block block{entry, entry->block_origin};
    const std::size_t bytes = memory_entry_bytes(entry->value_size);
    entry->~memory_entry();
    arena->release(block, bytes);
  }
};

using memory_entry_ptr = std::unique_ptr<memory_entry, memory_entry_deleter>;

// Makes an entry in `block` (from arena.allocate(memory_entry_bytes(value_size)));
// the value's bytes are left for the caller to write.
inline memory_entry_ptr make_memory_entry_in(entry_arena& arena, entry_arena::block block,
                                             const cache_key& key, std::uint64_t hash,
                                             std::size_t value_size, std::uint64_t charged_bytes) {
  auto* entry = ::new (block.data) memory_entry{};
  entry->key = key;
  entry->hash = hash;
  entry->charged_bytes = charged_bytes;
  entry->value_size = value_size;
  entry->block_origin = block.origin;
  return memory_entry_ptr(entry, memory_entry_deleter{&arena});
}

// Allocates the header and room for a value of `value_size` bytes in one
// block of `arena`; the value's bytes are left for the caller to write.
inline memory_entry_ptr allocate_memory_entry(entry_arena& arena, const cache_key& key,
                                              std::uint64_t hash, std::size_t value_size,
                                              std::uint64_t charged_bytes) {
  return make_memory_entry_in(arena, arena.allocate(memory_entry_bytes(value_size)), key, hash,
                              value_size, charged_bytes);
}

// Allocates the header and the value in one block and copies the value in.
inline memory_entry_ptr make_memory_entry(entry_arena& arena, const cache_key& key,
                                          std::uint64_t hash, std::span<const std::byte> value,
                                          std::uint64_t charged_bytes) {
  auto entry = allocate_memory_entry(arena, key, hash, value.size(), charged_bytes);
  if (!value.empty()) std::memcpy(entry->value_data(), value.data(), value.size());
  return entry;
}

// A doubly linked list of entries that does not own them. Head is the newest
// end, tail the oldest. Tracks entry count and charged bytes.
class entry_list {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] memory_entry* head() const noexcept { return head_; }
  [[nodiscard]] memory_entry* tail() const noexcept { return tail_; }

  void push_head(memory_entry* entry) noexcept {
    entry->newer = nullptr;
    entry->older = head_;
    if (head_ != nullptr) head_->newer = entry;
    head_ = entry;
    if (tail_ == nullptr) tail_ = entry;
    ++count_;
    bytes_ += entry->charged_bytes;
  }

  void remove(memory_entry* entry) noexcept {
    if (entry->newer != nullptr)
      entry->newer->older = entry->older;
    else
      head_ = entry->older;
    if (entry->older != nullptr)
      entry->older->newer = entry->newer;
    else
      tail_ = entry->newer;
    entry->newer = entry->older = nullptr;
    --count_;
    bytes_ -= entry->charged_bytes;
  }

  memory_entry* pop_tail() noexcept {
    memory_entry* entry = tail_;
    if (entry != nullptr) remove(entry);
    return entry;
  }

 private:
  memory_entry* head_ = nullptr;
  memory_entry* tail_ = nullptr;
  std::size_t count_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace conveyor::detail
