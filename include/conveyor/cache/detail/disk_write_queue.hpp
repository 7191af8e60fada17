// conveyor/cache/detail/disk_write_queue.hpp: the disk tier's write-behind
// queue: values accepted by `put` and not yet on disk, in arrival order, plus
// the newest pending record of each key so that `get` can answer from it.
//
// Why a queue and one thread, not a write per put: a put on the trainer's
// path should cost a copy of the value; the pwritev, the segment bookkeeping
// and eviction belong to a thread that only the tier uses. Why bounded: an
// unbounded queue turns a slow disk into unbounded memory; when the queued
// value bytes reach the budget a put waits for the writer (backpressure), so
// memory stays at most the budget plus one value.
//
// Order: jobs are written in the order they were queued, so a later put or
// erase of a key always lands after an earlier one. A key's entry in `newest`
// is removed only after its record is written and indexed (by the writer,
// after `write` returned), so a lookup that misses `newest` finds the key in
// the tier's index, never in neither.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/disk_segment_format.hpp"
#include "conveyor/cache/detail/file_size_limit.hpp"
#include "conveyor/cache/tier.hpp"

namespace conveyor::detail::disk_format {

/// A record waiting to be appended: a value or a tombstone. `value` points
/// into the `pending_block` the record belongs to. `header` is the record's
/// encoded header, checksums included, computed by the thread that queued
/// the record right after it wrote the value (the value is then still in
/// that core's cache; the writer thread, the slowest part of a filling epoch,
/// would read it from memory once more for the checksum).
struct pending_record {
  record_kind kind = record_kind::value;
  cache_key key;
  std::span<const std::byte> value;
  record_header_bytes header{};
};

/// A record of `kind` for `key` whose value bytes are `value`, header encoded.
inline pending_record make_pending_record(record_kind kind, const cache_key& key,
                                          std::span<const std::byte> value) noexcept {
  return pending_record{kind, key, value, encode_record_header(kind, key, value)};
}

/// The records of one put call and their value bytes, in one allocation of
/// bytes: the queue holds each record as a shared_ptr that aliases its block,
/// so a batch costs two allocations, not two per value, and the writer
/// writes the values from where the caller wrote them.
struct pending_block {
  std::vector<pending_record> records;
  std::unique_ptr<std::byte[]> bytes;  // uninitialised until written
};

/// A block for `count` records with room for `total_bytes` value bytes.
inline std::shared_ptr<pending_block> make_pending_block(std::size_t count,
                                                         std::size_t total_bytes) {
  auto block = std::make_shared<pending_block>();
  block->records.reserve(count);  // never reallocated: records are aliased
  if (total_bytes > 0) block->bytes.reset(new std::byte[total_bytes]);
  return block;
}

/// The records of `block` as the queue takes them.
inline std::vector<std::shared_ptr<const pending_record>> records_of(
    const std::shared_ptr<pending_block>& block) {
  std::vector<std::shared_ptr<const pending_record>> out;
  out.reserve(block->records.size());
  for (const auto& record : block->records)
    out.emplace_back(std::shared_ptr<const pending_record>(block, &record));
  return out;
}

/// One record holding a copy of `value`, in a block of its own.
inline std::shared_ptr<const pending_record> single_record(record_kind kind, const cache_key& key,
                                                           std::span<const std::byte> value) {
  auto block = make_pending_block(1, value.size());
  if (!value.empty()) std::memcpy(block->bytes.get(), value.data(), value.size());
  block->records.push_back(
      make_pending_record(kind, key, std::span<const std::byte>(block->bytes.get(), value.size())));
  return std::shared_ptr<const pending_record>(block, &block->records.front());
}

/// What the queue knows of a key.
enum class pending_lookup : std::uint8_t { absent, value, erased };

class write_queue {
 public:
  /// `write` appends records in order (a run of at most `run_records`
  /// records or about `run_bytes` value bytes); it runs on the writer thread
  /// only and must not throw.
  using record_run = std::span<const std::shared_ptr<const pending_record>>;
  using write_function = std::function<void(record_run)>;
  static constexpr std::size_t run_records = 256;
  static constexpr std::uint64_t run_bytes = std::uint64_t{1} << 20;

  write_queue(std::uint64_t budget_bytes, write_function write)
      : budget_bytes_(budget_bytes), write_(std::move(write)) {}
  write_queue(const write_queue&) = delete;
  write_queue& operator=(const write_queue&) = delete;
  ~write_queue() { stop(); }

