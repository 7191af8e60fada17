// conveyor/core/buffer_pool.hpp: where batch memory comes from.
//
// Buffers flow backwards: the sink of a pipeline owns a pool, and the stage
// that produces each column the sink delivers allocates it from that pool, so a
// decoder writes straight into the memory the consumer will use (pageable by
// default; pinned and device pools plug in through the same `buffer_pool`
// interface). Intermediate buffers (index columns, text, cache merges) come
// from a pageable pool. A `pooled_buffer` returns its memory to the pool when
// destroyed, so in steady state no batch allocates; a sink can `detach()` it
// into a deleter (a tensor's, say) without a copy.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace conveyor {

/// Where a column's memory lives. Part of a column's type (dense<"x", float,
/// memory_space::device>): a stage that reads columns on the host cannot
/// follow one that delivers device memory (a compile error naming both).
/// `host` means any host-accessible memory; whether a host buffer is also
/// page-locked is its pool's run-time property (`buffer_pool::space()`),
/// because a pinned pool falls back to pageable memory where there is no GPU
/// driver.
enum class memory_space : std::uint8_t {
  host,    ///< pageable or pinned host memory: host code may read and write it
  pinned,  ///< page-locked host memory: host-accessible, copied to a GPU asynchronously
  device,  ///< GPU memory: only device code and copies may touch it
};

/// Can host code read memory of this space?
constexpr bool host_accessible(memory_space space) noexcept { return space != memory_space::device; }

constexpr const char* to_string(memory_space space) noexcept {
  switch (space) {
    case memory_space::host: return "pageable";
    case memory_space::pinned: return "pinned";
    case memory_space::device: return "device";
  }
  return "?";
}

/// The interface every pool implements. Thread-safe: stages on several
/// threads allocate concurrently and consumers release from their own thread.
class buffer_pool {
 public:
  /// Alignment of every buffer: enough for AVX-512 loads and CUDA copies.
  static constexpr std::size_t alignment = 64;

  virtual ~buffer_pool() = default;
  /// Returns at least `bytes` bytes aligned to `alignment`; throws std::bad_alloc.
  virtual void* acquire(std::size_t bytes, std::size_t& capacity) = 0;
  /// Gives memory obtained from acquire back; never throws.
  virtual void release(void* memory, std::size_t capacity) noexcept = 0;
  /// Where the memory it hands out lives (a pinned pool that fell back to
  /// pageable memory answers host).
  [[nodiscard]] virtual memory_space space() const noexcept = 0;
  /// A short name for stats ("pageable", "pinned", "device").
  [[nodiscard]] const char* kind() const noexcept { return to_string(space()); }
};

