// conveyor/cache/detail/entry_arena.hpp: where a memory tier's entries live.
//
// Why not operator new per entry: a filling epoch writes every value into
// fresh memory, and with 4 KiB pages that is one page fault per 4 KiB (perf
// of a float32 DEA fill: kernel clear_page and exc_page_fault were the
// largest part, about 0.8 s of system time for 840 MB). Here entries are
// carved from 2 MiB chunks of regions mapped with mmap and advised
// MADV_HUGEPAGE (one fault per 2 MiB where the kernel grants huge pages, unless
// they prove slow to fault in: see prefault_chunk), each chunk prefaulted
// with one MADV_POPULATE_WRITE when it is first used (one system call instead
// of 512 faults where huge pages are not used). Freed blocks are kept
// on per-size-class free lists and handed to the next entry of that class, so
// an evicting tier reuses memory that is already mapped instead of returning
// it to the kernel and faulting it in again.
//
// Learned from CacheLib's slab allocator (allocation classes, free lists per
// class, memory that stays mapped, ASan poisoning of free allocations); unlike
// CacheLib, chunks are not owned by one class: one bump pointer carves blocks of
// any class, which keeps a tier of few, similar sizes (the cache stage's
// records) within one partly used chunk, at the price that free blocks of one
// class are not reused by another (blocks are never split or merged).
//
// Classes: multiples of 64 bytes up to 2 KiB, then 32 per power of two (at
// most 3.2% rounding), up to `max_class_bytes`; a larger block gets its own
// mapping (page-rounded, unmapped when freed). Blocks are 64-byte aligned.
//
// Bounds: chunks are taken until `limit_bytes` are mapped; beyond it, a block
// comes from the free list of a larger class if one has a block, else from
// operator new (counted: `heap_blocks`). If mmap fails (a chunk's region or a
// large block's own mapping), the same, counted in `map_failures`. So a block
// is never refused for want of a mapping; only operator new's std::bad_alloc
// propagates.
//
// Thread-safety: every member is safe to call concurrently (one mutex; a batch
// allocates under it once). Not movable.
#pragma once

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <span>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CONVEYOR_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONVEYOR_ARENA_ASAN 1
#endif
#endif
#if defined(CONVEYOR_ARENA_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace conveyor::detail {

/// How an entry arena gets its memory. The default maps anonymous memory;
/// tests replace it to make mapping fail.
struct arena_page_source {
  void* (*map)(std::size_t bytes) = nullptr;  // nullptr result: could not map
  void (*unmap)(void* at, std::size_t bytes) = nullptr;

  static void* map_anonymous(std::size_t bytes) {
    void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return at == MAP_FAILED ? nullptr : at;
  }
  static void unmap_anonymous(void* at, std::size_t bytes) { ::munmap(at, bytes); }
  static arena_page_source anonymous() noexcept { return {&map_anonymous, &unmap_anonymous}; }
};

struct entry_arena_options {
  std::uint64_t limit_bytes = 0;  ///< most bytes of chunks mapped (rounded up to chunks)
  bool huge_pages = true;         ///< madvise(MADV_HUGEPAGE) on each region
  bool prefault = true;           ///< MADV_POPULATE_WRITE on each chunk when first used
  bool use_heap = false;          ///< every block from operator new (the arena off)
  arena_page_source pages = arena_page_source::anonymous();
};

/// What an arena holds, for stats and tests.
struct entry_arena_stats {
  std::uint64_t mapped_bytes = 0;       ///< chunks in use (carved from), in bytes
  std::uint64_t carved_bytes = 0;       ///< blocks ever carved from chunks
  std::uint64_t free_bytes = 0;         ///< blocks on free lists (mapped, idle)
  std::uint64_t large_bytes = 0;        ///< blocks in their own mappings, now
  std::uint64_t heap_bytes = 0;         ///< blocks from operator new, now (as charged)
  std::uint64_t heap_blocks = 0;        ///< blocks ever taken from operator new
  std::uint64_t reused_blocks = 0;      ///< allocations served from a free list
  std::uint64_t map_failures = 0;       ///< region mappings that failed
  std::uint64_t huge_page_regions = 0;  ///< regions whose MADV_HUGEPAGE was accepted
  bool huge_pages_declined = false;     ///< asked for, then declined: slow to fault in
  std::uint64_t regions = 0;
};

