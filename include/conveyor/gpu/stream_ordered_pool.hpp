// conveyor/gpu/stream_ordered_pool.hpp: a buffer pool whose buffers GPU work
// may still read when host code lets go of them.
//
// A pinned host buffer being copied to the GPU, or a device buffer a kernel
// reads, must not be handed out again until that work has completed; LibTorch's
// recordStream does nothing for memory it did not allocate, so the pool does it:
//
//   pool.release_after(ptr, capacity, stream)
//
// records an event (from the pool's own cache of events) on `stream` now and
// keeps the buffer aside; acquire() polls those events (cudaEventQuery, never
// blocking) and reuses a buffer only once its event has completed. The host
// thread never waits, except when the pool is at its byte bound and only
// waiting buffers could make room (then it waits for the oldest one).
//
// Buffers are recycled by size class (powers of two from 256 B). `max_bytes`
// bounds everything the pool holds (in use, cached and waiting); a request
// past it first frees cached buffers of other classes, then waits for pending
// ones, then throws pool_exhausted (a std::bad_alloc naming the figures).
// Thread-safe: one mutex, held briefly per acquire/release (per column per
// batch). Destroying the pool waits for every pending event, then frees all
// memory; buffers still in use keep the pool alive (pooled_buffer holds a
// shared_ptr), so it is never destroyed under a live buffer.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/gpu/cuda_error.hpp"

namespace conveyor {

/// Thrown by a stream-ordered pool's acquire when a buffer would pass its
/// max_bytes even after freeing every cached and waiting buffer.
class pool_exhausted : public std::bad_alloc {
 public:
  explicit pool_exhausted(std::string message) : message_(std::move(message)) {}
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// What a stream-ordered pool holds, for stats and tests.
struct pool_usage {
  /// Allocated from the system: in use, cached or waiting.
  std::size_t held_bytes = 0;
  /// Free and ready for reuse.
  std::size_t cached_bytes = 0;
  /// Released after an event that had not completed when last polled.
  std::size_t waiting_buffers = 0;
  std::size_t max_bytes = 0;
};

class stream_ordered_pool : public buffer_pool {
 public:
  stream_ordered_pool(const stream_ordered_pool&) = delete;
  stream_ordered_pool& operator=(const stream_ordered_pool&) = delete;

  void* acquire(std::size_t bytes, std::size_t& capacity) override {
    const unsigned size_class = class_of(bytes);
    capacity = std::size_t{1} << size_class;
    {
      std::unique_lock lock(mutex_);
      poll_locked();
      auto& list = free_[size_class];
      if (!list.empty()) {
        void* memory = list.back();
        list.pop_back();
        cached_bytes_ -= capacity;
        return memory;
      }
      make_room_locked(capacity, lock);
      if (!free_[size_class].empty()) {  // waiting for a pending buffer freed one of this class
        void* memory = free_[size_class].back();
        free_[size_class].pop_back();
        cached_bytes_ -= capacity;
        return memory;
      }
      held_bytes_ += capacity;  // reserved before allocating outside the lock
    }
    try {
      return allocate_block(capacity);
    } catch (...) {
      std::lock_guard lock(mutex_);
      held_bytes_ -= capacity;
      throw;
    }
  }

  /// Gives the buffer back for reuse once the work queued on `stream` so far
  /// has completed. Never blocks, never throws: if the event cannot be
  /// recorded, it synchronizes the stream and releases at once.
  void release_after(void* memory, std::size_t capacity, cudaStream_t stream) noexcept {
    if (memory == nullptr) return;
    if (!uses_events_) {
      put_free(memory, capacity);
      return;
    }
    std::lock_guard lock(mutex_);
    cudaEvent_t event = nullptr;
    try {
      event = take_event_locked();
      if (cudaEventRecord(event, stream) != cudaSuccess)
        throw cuda_error("cudaEventRecord", cudaGetLastError());
      pending_.push_back({memory, class_of(capacity), event});
      return;
    } catch (...) {
      if (event != nullptr) (void)cudaEventDestroy(event);
      (void)cudaStreamSynchronize(stream);
      (void)cudaGetLastError();
    }
    put_free_locked(memory, capacity);
  }

  [[nodiscard]] pool_usage usage() const {
    std::lock_guard lock(mutex_);
    return {held_bytes_, cached_bytes_, pending_.size(), max_bytes_};
  }

 protected:
  stream_ordered_pool(std::size_t max_bytes, bool uses_events)
      : max_bytes_(max_bytes), uses_events_(uses_events) {}
  ~stream_ordered_pool() override = default;

  /// Allocates `bytes` (a power of two) from the system; throws on failure.
  virtual void* allocate_block(std::size_t bytes) = 0;
  /// Frees memory allocate_block returned.
  virtual void free_block(void* memory) noexcept = 0;