/// Memory released from a pooled_buffer (see pooled_buffer::detach): call it
/// with the pointer, once, to give the memory back to its pool. Copyable, so
/// it fits std::function-based deleters such as LibTorch's from_blob.
class buffer_release {
 public:
  buffer_release() = default;
  buffer_release(std::shared_ptr<buffer_pool> pool, std::size_t capacity) noexcept
      : pool_(std::move(pool)), capacity_(capacity) {}
  void operator()(void* memory) const noexcept {
    if (memory != nullptr && pool_) pool_->release(memory, capacity_);
  }
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool() const noexcept { return pool_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::shared_ptr<buffer_pool> pool_;
  std::size_t capacity_ = 0;
};

/// Memory from a pool, returned to it on destruction. Move-only. Holds the pool
/// alive, so a batch may outlive the pipeline that produced it.
class pooled_buffer {
 public:
  pooled_buffer() = default;
  pooled_buffer(std::shared_ptr<buffer_pool> pool, std::size_t bytes) : pool_(std::move(pool)) {
    if (bytes > 0) data_ = pool_->acquire(bytes, capacity_);
  }
  pooled_buffer(pooled_buffer&& other) noexcept
      : pool_(std::move(other.pool_)), data_(std::exchange(other.data_, nullptr)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  pooled_buffer& operator=(pooled_buffer&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::move(other.pool_);
      data_ = std::exchange(other.data_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  pooled_buffer(const pooled_buffer&) = delete;
  pooled_buffer& operator=(const pooled_buffer&) = delete;
  ~pooled_buffer() { reset(); }

  void reset() noexcept {
    if (data_ != nullptr) pool_->release(data_, capacity_);
    data_ = nullptr;
    capacity_ = 0;
  }
  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// Gives up ownership without freeing: the caller now owns `data()` and
  /// must call the returned releaser with it exactly once (a tensor deleter,
  /// say). The memory is not reused by the pool until then. Leaves this empty.
  [[nodiscard]] buffer_release detach() noexcept {
    buffer_release release(pool_, capacity_);
    data_ = nullptr;
    capacity_ = 0;
    return release;
  }
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool() const noexcept { return pool_; }

 private:
  std::shared_ptr<buffer_pool> pool_;
  void* data_ = nullptr;
  std::size_t capacity_ = 0;
};

/// Ordinary heap memory, recycled by size class (powers of two from 256 B).
/// Keeps at most `max_cached_per_class` free buffers per class; the rest go
/// back to the heap. acquire/release take one short mutex per call (per
/// column per batch, never per record).
///
/// Requests of 1 MiB and more (a batch's column: 256 rows of 1024 float32 is
/// 1 MiB) get at least 2 MiB, mapped on a 2 MiB boundary and advised for
/// transparent huge pages (Linux; where THP is off they are ordinary pages),
/// so writing a batch's column takes one TLB entry per 2 MiB instead of 512.
/// Measured under parallel(2), where several batches' columns are written in
/// turn and none stays in the cache: the DEA pipeline's median CPU per row
/// was lower in 4 of 5 interleaved before/after pairs, by 9-13% in the last
/// three (docs/execution.md). The rounding stays within the factor of two
/// every size class already allows.
class pageable_pool final : public buffer_pool {
 public:
  static constexpr memory_space static_space = memory_space::host;
  explicit pageable_pool(std::size_t max_cached_per_class = 64) : max_cached_(max_cached_per_class) {}
  pageable_pool(const pageable_pool&) = delete;
  pageable_pool& operator=(const pageable_pool&) = delete;
  ~pageable_pool() override {
    for (unsigned c = 0; c < classes; ++c)
      for (void* p : free_[c]) deallocate(p, c);
  }

  void* acquire(std::size_t bytes, std::size_t& capacity) override {
    unsigned size_class = class_of(bytes);
    if (bytes >= huge_request) size_class = std::max(size_class, huge_class);
    capacity = std::size_t{1} << size_class;
    {
      std::lock_guard lock(mutex_);
      auto& list = free_[size_class];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        return p;
      }
    }
    return allocate(size_class);
  }

  void release(void* memory, std::size_t capacity) noexcept override {
    unsigned size_class = class_of(capacity);
    {
      std::lock_guard lock(mutex_);
      auto& list = free_[size_class];
      if (list.size() < max_cached_) {
        try {
          list.push_back(memory);
          return;
        } catch (...) {  // no room to remember it: give it back to the heap
        }
      }
    }
    deallocate(memory, size_class);
  }

  [[nodiscard]] memory_space space() const noexcept override { return memory_space::host; }

 private:
  static constexpr unsigned min_class = 8;    // 256 bytes
  static constexpr unsigned huge_class = 21;  // 2 MiB: one transparent huge page
  static constexpr std::size_t huge_request = std::size_t{1} << 20;
  static constexpr std::size_t huge_page = std::size_t{1} << huge_class;

  static void* allocate(unsigned size_class) {
    const std::size_t capacity = std::size_t{1} << size_class;
#if defined(__linux__)
    if (size_class >= huge_class) {
      // Map one huge page more than needed and cut the mapping back to a
      // 2 MiB boundary: the heap would not align it and could not advise it.
      const std::size_t mapped = capacity + huge_page;
      void* block =
          ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (block == MAP_FAILED) throw std::bad_alloc();
      const auto start = reinterpret_cast<std::uintptr_t>(block);
      const std::uintptr_t aligned = (start + huge_page - 1) & ~(std::uintptr_t{huge_page} - 1);
      if (aligned != start) ::munmap(block, aligned - start);
      if (const std::size_t tail = huge_page - (aligned - start); tail != 0)
        ::munmap(reinterpret_cast<void*>(aligned + capacity), tail);
      ::madvise(reinterpret_cast<void*>(aligned), capacity, MADV_HUGEPAGE);  // advice: may fail
      return reinterpret_cast<void*>(aligned);
    }
#endif
    return ::operator new(capacity, std::align_val_t{alignment});
  }
  static void deallocate(void* memory, unsigned size_class) noexcept {
#if defined(__linux__)
    if (size_class >= huge_class) {
      ::munmap(memory, std::size_t{1} << size_class);
      return;
    }
#endif
    ::operator delete(memory, std::align_val_t{alignment});
  }
  static unsigned class_of(std::size_t bytes) noexcept {
    unsigned c = min_class;
    while ((std::size_t{1} << c) < bytes) ++c;
    return c;
  }
  std::mutex mutex_;
  static constexpr unsigned classes = 64;
  std::vector<void*> free_[classes];
  std::size_t max_cached_;
};

/// A pool whose memory host code may touch (what with_pool accepts).
template <class P>
concept host_pool = std::derived_from<P, buffer_pool> && requires { P::static_space; } &&
                    host_accessible(P::static_space);

/// The pool a pipeline uses when its sink names none.
inline std::shared_ptr<buffer_pool> default_pool() { return std::make_shared<pageable_pool>(); }

}  // namespace conveyor