inline constexpr std::size_t arena_block_align = 64;
inline constexpr std::size_t arena_max_class_bytes = std::size_t{256} << 10;
inline constexpr std::size_t arena_page_bytes = 4096;

/// The class of a block of at least `bytes` (0 < bytes <= arena_max_class_bytes).
constexpr std::size_t arena_class_of(std::size_t bytes) noexcept {
  if (bytes <= 2048) return bytes <= arena_block_align ? 0 : (bytes - 1) / arena_block_align;
  // 2^e < bytes <= 2^(e+1): 32 steps of 2^(e-5) above 2^e.
  const auto e = static_cast<std::size_t>(std::bit_width(bytes - 1)) - 1;
  const std::size_t step = std::size_t{1} << (e - 5);
  return 32 + (e - 11) * 32 + (bytes - 1 - (std::size_t{1} << e)) / step;
}
/// The size of class `c`'s blocks.
constexpr std::size_t arena_class_bytes(std::size_t c) noexcept {
  if (c < 32) return (c + 1) * arena_block_align;
  const std::size_t e = 11 + (c - 32) / 32;
  return (std::size_t{1} << e) + ((c - 32) % 32 + 1) * (std::size_t{1} << (e - 5));
}
/// The bytes a block of at least `bytes` occupies (its class, or whole pages
/// of its own mapping): what a memory tier charges for it.
constexpr std::size_t arena_block_bytes(std::size_t bytes) noexcept {
  if (bytes > arena_max_class_bytes)
    return (bytes + arena_page_bytes - 1) / arena_page_bytes * arena_page_bytes;
  return arena_class_bytes(arena_class_of(bytes));
}

class entry_arena {
 public:
  static constexpr std::size_t chunk_bytes = std::size_t{2} << 20;  // one x86-64 huge page
  static constexpr std::size_t block_align = arena_block_align;
  static constexpr std::size_t max_class_bytes = arena_max_class_bytes;
  static constexpr std::size_t max_region_bytes = std::size_t{64} << 20;
  /// A block's origin beyond the size classes.
  static constexpr std::uint16_t heap_class = 0xffff;
  static constexpr std::uint16_t own_mapping_class = 0xfffe;

  static constexpr std::size_t class_count = arena_class_of(max_class_bytes) + 1;
  static_assert(chunk_bytes % max_class_bytes == 0,
                "a chunk holds whole blocks of the largest class");
  static_assert(class_count < own_mapping_class, "class numbers must not collide with origins");

  static constexpr std::size_t class_of(std::size_t bytes) noexcept {
    return arena_class_of(bytes);
  }
  static constexpr std::size_t class_bytes(std::size_t c) noexcept { return arena_class_bytes(c); }
  static constexpr std::size_t block_bytes(std::size_t bytes) noexcept {
    return arena_block_bytes(bytes);
  }

  /// Above this, faulting in one huge page counts as slow (see prefault_chunk).
  static constexpr std::chrono::microseconds slow_huge_page{1500};
  static constexpr int slow_huge_pages_to_decline = 2;

