// conveyor/cache/detail/eviction_policies.hpp: the per-shard eviction state of
// a memory tier: S3-FIFO (default), LRU and SIEVE.
//
// A policy sees a shard's entries through four calls. Except for `on_hit`, the
// shard holds its exclusive lock around them. `on_hit` runs under the shared
// lock (so it may only touch the entry's relaxed atomic counter) unless the
// policy sets `hit_needs_exclusive_lock` (LRU, which must relink on every hit).
//   on_insert(entry)  link a new entry
//   on_hit(entry)     record an access
//   on_erase(entry)   unlink an entry the user erased or replaced
//   evict_one()       unlink and return the victim, nullptr when empty
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "conveyor/cache/detail/linear_probe.hpp"
#include "conveyor/cache/detail/memory_entry.hpp"

namespace conveyor::detail {

// What a policy is told about its shard when it is built.
struct eviction_budget {
  std::uint64_t shard_capacity_bytes = 0;
  double small_queue_fraction = 0.1;  // S3-FIFO's small queue share of the bytes
};

// Keys evicted from S3-FIFO's small queue, remembered by hash only (a 64-bit
// hash makes a false ghost hit a 2^-64 event, and a false hit only places one
// new entry in main instead of small). FIFO order; the ghost holds keys whose
// charged sizes add up to at most `capacity_bytes` ("as large as main"). A key
// taken out of the ghost leaves a stale FIFO slot that is skipped when it ages out.
//
// Layout: the FIFO is a ring of {hash, sequence, bytes} records in one
// vector; the live keys are an open-addressing table of {hash, sequence}
// slots (linear probing, backward-shift deletion, at most half full), so a
// put into a full tier (one `take`, and per eviction one `remember` and about
// one `forget_oldest`) touches a few adjacent slots instead of allocating and
// freeing hash-map nodes (it was std::deque + std::unordered_map: about
// three node misses and a malloc/free pair per evicting put).
// Allocates only when the ring or the table grows (both double; neither
// shrinks); std::bad_alloc from `remember` leaves the ghost as it was.
class ghost_fifo {
 public:
  explicit ghost_fifo(std::uint64_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

  void remember(std::uint64_t hash, std::uint64_t charged_bytes) {
    if (charged_bytes > capacity_bytes_) return;
    reserve_one();  // the only step that can fail: before anything changes
    const std::uint64_t sequence = next_sequence_++;
    ring_[(ring_head_ + ring_size_) & (ring_.size() - 1)] = record{hash, sequence, charged_bytes};
    ++ring_size_;
    if (live_slot* found = find(hash)) {
      found->sequence = sequence;  // remembered again: its older ring record is now stale
    } else {
      std::size_t at = hash & mask_;
      while (live_[at].sequence != 0) at = (at + 1) & mask_;
      live_[at] = live_slot{hash, sequence};
      ++live_count_;
    }
    bytes_ += charged_bytes;
    while (bytes_ > capacity_bytes_) forget_oldest();
  }

  // True (and forgets the key) when the key was recently evicted.
  bool take(std::uint64_t hash) noexcept {
    live_slot* found = find(hash);
    if (found == nullptr) return false;
    erase(static_cast<std::size_t>(found - live_.data()));
    return true;
  }

  [[nodiscard]] std::size_t size() const noexcept { return live_count_; }

 private:
  struct record {
    std::uint64_t hash = 0;
    std::uint64_t sequence = 0;
    std::uint64_t charged_bytes = 0;
  };
  struct live_slot {
    std::uint64_t hash = 0;
    std::uint64_t sequence = 0;  // 0: empty (sequences start at 1)
  };

  live_slot* find(std::uint64_t hash) noexcept {
    if (live_.empty()) return nullptr;
    for (std::size_t at = hash & mask_;; at = (at + 1) & mask_) {
      live_slot& slot = live_[at];
      if (slot.sequence == 0) return nullptr;
      if (slot.hash == hash) return &slot;
    }
  }

  void erase(std::size_t at) noexcept {
    backward_shift_erase(
        live_, mask_, at, [](const live_slot& s) { return s.sequence != 0; },
        [](const live_slot& s) { return s.hash; });
    --live_count_;
  }

  // Room for one more ring record and one more live key.
  void reserve_one() {
    if (ring_size_ == ring_.size()) {
      std::vector<record> bigger(ring_.empty() ? 64 : ring_.size() * 2);
      for (std::size_t i = 0; i < ring_size_; ++i)
        bigger[i] = ring_[(ring_head_ + i) & (ring_.size() - 1)];
      ring_.swap(bigger);
      ring_head_ = 0;
    }
    if ((live_count_ + 1) * 2 > live_.size())
      grow_table(
          live_, mask_, 64, [](const live_slot& s) { return s.sequence != 0; },
          [](const live_slot& s) { return s.hash; });
  }

  void forget_oldest() noexcept {
    const record oldest = ring_[ring_head_];
    ring_head_ = (ring_head_ + 1) & (ring_.size() - 1);
    --ring_size_;
    if (live_slot* found = find(oldest.hash); found != nullptr && found->sequence == oldest.sequence)
      erase(static_cast<std::size_t>(found - live_.data()));
    bytes_ -= oldest.charged_bytes;
  }

  std::uint64_t capacity_bytes_;
  std::uint64_t bytes_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::vector<record> ring_;  // power-of-two size; records ring_head_.. (ring_size_ of them)
  std::size_t ring_head_ = 0;
  std::size_t ring_size_ = 0;
  std::vector<live_slot> live_;  // power-of-two size; hash -> sequence of its newest record
  std::size_t mask_ = 0;
  std::size_t live_count_ = 0;
};

// S3-FIFO (Yang et al., SOSP'23): a small FIFO (~10% of the bytes) filters
// one-hit wonders, a main FIFO with 2-bit frequencies keeps the rest, a ghost
// remembers keys recently dropped from small so that their return goes to main.
class s3fifo_policy {
 public:
  static constexpr bool hit_needs_exclusive_lock = false;
  static constexpr std::string_view name = "s3fifo";
  static constexpr std::uint8_t max_frequency = 3;