  /// Queues the records in order (starting the writer thread on first use).
  /// Waits while the queued bytes would pass the budget, unless the queue is
  /// empty (a value larger than the budget is queued alone).
  void push(std::vector<std::shared_ptr<const pending_record>> records) {
    std::unique_lock lock(mutex_);
    if (!writer_.joinable()) writer_ = std::thread([this] { run(); });
    for (auto& record : records) {
      auto size = record->value.size();
      room_.wait(lock, [&] {
        return (jobs_.empty() && in_flight_ == 0) || queued_bytes_ + size <= budget_bytes_;
      });
      queued_bytes_ += size;
      ++pushed_count_;
      newest_[record->key] = record;
      jobs_.push_back(std::move(record));
    }
    work_.notify_one();
  }

  /// The newest pending record of `key`: copies a value into `out`.
  pending_lookup find(const cache_key& key, byte_buffer* out) const {
    std::shared_ptr<const pending_record> record;
    {
      std::lock_guard lock(mutex_);
      auto found = newest_.find(key);
      if (found == newest_.end()) return pending_lookup::absent;
      record = found->second;
    }
    if (record->kind == record_kind::tombstone) return pending_lookup::erased;
    if (out != nullptr) out->assign(record->value.begin(), record->value.end());
    return pending_lookup::value;
  }

  /// For each key, its newest pending record (a value or a tombstone) in
  /// found[i], or null; one lock for the batch. Returns how many were found.
  std::size_t find_many(std::span<const cache_key> keys,
                        std::vector<std::shared_ptr<const pending_record>>& found) const {
    found.assign(keys.size(), nullptr);
    std::lock_guard lock(mutex_);
    if (newest_.empty()) return 0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      auto at = newest_.find(keys[i]);
      if (at == newest_.end()) continue;
      found[i] = at->second;
      ++count;
    }
    return count;
  }

  /// Waits until everything queued before the call is written.
  void flush() {
    std::unique_lock lock(mutex_);
    auto target = pushed_count_;
    idle_.wait(lock, [&] { return written_count_ >= target || !writer_.joinable(); });
  }

  /// Value bytes queued and not yet written.
  [[nodiscard]] std::uint64_t queued_bytes() const {
    std::lock_guard lock(mutex_);
    return queued_bytes_;
  }

  /// Writes what is queued, then ends the writer thread. Idempotent.
  void stop() noexcept {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_one();
    if (writer_.joinable()) writer_.join();
  }

 private:
  void run() noexcept {
    block_file_size_signal_in_this_thread();
    std::vector<std::shared_ptr<const pending_record>> batch;
    std::unique_lock lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) break;
      batch.assign(std::make_move_iterator(jobs_.begin()), std::make_move_iterator(jobs_.end()));
      jobs_.clear();
      in_flight_ = batch.size();
      lock.unlock();
      for (std::size_t begin = 0; begin < batch.size();) {
        std::size_t end = begin;
        std::uint64_t bytes = 0;
        while (end < batch.size() && end - begin < run_records && bytes < run_bytes)
          bytes += batch[end++]->value.size();
        write_(record_run(batch.data() + begin, end - begin));
        // Release each run's bytes as soon as it is on disk, so producers
        // waiting for room resume while the rest of the batch is written.
        lock.lock();
        for (std::size_t i = begin; i < end; ++i) {
          auto found = newest_.find(batch[i]->key);
          if (found != newest_.end() && found->second == batch[i]) newest_.erase(found);
        }
        queued_bytes_ -= bytes;
        in_flight_ -= end - begin;
        written_count_ += end - begin;
        lock.unlock();
        room_.notify_all();
        for (std::size_t i = begin; i < end; ++i) batch[i].reset();
        begin = end;
      }
      lock.lock();
      idle_.notify_all();
    }
  }

  const std::uint64_t budget_bytes_;
  write_function write_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable work_, room_, idle_;
  std::deque<std::shared_ptr<const pending_record>> jobs_;
  std::unordered_map<cache_key, std::shared_ptr<const pending_record>, cache_key_hash> newest_;
  std::uint64_t queued_bytes_ = 0;   // value bytes queued or being written
  std::size_t in_flight_ = 0;        // records taken by the writer, not yet written
  std::uint64_t pushed_count_ = 0;   // records queued so far
  std::uint64_t written_count_ = 0;  // records written (or failed) so far
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace conveyor::detail::disk_format