  explicit entry_arena(entry_arena_options options) : options_(std::move(options)) {
    const std::uint64_t limit = options_.limit_bytes;  // rounded up to chunks, without overflow
    options_.limit_bytes = limit / chunk_bytes * chunk_bytes;
    if (options_.limit_bytes != limit && options_.limit_bytes <= UINT64_MAX - chunk_bytes)
      options_.limit_bytes += chunk_bytes;
    if (!options_.huge_pages) huge_ = huge_pages::not_asked;
  }
  entry_arena(const entry_arena&) = delete;
  entry_arena& operator=(const entry_arena&) = delete;
  ~entry_arena() {
    for (const region& r : regions_) {
      unpoison(r.base, r.bytes);  // the addresses may be mapped again
      options_.pages.unmap(r.base, r.bytes);
    }
  }

  struct block {
    void* data = nullptr;
    std::uint16_t origin = 0;  // its class, heap_class or own_mapping_class
  };

  /// A block of at least `bytes`. Throws std::bad_alloc only when neither the
  /// arena nor operator new has memory.
  block allocate(std::size_t bytes) {
    if (options_.use_heap) return heap_block(bytes);
    if (bytes > max_class_bytes) return own_mapping(bytes);
    std::lock_guard lock(mutex_);
    return allocate_locked(bytes);
  }

  /// out[i] = a block of at least bytes[i], or none where bytes[i] == 0; one
  /// lock for the batch. On std::bad_alloc the blocks already given are freed.
  void allocate_many(std::span<const std::size_t> bytes, std::span<block> out) {
    const std::size_t count = std::min(bytes.size(), out.size());
    std::size_t done = 0;
    try {
      if (options_.use_heap) {
        for (; done < count; ++done)
          out[done] = bytes[done] == 0 ? block{} : heap_block(bytes[done]);
        return;
      }
      std::unique_lock lock(mutex_);
      for (; done < count; ++done) {
        if (bytes[done] == 0) {
          out[done] = block{};
        } else if (bytes[done] > max_class_bytes) {
          lock.unlock();
          out[done] = own_mapping(bytes[done]);
          lock.lock();
        } else {
          out[done] = allocate_locked(bytes[done]);
        }
      }
    } catch (...) {
      for (std::size_t i = 0; i < done; ++i)
        if (out[i].data != nullptr) release(out[i], bytes[i]);
      throw;
    }
  }

  /// Returns a block of at least `bytes` (the size it was allocated for).
  void release(block b, std::size_t bytes) noexcept {
    if (b.origin == heap_class) {
      ::operator delete (b.data, std::align_val_t{block_align});
      heap_bytes_.fetch_sub(arena_block_bytes(bytes), std::memory_order_relaxed);
      return;
    }
    if (b.origin == own_mapping_class) {
      const std::size_t size = block_bytes(bytes);
      options_.pages.unmap(b.data, size);
      large_bytes_.fetch_sub(size, std::memory_order_relaxed);
      return;
    }
    const std::size_t size = class_bytes(b.origin);
    std::lock_guard lock(mutex_);
    auto* node = static_cast<free_node*>(b.data);
    unpoison(node, sizeof(free_node));
    node->next = free_[b.origin];
    poison(node + 1, size - sizeof(free_node));
    free_[b.origin] = node;
    free_bytes_ += size;
  }

  /// Whether no live block came from operator new or a mapping of its own:
  /// every block is then in the chunks that ~entry_arena unmaps, and an owner
  /// going away with the arena need not release its blocks one by one.
  [[nodiscard]] bool all_blocks_in_chunks() const noexcept {
    return heap_bytes_.load(std::memory_order_relaxed) == 0 &&
           large_bytes_.load(std::memory_order_relaxed) == 0;
  }

  [[nodiscard]] entry_arena_stats stats() const {
    entry_arena_stats out;
    {
      std::lock_guard lock(mutex_);
      out.mapped_bytes = mapped_bytes_;
      out.carved_bytes = carved_bytes_;
      out.free_bytes = free_bytes_;
      out.reused_blocks = reused_blocks_;
      out.map_failures = map_failures_;
      out.huge_page_regions = huge_page_regions_;
      out.huge_pages_declined = huge_ == huge_pages::declined;
      out.regions = regions_.size();
      out.heap_blocks = heap_blocks_;
    }
    out.large_bytes = large_bytes_.load(std::memory_order_relaxed);
    out.heap_bytes = heap_bytes_.load(std::memory_order_relaxed);
    return out;
  }