  explicit s3fifo_policy(const eviction_budget& budget)
      : small_target_bytes_(
            static_cast<std::uint64_t>(static_cast<double>(budget.shard_capacity_bytes) *
                                       std::clamp(budget.small_queue_fraction, 0.0, 1.0))),
        ghost_(budget.shard_capacity_bytes - small_target_bytes_) {}

  void on_insert(memory_entry* entry) {
    if (ghost_.take(entry->hash)) {
      entry->queue = main_queue;
      main_.push_head(entry);
    } else {
      entry->queue = small_queue;
      small_.push_head(entry);
    }
  }

  void on_hit(memory_entry* entry) noexcept {
    // Racing readers may lose an increment; the counter is a hint, not a count.
    auto frequency = entry->frequency.load(std::memory_order_relaxed);
    if (frequency < max_frequency)
      entry->frequency.store(static_cast<std::uint8_t>(frequency + 1), std::memory_order_relaxed);
  }

  void on_erase(memory_entry* entry) noexcept {
    (entry->queue == small_queue ? small_ : main_).remove(entry);
  }

  memory_entry* evict_one() {
    if (!small_.empty() && (small_.bytes() >= small_target_bytes_ || main_.empty())) {
      if (memory_entry* victim = evict_from_small()) return victim;
    }
    return evict_from_main();
  }

  [[nodiscard]] std::size_t small_size() const noexcept { return small_.size(); }
  [[nodiscard]] std::size_t main_size() const noexcept { return main_.size(); }
  [[nodiscard]] std::size_t ghost_size() const noexcept { return ghost_.size(); }

 private:
  static constexpr std::uint8_t small_queue = 0;
  static constexpr std::uint8_t main_queue = 1;

  // Accessed entries move to main with their counter cleared (the access paid
  // for the move); the first unaccessed one is evicted and remembered.
  memory_entry* evict_from_small() {
    while (memory_entry* tail = small_.pop_tail()) {
      if (tail->frequency.load(std::memory_order_relaxed) > 0) {
        tail->frequency.store(0, std::memory_order_relaxed);
        tail->queue = main_queue;
        main_.push_head(tail);
        continue;
      }
      ghost_.remember(tail->hash, tail->charged_bytes);
      return tail;
    }
    return nullptr;
  }

  // A FIFO with reinsertion: an accessed entry goes back to the head one count
  // poorer. Terminates: each pass lowers some counter and nothing raises one
  // while the exclusive lock is held.
  memory_entry* evict_from_main() {
    while (memory_entry* tail = main_.pop_tail()) {
      auto frequency = tail->frequency.load(std::memory_order_relaxed);
      if (frequency > 0) {
        tail->frequency.store(static_cast<std::uint8_t>(frequency - 1), std::memory_order_relaxed);
        main_.push_head(tail);
        continue;
      }
      return tail;
    }
    return nullptr;
  }

  std::uint64_t small_target_bytes_;
  entry_list small_;
  entry_list main_;
  ghost_fifo ghost_;
};

// Least recently used: every hit relinks the entry at the head, which is why a
// hit needs the shard's exclusive lock. Kept as the classic baseline.
class lru_policy {
 public:
  static constexpr bool hit_needs_exclusive_lock = true;
  static constexpr std::string_view name = "lru";

  explicit lru_policy(const eviction_budget&) {}

  void on_insert(memory_entry* entry) { list_.push_head(entry); }
  void on_hit(memory_entry* entry) noexcept {
    if (list_.head() == entry) return;
    list_.remove(entry);
    list_.push_head(entry);
  }
  void on_erase(memory_entry* entry) noexcept { list_.remove(entry); }
  memory_entry* evict_one() noexcept { return list_.pop_tail(); }

 private:
  entry_list list_;
};

// SIEVE (Zhang et al., NSDI'24): one FIFO and a hand that walks from the tail
// toward the head, clearing visited bits and evicting the first unvisited
// entry; the hand stays where it stopped. New entries enter at the head.
class sieve_policy {
 public:
  static constexpr bool hit_needs_exclusive_lock = false;
  static constexpr std::string_view name = "sieve";

  explicit sieve_policy(const eviction_budget&) {}

  void on_insert(memory_entry* entry) { list_.push_head(entry); }
  void on_hit(memory_entry* entry) noexcept {
    if (entry->frequency.load(std::memory_order_relaxed) == 0)
      entry->frequency.store(1, std::memory_order_relaxed);
  }
  void on_erase(memory_entry* entry) noexcept {
    if (hand_ == entry) hand_ = entry->newer;
    list_.remove(entry);
  }
  memory_entry* evict_one() noexcept {
    if (list_.empty()) return nullptr;
    memory_entry* candidate = hand_ != nullptr ? hand_ : list_.tail();
    while (candidate->frequency.load(std::memory_order_relaxed) != 0) {
      candidate->frequency.store(0, std::memory_order_relaxed);
      candidate = candidate->newer != nullptr ? candidate->newer : list_.tail();
    }
    hand_ = candidate->newer;
    list_.remove(candidate);
    return candidate;
  }

 private:
  entry_list list_;
  memory_entry* hand_ = nullptr;  // next entry to examine; nullptr: start at the tail
};

}  // namespace conveyor::detail
