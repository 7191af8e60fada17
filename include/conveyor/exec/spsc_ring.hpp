// conveyor/exec/spsc_ring.hpp: a bounded single-producer single-consumer queue
// of move-only values that can block, close and cancel.
//
// Why not boost::lockfree::spsc_queue directly: it needs copyable values and
// cannot block, so a prefetch thread would spin or sleep. This ring keeps the
// same lock-free design (two monotonically increasing counters, each written by
// one side) and adds C++20 atomic wait/notify on two 32-bit event counters,
// which sleep in the kernel only when the ring is empty or full.
// bench/exec/queue.cpp compares the handoff cost with boost's spsc_queue.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <vector>

namespace conveyor {

template <class T>
class spsc_ring {
 public:
  /// Holds at most `capacity` values (at least 1). Allocates once, here.
  explicit spsc_ring(std::size_t capacity) : slots_(capacity < 1 ? 1 : capacity), limit_(slots_.size()) {}
  spsc_ring(const spsc_ring&) = delete;
  spsc_ring& operator=(const spsc_ring&) = delete;

  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
  /// How many values push() lets queue up: capacity() unless set_limit said
  /// fewer (prefetch(autotune) grows its depth this way without reallocating).
  [[nodiscard]] std::size_t limit() const noexcept { return limit_.load(std::memory_order_acquire); }
  /// Either side, any time: push() blocks once `limit` values (clamped to
  /// 1..capacity()) are queued. Values already queued beyond a lowered
  /// limit stay. Wakes a producer blocked in push so it sees a raised limit.
  void set_limit(std::size_t limit) noexcept {
    limit_.store(std::clamp<std::size_t>(limit, 1, slots_.size()), std::memory_order_release);
    signal(consumer_events_, producer_sleeping_);
  }

  /// Values queued now (approximate when called concurrently).
  [[nodiscard]] std::size_t size() const noexcept {
    return static_cast<std::size_t>(tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire));
  }

  /// Producer only. Blocks while full. Returns false, dropping nothing of the
  /// caller's, if the consumer cancelled.
  bool push(T&& value) {
    auto tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (cancelled_.load(std::memory_order_acquire)) return false;
      auto seen = consumer_events_.load(std::memory_order_acquire);
      if (tail - head_.load(std::memory_order_acquire) < limit_.load(std::memory_order_acquire)) break;
      if (cancelled_.load(std::memory_order_acquire)) return false;
      if (spin_until_changed(consumer_events_, seen)) continue;
      sleep_until_changed(consumer_events_, seen, producer_sleeping_);
    }
    slots_[tail % slots_.size()].emplace(std::move(value));
    tail_.store(tail + 1, std::memory_order_release);
    signal(producer_events_, consumer_sleeping_);
    return true;
  }

  /// Producer only: no more values will come. Wakes the consumer.
  void close() noexcept {
    closed_.store(true, std::memory_order_release);
    signal(producer_events_, consumer_sleeping_);
  }

  /// Consumer only. Blocks while empty; nullopt once closed and drained.
  std::optional<T> pop() {
    auto head = head_.load(std::memory_order_relaxed);
    for (;;) {
      auto seen = producer_events_.load(std::memory_order_acquire);
      if (tail_.load(std::memory_order_acquire) != head) break;
      if (closed_.load(std::memory_order_acquire)) {
        if (tail_.load(std::memory_order_acquire) != head) break;
        return std::nullopt;
      }
      if (spin_until_changed(producer_events_, seen)) continue;
      sleep_until_changed(producer_events_, seen, consumer_sleeping_);
    }
    auto& slot = slots_[head % slots_.size()];
    std::optional<T> value(std::move(*slot));
    slot.reset();
    head_.store(head + 1, std::memory_order_release);
    signal(consumer_events_, producer_sleeping_);
    return value;
  }

  /// Consumer only: stop accepting values; wakes a producer blocked in push.
  void cancel() noexcept {
    cancelled_.store(true, std::memory_order_release);
    signal(consumer_events_, producer_sleeping_);
  }

 private:
  // A handoff usually completes within a microsecond or two: spinning that long
  // before sleeping in the kernel saves a futex wait and wake per item. The
  // spin is bounded in time, not in iterations: a pause takes 27 ns on the
  // EPYC VMs here, so the former 2000 pauses spun 50 us of CPU on every wait
  // that outlasted them (each batch a fast consumer waits for: 0.07-0.08 us
  // of the consumer's CPU per DEA row, now 0.02-0.03), where a futex wait and
  // wake costs a few.
  static bool spin_until_changed(const std::atomic<std::uint32_t>& events, std::uint32_t seen) noexcept {
    const auto deadline = std::chrono::steady_clock::now() + spin_budget;
    for (;;) {
      for (int i = 0; i < pauses_between_clock_reads; ++i) {
        if (events.load(std::memory_order_acquire) != seen) return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
    }
  }
  // The sleeper announces itself before its last check; the signaller bumps
  // the counter before looking for a sleeper. Both sequentially consistent, so
  // either the sleeper sees the bump or the signaller sees the sleeper: no
  // lost wake-up, and no futex call at all while nobody sleeps.
  static void sleep_until_changed(std::atomic<std::uint32_t>& events, std::uint32_t seen,
                                  std::atomic<bool>& sleeping) noexcept {
    sleeping.store(true, std::memory_order_seq_cst);
    if (events.load(std::memory_order_seq_cst) == seen) events.wait(seen, std::memory_order_seq_cst);
    sleeping.store(false, std::memory_order_relaxed);
  }
  static void signal(std::atomic<std::uint32_t>& events, std::atomic<bool>& sleeping) noexcept {
    events.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping.load(std::memory_order_seq_cst)) events.notify_one();
  }
  static constexpr std::chrono::nanoseconds spin_budget{4000};
  static constexpr int pauses_between_clock_reads = 16;
  static constexpr std::size_t line = 64;
  std::vector<std::optional<T>> slots_;
  std::atomic<std::size_t> limit_;
  alignas(line) std::atomic<std::uint64_t> head_{0};
  alignas(line) std::atomic<std::uint64_t> tail_{0};
  alignas(line) std::atomic<std::uint32_t> producer_events_{0};
  alignas(line) std::atomic<std::uint32_t> consumer_events_{0};
  alignas(line) std::atomic<bool> consumer_sleeping_{false};
  alignas(line) std::atomic<bool> producer_sleeping_{false};
  std::atomic<bool> closed_{false};
  std::atomic<bool> cancelled_{false};
};

}  // namespace conveyor