  [[nodiscard]] std::uint64_t limit_bytes() const noexcept { return options_.limit_bytes; }

 private:
  struct free_node {
    free_node* next;
  };
  struct region {
    void* base;         // chunk-aligned
    std::size_t bytes;  // how much
  };

  block allocate_locked(std::size_t bytes) {
    const std::size_t c = class_of(bytes);
    if (free_node* node = pop_free(c)) return {node, static_cast<std::uint16_t>(c)};
    const std::size_t size = class_bytes(c);
    if (size > chunk_left_ && !next_chunk()) {
      // At the limit (or unmapped): a free block of a larger class, else the heap.
      for (std::size_t larger = c + 1; larger < class_count; ++larger)
        if (free_node* node = pop_free(larger)) return {node, static_cast<std::uint16_t>(larger)};
      ++heap_blocks_;
      return heap_block_counted(bytes);
    }
    void* at = chunk_next_;
    chunk_next_ += size;
    chunk_left_ -= size;
    carved_bytes_ += size;
    unpoison(at, size);
    return {at, static_cast<std::uint16_t>(c)};
  }

  free_node* pop_free(std::size_t c) noexcept {
    free_node* node = free_[c];
    if (node == nullptr) return nullptr;
    unpoison(node, class_bytes(c));
    free_[c] = node->next;
    free_bytes_ -= class_bytes(c);
    ++reused_blocks_;
    return node;
  }

  // Starts carving the next chunk (the rest of the current one is left
  // unused); maps a region when the current one is used up. False at the
  // limit or when mapping fails.
  bool next_chunk() {
    if (mapped_bytes_ + chunk_bytes > options_.limit_bytes) return false;
    if (region_left_ < chunk_bytes && !map_region()) return false;
    chunk_next_ = region_next_;
    chunk_left_ = chunk_bytes;
    region_next_ += chunk_bytes;
    region_left_ -= chunk_bytes;
    mapped_bytes_ += chunk_bytes;
    if (options_.prefault) prefault_chunk();
    poison(chunk_next_, chunk_bytes);
    return true;
  }