  /// Puts a buffer host code let go of straight back on its free list.
  void put_free(void* memory, std::size_t capacity) noexcept {
    std::lock_guard lock(mutex_);
    put_free_locked(memory, capacity);
  }

  /// Waits for every pending event, then frees all cached memory. The most
  /// derived destructor calls it (free_block is virtual).
  void drain() noexcept {
    std::lock_guard lock(mutex_);
    for (auto& waiting : pending_) {
      (void)cudaEventSynchronize(waiting.event);
      (void)cudaEventDestroy(waiting.event);
      free_block(waiting.memory);
    }
    pending_.clear();
    for (auto& list : free_) {
      for (void* memory : list) free_block(memory);
      list.clear();
    }
    for (cudaEvent_t event : spare_events_) (void)cudaEventDestroy(event);
    spare_events_.clear();
    (void)cudaGetLastError();
  }

  static unsigned class_of(std::size_t bytes) noexcept {
    unsigned c = min_class;
    while ((std::size_t{1} << c) < bytes) ++c;
    return c;
  }

 private:
  static constexpr unsigned min_class = 8;  // 256 bytes
  struct waiting_buffer {
    void* memory;
    unsigned size_class;
    cudaEvent_t event;
  };

  cudaEvent_t take_event_locked() {
    if (!spare_events_.empty()) {
      cudaEvent_t event = spare_events_.back();
      spare_events_.pop_back();
      return event;
    }
    cudaEvent_t event = nullptr;
    check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming),
               "cudaEventCreateWithFlags");
    return event;
  }

  // Moves every buffer whose event has completed to its free list, oldest first.
  void poll_locked() noexcept {
    while (!pending_.empty()) {
      const cudaError_t state = cudaEventQuery(pending_.front().event);
      if (state == cudaErrorNotReady) break;
      (void)cudaGetLastError();
      finish_front_locked();
    }
  }
  void finish_front_locked() noexcept {
    waiting_buffer done = pending_.front();
    pending_.pop_front();
    try {
      spare_events_.push_back(done.event);
    } catch (...) {
      (void)cudaEventDestroy(done.event);
    }
    put_free_locked(done.memory, std::size_t{1} << done.size_class);
  }

  void put_free_locked(void* memory, std::size_t capacity) noexcept {
    try {
      free_[class_of(capacity)].push_back(memory);
      cached_bytes_ += capacity;
    } catch (...) {  // no room to remember it: give it back to the system
      free_block(memory);
      held_bytes_ -= capacity;
    }
  }

  void make_room_locked(std::size_t capacity, std::unique_lock<std::mutex>&) {
    while (held_bytes_ + capacity > max_bytes_) {
      bool freed = false;
      for (unsigned c = min_class; c < 64 && !freed; ++c) {
        if (free_[c].empty()) continue;
        free_block(free_[c].back());
        free_[c].pop_back();
        held_bytes_ -= std::size_t{1} << c;
        cached_bytes_ -= std::size_t{1} << c;
        freed = true;
      }
      if (freed) continue;
      if (!pending_.empty()) {
        (void)cudaEventSynchronize(pending_.front().event);
        finish_front_locked();
        if (!free_[class_of(capacity)].empty()) return;
        continue;
      }
      throw pool_exhausted(std::string(kind()) + " pool: a buffer of " + std::to_string(capacity) +
                           " bytes would pass max_bytes " + std::to_string(max_bytes_) + " (" +
                           std::to_string(held_bytes_) + " bytes in use)");
    }
  }

  mutable std::mutex mutex_;
  std::vector<void*> free_[64];
  std::deque<waiting_buffer> pending_;
  std::vector<cudaEvent_t> spare_events_;
  std::size_t held_bytes_ = 0;
  std::size_t cached_bytes_ = 0;
  std::size_t max_bytes_;
  bool uses_events_;
};

/// Gives a column buffer back to its pool once the work queued on `stream`
/// has completed: release_after for a stream-ordered pool; at once for a
/// pageable one (cudaMemcpyAsync from pageable memory returns only after it
/// has read the source); after synchronizing the stream for any other pool.
inline void release_after_stream(pooled_buffer buffer, cudaStream_t stream) noexcept {
  if (buffer.data() == nullptr) return;
  void* memory = buffer.data();
  buffer_release release = buffer.detach();
  if (auto* ordered = dynamic_cast<stream_ordered_pool*>(release.pool().get())) {
    ordered->release_after(memory, release.capacity(), stream);
  } else if (dynamic_cast<pageable_pool*>(release.pool().get()) != nullptr) {
    release(memory);
  } else {
    (void)cudaStreamSynchronize(stream);
    release(memory);
  }
}

}  // namespace conveyor
