// tests/support/counting_pool.hpp: a buffer_pool of pageable memory that
// counts what it hands out and remembers which pointers are live, so a test
// can tell which columns came from a sink's pool and when they went back.
#pragma once

#include <atomic>
#include <conveyor/core/buffer_pool.hpp>
#include <cstddef>
#include <mutex>
#include <new>
#include <set>

namespace conveyor::test {

/// Thread-safe; every acquire is a fresh allocation (no reuse), so a live
/// pointer identifies one buffer.
struct counting_pool final : buffer_pool {
  static constexpr memory_space static_space = memory_space::host;
  std::atomic<int> acquired{0}, released{0};
  std::mutex mutex;
  std::set<void*> live;

  void* acquire(std::size_t bytes, std::size_t& capacity) override {
    capacity = bytes < 64 ? 64 : bytes;
    void* p = ::operator new(capacity, std::align_val_t{alignment});
    ++acquired;
    std::lock_guard lock(mutex);
    live.insert(p);
    return p;
  }
  void release(void* memory, std::size_t) noexcept override {
    ++released;
    {
      std::lock_guard lock(mutex);
      live.erase(memory);
    }
    ::operator delete(memory, std::align_val_t{alignment});
  }
  [[nodiscard]] memory_space space() const noexcept override { return static_space; }
  /// Is `p` a buffer this pool handed out and that is not back yet?
  bool holds(const void* p) {
    std::lock_guard lock(mutex);
    return live.count(const_cast<void*>(p)) == 1;
  }
};

}  // namespace conveyor::test