  // Faults the new chunk in with one call. While huge pages are asked for,
  // each chunk's fault is timed (thread CPU time): after `slow_huge_pages_to_decline`
  // chunks that each cost more than `slow_huge_page` (more than 4 KiB pages
  // cost for 2 MiB on the machines measured), huge pages are declined for the
  // rest of the arena (MADV_NOHUGEPAGE on what is left of the region, and not
  // asked for on later regions). Seen in a VM whose free page reporting hands
  // free 2 MiB blocks back to the host: a huge page then costs about 5 ms (one
  // host fault per 4 KiB) against 0.2 ms for one the guest still held, and
  // 0.8 ms for 512 pages of 4 KiB; the first few are often fast, the rest slow.
  void prefault_chunk() {
#ifdef MADV_POPULATE_WRITE
    const bool timed = huge_ == huge_pages::asked;
    const auto before = timed ? thread_cpu_time() : std::chrono::nanoseconds{0};
    const bool populated = ::madvise(chunk_next_, chunk_bytes, MADV_POPULATE_WRITE) == 0;
    if (!timed || !populated || thread_cpu_time() - before <= slow_huge_page) return;
    if (++slow_huge_chunks_ < slow_huge_pages_to_decline) return;
    huge_ = huge_pages::declined;
#ifdef MADV_NOHUGEPAGE
    if (region_left_ != 0)
      static_cast<void>(::madvise(region_next_, region_left_, MADV_NOHUGEPAGE));
#endif
#endif
  }
  static std::chrono::nanoseconds thread_cpu_time() noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
  }

  // Regions grow with the arena (a quarter of what is mapped, at least a
  // chunk, at most 64 MiB and never past the limit), so a small tier maps
  // little and a large one few times. Each is aligned to a chunk, so that
  // every chunk can be one huge page.
  bool map_region() {
    const std::size_t wanted = std::clamp<std::size_t>(
        mapped_bytes_ / 4 / chunk_bytes * chunk_bytes, chunk_bytes, max_region_bytes);
    const std::size_t bytes = std::min<std::size_t>(wanted, options_.limit_bytes - mapped_bytes_);
    regions_.reserve(regions_.size() + 1);  // may throw: before anything is mapped
    auto* raw = static_cast<std::byte*>(options_.pages.map(bytes + chunk_bytes));
    if (raw == nullptr) {
      ++map_failures_;
      return false;
    }
    // Keep the chunk-aligned part only.
    const auto address = reinterpret_cast<std::uintptr_t>(raw);
    const std::size_t head = (chunk_bytes - address % chunk_bytes) % chunk_bytes;
    if (head != 0) options_.pages.unmap(raw, head);
    options_.pages.unmap(raw + head + bytes, chunk_bytes - head);
    region_next_ = raw + head;
    region_left_ = bytes;
    regions_.push_back({region_next_, bytes});
    if (huge_ == huge_pages::asked) {
#ifdef MADV_HUGEPAGE
      if (::madvise(region_next_, bytes, MADV_HUGEPAGE) == 0) ++huge_page_regions_;
#endif
    }
    return true;
  }

  block own_mapping(std::size_t bytes) {
    const std::size_t size = block_bytes(bytes);
    void* at = options_.pages.map(size);
    if (at == nullptr) {
      {
        std::lock_guard lock(mutex_);
        ++map_failures_;
      }
      return heap_block(bytes);
    }
#ifdef MADV_HUGEPAGE
    if (options_.huge_pages && size >= chunk_bytes)
      static_cast<void>(::madvise(at, size, MADV_HUGEPAGE));
#endif
    large_bytes_.fetch_add(size, std::memory_order_relaxed);
    return {at, own_mapping_class};
  }

  block heap_block(std::size_t bytes) {
    {
      std::lock_guard lock(mutex_);
      ++heap_blocks_;
    }
    return heap_block_counted(bytes);
  }
  block heap_block_counted(std::size_t bytes) {
    void* at = ::operator new (bytes, std::align_val_t{block_align});
    heap_bytes_.fetch_add(arena_block_bytes(bytes), std::memory_order_relaxed);
    return {at, heap_class};
  }

  static void poison([[maybe_unused]] void* at, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(CONVEYOR_ARENA_ASAN)
    ASAN_POISON_MEMORY_REGION(at, bytes);
#endif
  }
  static void unpoison([[maybe_unused]] void* at, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(CONVEYOR_ARENA_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(at, bytes);
#endif
  }

  enum class huge_pages : std::uint8_t { asked, declined, not_asked };

  entry_arena_options options_;
  huge_pages huge_ = huge_pages::asked;
  int slow_huge_chunks_ = 0;
  mutable std::mutex mutex_;
  std::array<free_node*, class_count> free_{};
  std::vector<region> regions_;
  std::byte* region_next_ = nullptr;
  std::size_t region_left_ = 0;
  std::byte* chunk_next_ = nullptr;
  std::size_t chunk_left_ = 0;
  std::uint64_t mapped_bytes_ = 0;
  std::uint64_t carved_bytes_ = 0;
  std::uint64_t free_bytes_ = 0;
  std::uint64_t reused_blocks_ = 0;
  std::uint64_t heap_blocks_ = 0;
  std::uint64_t map_failures_ = 0;
  std::uint64_t huge_page_regions_ = 0;
  std::atomic<std::uint64_t> large_bytes_{0};
  std::atomic<std::uint64_t> heap_bytes_{0};
};

}  // namespace conveyor::detail
