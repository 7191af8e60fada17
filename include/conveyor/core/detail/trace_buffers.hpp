// conveyor/core/detail/trace_buffers.hpp: the machinery behind trace_file:
// per-thread event buffers, the events and labels spans record, and the
// per-thread state a trace file finds a thread's buffer by.
//
// Why it is built this way:
// - Tracing off must cost nothing measurable. A stage's counters hold an
//   atomic pointer to its trace label; a span loads it once (relaxed) and does
//   nothing else when it is null: no clock read, no allocation, no store.
// - Tracing on must not serialize the threads it watches. Each thread appends
//   to a buffer of its own (a chain of fixed blocks, single writer); a block's
//   count is published with a release store and read by the flusher with an
//   acquire load, so the writer never takes a lock per event. Only the first
//   event of a thread in a file (a cache miss) takes the file's mutex.
// - Flushing happens at the end of each epoch run and when the file closes,
//   on the thread that calls it, while other pipelines sharing the file may go
//   on writing: the flusher reads only what a block's count published and
//   frees only blocks the writer has left.
// - The file is valid JSON after every flush: the closing "]}" is written
//   after the events and overwritten by the next flush.
// - Threads are per epoch run (parallel's workers, prefetch's thread). A thread
//   that exits retires its buffer, and the next thread with the same name
//   takes it over, so ten epochs show two worker tracks, not twenty.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "conveyor/core/detail/json.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

class trace_file;

namespace detail {

/// What a span measured: a stage's own work, or one of the waits around it.
enum class span_kind : std::uint8_t {
  call,             ///< the stage ran (a source's read, a map, a copy issued)
  wait_upstream,    ///< the stage's consumer waited for its output (starved)
  wait_downstream,  ///< the stage waited for room downstream (blocked)
  handoff,          ///< the stage handed a batch to the next thread's queue
  next,             ///< the consumer's call for the next batch
};

inline constexpr std::uint64_t no_batch = ~std::uint64_t{0};

/// A name spans are recorded under, interned per trace file (stable address).
struct trace_label {
  trace_file* file;
  std::string name;
};

struct trace_event {
  const trace_label* label;
  std::int64_t begin_ns;
  std::int64_t duration_ns;
  std::uint64_t epoch;
  std::uint64_t batch;
  span_kind kind;
};

inline std::int64_t trace_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// One thread's events in one file: a chain of blocks, one writer (the
/// thread that owns it), one reader (the flusher, under the file's mutex).
class thread_buffer {
 public:
  thread_buffer(std::uint32_t tid, std::string role, std::string name)
      : tid_(tid), role_(std::move(role)), name_(std::move(name)) {}
  thread_buffer(const thread_buffer&) = delete;
  thread_buffer& operator=(const thread_buffer&) = delete;
  ~thread_buffer() {
    for (block* b = head_; b != nullptr;)
      delete std::exchange(b, b->next.load(std::memory_order_relaxed));
  }

  /// Writer only. Allocates a block every `block::capacity` events; false
  /// when that allocation failed (the event is dropped).
  bool push(const trace_event& event) noexcept {
    auto n = tail_->count.load(std::memory_order_relaxed);
    if (n == block::capacity) {
      auto* fresh = new (std::nothrow) block;
      if (fresh == nullptr) return false;
      tail_->next.store(fresh, std::memory_order_release);
      tail_ = fresh;
      n = 0;
    }
    tail_->events[n] = event;
    tail_->count.store(n + 1, std::memory_order_release);
    last_end_ns = std::max(last_end_ns, event.begin_ns + event.duration_ns);
    return true;
  }

  /// Reader only: calls emit(event) for every event published since the
  /// last drain, and frees the blocks the writer has left.
  template <class Emit>
  void drain(Emit&& emit) {
    for (;;) {
      auto n = head_->count.load(std::memory_order_acquire);
      for (; read_ < n; ++read_) emit(head_->events[read_]);
      if (n < block::capacity) return;
      block* next = head_->next.load(std::memory_order_acquire);
      if (next == nullptr) return;
      delete std::exchange(head_, next);
      read_ = 0;
    }
  }

  [[nodiscard]] std::uint32_t tid() const noexcept { return tid_; }
  [[nodiscard]] const std::string& role() const noexcept {
    return role_;
  }  ///< as the thread named itself
  [[nodiscard]] const std::string& name() const noexcept {
    return name_;
  }  ///< role, numbered if shared

  // Owned by the file's registry (under its mutex), except `retired`.
  std::thread::id owner;
  std::atomic<bool> retired{false};  ///< its thread exited; another may take it over
  std::int64_t last_end_ns = 0;      ///< writer's: when its latest span ended
  bool named = false;                ///< its thread_name event has been written

 private:
  struct block {
    static constexpr std::size_t capacity = 1024;
    std::atomic<std::size_t> count{0};
    std::atomic<block*> next{nullptr};
    trace_event events[capacity];
  };

  std::uint32_t tid_;
  std::string role_;
  std::string name_;
  block* head_ = new block;  // reader's end
  block* tail_ = head_;      // writer's end
  std::size_t read_ = 0;     // reader's position in head_
};

/// A thread's view of tracing: its name, and the buffers it writes in the
/// files it traced into last (a small cache, so that an event finds its
/// buffer without a lock). Destroyed when the thread exits: retires them.
struct thread_trace_state {
  struct entry {
    std::uint64_t file_id = 0;
    std::shared_ptr<thread_buffer> buffer;
  };
  std::string name;            ///< set by the user (trace_thread_name)
  const char* role = nullptr;  ///< set by the library's threads, without allocating
  unsigned role_index = 0;     ///< 0: none
  std::array<entry, 4> entries;
  std::size_t next_slot = 0;

  thread_trace_state() = default;
  thread_trace_state(const thread_trace_state&) = delete;
  thread_trace_state& operator=(const thread_trace_state&) = delete;
  ~thread_trace_state() {
    for (auto& e : entries)
      if (e.buffer) e.buffer->retired.store(true, std::memory_order_release);
  }
};

inline thread_trace_state& this_thread_trace() {
  thread_local thread_trace_state state;
  return state;
}

inline std::uint64_t next_trace_file_id() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

inline std::uint64_t trace_process_id() noexcept {
#if __has_include(<unistd.h>)
  return static_cast<std::uint64_t>(::getpid());
#else
  return 1;
#endif
}

}  // namespace detail
}  // namespace conveyor
