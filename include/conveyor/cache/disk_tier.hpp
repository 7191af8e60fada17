// conveyor/cache/disk_tier.hpp: a cache tier in append-only segment files on
// local disk, checksummed, rebuilt by scanning on open.
//
// Layout of the directory (created 0700 when missing):
//   lock                        flock'ed by the one process that uses the directory
//   segment-<20 digits>.cvs     append-only segment files, oldest = smallest id
// The record format is in cache/detail/disk_segment_format.hpp, the files and
// index at work in detail/disk_segment_store.hpp, the write-behind queue in
// detail/disk_write_queue.hpp. See docs/cache-disk-shm.md for the decisions
// and the error behaviour.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/disk_directory.hpp"
#include "conveyor/cache/detail/disk_segment_format.hpp"
#include "conveyor/cache/detail/disk_segment_store.hpp"
#include "conveyor/cache/detail/disk_write_queue.hpp"
#include "conveyor/cache/detail/file_size_limit.hpp"
#include "conveyor/cache/detail/tier_counters.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

/// Settings of a `disk_tier`.
struct disk_tier_options {
  /// Budget for all segment files together (headers, dead records and
  /// tombstones count). When a put would exceed it, whole oldest segments go.
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  /// A segment is sealed and a new one started when the next record would make
  /// it larger than this. Clamped to `capacity_bytes`. The largest storable
  /// value is this minus 72 bytes of headers.
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  /// When the directory cannot be created or opened, or another process holds
  /// it: false (default) makes an unavailable tier whose gets miss and puts
  /// fail, each counted in `stats().failures`; true throws `io_error` instead.
  bool throw_if_unavailable = false;
  /// Write-behind budget: `put` copies the value into a queue that one thread
  /// of the tier writes to disk in order, and returns; when this many value
  /// bytes are queued, a put waits for the writer. 0 writes on the caller's
  /// thread inside `put` (then `put` reports the write's own result).
  std::uint64_t write_behind_bytes = std::uint64_t{64} << 20;
  /// Reads copy records out of read-only mappings of the segment files
  /// (several times faster than pread for page-cached files) under a SIGBUS
  /// guard: a file truncated under the mapping, or an I/O error on page-in,
  /// is a counted failure and a miss. Installs one process-wide SIGBUS
  /// handler that passes every other SIGBUS on to the handler it replaced
  /// (docs/cache-disk-shm.md). false: every read is a preadv.
  bool map_segments = true;
};

/// A persistent cache tier on local disk. Satisfies `cache_tier`.
///
/// Values are appended to segment files as checksummed records; an in-memory
/// index maps each key to its newest record and is rebuilt on open by scanning
/// every segment. A record with a bad checksum (flipped bit) is skipped; a
/// damaged header or a torn tail (a write cut off by kill -9) ends the scan of
/// that segment. `get` verifies the checksum again on every read, so damage that
/// happens after open costs a hit and never returns wrong bytes. Each open starts
/// a new segment for its writes, so a torn tail is never appended to.
///
/// Writes (default: write-behind): `put` and `erase` copy the record into a
/// queue bounded by `write_behind_bytes` and return; one thread, started by
/// the first write and owned by the tier, appends the queue in order. `get`
/// and `contains` answer from the queue first, so a value is found from the
/// moment `put` returned. `flush()` waits until everything queued is on disk;
/// the destructor flushes. With `write_behind_bytes = 0` the caller's thread
/// writes inside `put`. A failed write-behind counts a failure (the key then
/// misses, or keeps its older record); `put` already returned true for it.
///
/// Reads (default): each record is copied out of a read-only mapping of its
/// segment file under a SIGBUS guard and checked before anyone sees it; a
/// file truncated under the mapping or an I/O error on page-in is a counted
/// failure and a miss, never a crash (`map_segments = false`: preadv).
///
/// Thread-safety: every member function may be called from any thread at once.
/// Lookups take a shared lock (readers run in parallel; `visit_many` and
/// `get_many` once per batch); appends and eviction take the exclusive lock
/// once per run of records. Processes: one
/// process per directory, enforced with flock on `<directory>/lock`; a second
/// process gets an unavailable tier (or `io_error`, see options). The lock is
/// released when the holder exits, also on kill -9. Do not fork while a tier
/// has writes queued (the child has no writer thread).
///
/// Errors: get/put/erase never throw for I/O failures (they count a failure and
/// answer as a miss / false); they may throw std::bad_alloc. A write past the
/// file-size limit (`ulimit -f`) is a counted failure like a full disk, never
/// SIGXFSZ (see cache/detail/file_size_limit.hpp; SIGXFSZ's disposition is
/// not changed; SIGBUS gets the read guard's chained handler unless
/// `map_segments` is false). Writes are not fsync'ed (a cache survives a crash of
/// the process, not of the machine, unless `sync()` is called).
class disk_tier {
 public:
  /// Opens or creates `directory` and scans its segments. Allocates the index
  /// (80-160 bytes per key). Throws io_error naming the path only when
  /// `options.throw_if_unavailable` is set.
  explicit disk_tier(std::filesystem::path directory, disk_tier_options options = {})
      : directory_(std::move(directory)),
        options_(clamped(options)),
        store_(directory_, options_.capacity_bytes, options_.segment_bytes, counters_,
               options_.map_segments) {
    std::string reason;
    if (!open_directory(reason)) {
      unavailable_reason_ = reason;
      counters_.bump(counters_.failures);
      close_lock();
      if (options_.throw_if_unavailable) throw io_error(reason, directory_.string());
      return;
    }
    available_ = true;
    if (options_.write_behind_bytes > 0)
      queue_ = std::make_unique<detail::disk_format::write_queue>(
          options_.write_behind_bytes,
          [this](detail::disk_format::write_queue::record_run run) { store_.append_run(run); });
  }

  disk_tier(const disk_tier&) = delete;
  disk_tier& operator=(const disk_tier&) = delete;
  /// Writes what is queued (blocking), then closes the files.
  ~disk_tier() {
    if (queue_) queue_->stop();
    close_lock();
  }

  /// Copies the value of `key` into `out` (resized) and returns true on a
  /// verified hit. On a miss or a failed check returns false and leaves `out` empty.
  bool get(const cache_key& key, byte_buffer& out) {
    auto start = std::chrono::steady_clock::now();
    out.clear();
    if (queue_) {
      switch (queue_->find(key, &out)) {
        case detail::disk_format::pending_lookup::value:
          return counters_.record_get(true, out.size(), start);
        case detail::disk_format::pending_lookup::erased:
          return count_miss(start);
        case detail::disk_format::pending_lookup::absent:
          break;
      }
    }
    switch (store_.read(key, out)) {
      case detail::disk_format::segment_store::read_result::miss:
        return count_miss(start);
      case detail::disk_format::segment_store::read_result::damaged:
        counters_.bump(counters_.failures);
        return count_miss(start);
      case detail::disk_format::segment_store::read_result::hit:
        break;
    }
    return counters_.record_get(true, out.size(), start);
  }

  /// Appends `value` under `key` (write-behind: queues a copy and returns); the
  /// newest record of a key wins. Returns false (counted) when the value is
  /// larger than a segment or the tier is unavailable; written on the caller's
  /// thread, also when the write fails (disk full, file-size limit), and the
  /// failed write is truncated away. Write-behind may wait for room in the queue.
  bool put(const cache_key& key, std::span<const std::byte> value) {
    auto start = std::chrono::steady_clock::now();
    bool stored = false;
    if (queue_ && value.size() <= max_value_bytes()) {
      queue_->push({make_record(detail::disk_format::record_kind::value, key, value)});
      stored = true;
    } else {
      stored = append_here(detail::disk_format::record_kind::value, key, value);
    }
    return counters_.record_put(stored, value.size(), start);
  }

  /// Removes `key`: appends a tombstone record (queued like a put), so the
  /// erase survives reopen. Returns whether the key was present. If the
  /// tombstone cannot be written (counted) the key is still forgotten until
  /// the next open.
  bool erase(const cache_key& key) {
    if (!contains(key)) return false;
    if (queue_)
      queue_->push({make_record(detail::disk_format::record_kind::tombstone, key, {})});
    else
      append_here(detail::disk_format::record_kind::tombstone, key, {});
    return true;
  }

  /// Whether the queue or the index holds `key` (the checksum is checked only by `get`).
  [[nodiscard]] bool contains(const cache_key& key) const {
    if (queue_) {
      auto pending = queue_->find(key, nullptr);
      if (pending != detail::disk_format::pending_lookup::absent)
        return pending == detail::disk_format::pending_lookup::value;
    }
    return store_.contains(key);
  }

  /// `get` for each key; found[i] is 1 on a hit. Returns the hit count. One
  /// lock for the batch (see `visit_many`).
  std::size_t get_many(std::span<const cache_key> keys, std::span<byte_buffer> values,
                       std::span<std::uint8_t> found) {
    const std::size_t count = std::min({keys.size(), values.size(), found.size()});
    for (std::size_t i = 0; i < count; ++i) {
      found[i] = 0;
      values[i].clear();
    }
    return visit_many(keys.first(count), [&](std::size_t i, std::span<const std::byte> value) {
      values[i].assign(value.begin(), value.end());
      found[i] = 1;
    });
  }

  /// Calls visit(i, value) for each key present (`visiting_tier`), in any
  /// order, and returns the hit count; counted as `get`s. Keys still queued
  /// for the writer are shown from the queue; the rest are read under one
  /// shared lock, each record copied into a buffer of the calling thread and
  /// checked (checksum, key, length) before `visit` sees it, so `value` is
  /// always the verified copy. `value` is valid only during the call, and
  /// `visit` must not call into the tier.
  template <class Visit>
  std::size_t visit_many(std::span<const cache_key> keys, Visit&& visit) {
    auto start = std::chrono::steady_clock::now();
    thread_local std::vector<std::uint32_t> rest;
    thread_local std::vector<std::shared_ptr<const detail::disk_format::pending_record>> pending;
    rest.clear();
    std::size_t hits = 0;
    std::uint64_t bytes = 0;
    struct count_on_exit {  // counts what was looked up even if `visit` throws
      disk_tier& tier;
      std::size_t lookups;
      std::size_t& hits;
      std::uint64_t& bytes;
      std::chrono::steady_clock::time_point start;
      ~count_on_exit() {
        auto& c = tier.counters_;
        c.bump(c.hits, hits);
        c.bump(c.misses, lookups - std::min(hits, lookups));
        c.bump(c.bytes_read, bytes);
        if (lookups != 0)
          c.get_latency.record((std::chrono::steady_clock::now() - start) / lookups);
      }
    } count{*this, keys.size(), hits, bytes, start};
    if (queue_ && queue_->find_many(keys, pending) > 0) {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (!pending[i]) {
          rest.push_back(static_cast<std::uint32_t>(i));
        } else if (pending[i]->kind == detail::disk_format::record_kind::value) {
          ++hits;
          bytes += pending[i]->value.size();
          visit(i, std::span<const std::byte>(pending[i]->value));
        }
      }
      pending.clear();
    } else {
      rest.resize(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) rest[i] = static_cast<std::uint32_t>(i);
    }
    auto summary = store_.visit(keys, rest, [&](std::size_t i, std::span<const std::byte> value) {
      ++hits;
      bytes += value.size();
      visit(i, value);
    });
    counters_.bump(counters_.failures, summary.damaged);
    return hits;
  }

  /// `put` for each pair (write-behind: one hand-over to the queue); returns
  /// how many were stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    std::vector<std::uint8_t> stored(std::min(keys.size(), values.size()));
    return put_many(keys, values, stored);
  }
  /// `put_many` that also sets stored[i] to whether values[i] was stored.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    if (!queue_) return put_each(*this, keys, values, stored);
    const std::size_t count = std::min({keys.size(), values.size(), stored.size()});
    thread_local std::vector<std::size_t> sizes;
    sizes.resize(count);
    for (std::size_t i = 0; i < count; ++i) sizes[i] = values[i].size();
    return put_many_with(
        keys.first(count), std::span<const std::size_t>(sizes),
        [&](std::size_t i, std::span<std::byte> destination) {
          if (!destination.empty())
            std::memcpy(destination.data(), values[i].data(), destination.size());
        },
        stored);
  }

  /// `in_place_put_tier`: value i is the sizes[i] bytes that
  /// write(i, destination) writes straight into the write-behind queue's
  /// block for this call (one allocation for all values, which the writer
  /// thread then writes from); sets stored[i] and returns how many were
  /// stored. Values larger than `max_value_bytes()` are refused (counted). If
  /// `write` throws, nothing of the call is stored and the exception
  /// propagates. Without write-behind, each value is written into a buffer of
  /// the calling thread and `put`.
  template <class Write>
  std::size_t put_many_with(std::span<const cache_key> keys, std::span<const std::size_t> sizes,
                            Write&& write, std::span<std::uint8_t> stored) {
    const std::size_t count = std::min({keys.size(), sizes.size(), stored.size()});
    if (!queue_) {
      thread_local byte_buffer scratch;
      std::size_t total = 0;
      for (std::size_t i = 0; i < count; ++i) {
        scratch.resize(sizes[i]);
        write(i, std::span<std::byte>(scratch));
        stored[i] = put(keys[i], scratch) ? 1 : 0;
        total += stored[i];
      }
      return total;
    }
    auto start = std::chrono::steady_clock::now();
    std::size_t accepted = 0;
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < count; ++i) {
      stored[i] = sizes[i] <= max_value_bytes() ? 1 : 0;
      if (stored[i] == 0) continue;
      ++accepted;
      bytes += sizes[i];
    }
    if (accepted > 0) {
      auto block =
          detail::disk_format::make_pending_block(accepted, static_cast<std::size_t>(bytes));
      std::size_t at = 0;
      for (std::size_t i = 0; i < count; ++i) {
        if (stored[i] == 0) continue;
        std::span<std::byte> destination(block->bytes.get() + at, sizes[i]);
        write(i, destination);
        block->records.push_back(detail::disk_format::make_pending_record(
            detail::disk_format::record_kind::value, keys[i], destination));
        at += sizes[i];
      }
      queue_->push(detail::disk_format::records_of(block));
    }
    counters_.bump(counters_.rejected_puts, count - accepted);
    counters_.bump(counters_.puts, accepted);
    counters_.bump(counters_.bytes_written, bytes);
    counters_.put_latency.record(std::chrono::steady_clock::now() - start);
    return accepted;
  }

  /// Bytes of all segment files (records, dead records, tombstones, headers).
  [[nodiscard]] std::uint64_t size_bytes() const noexcept { return store_.size_bytes(); }
  [[nodiscard]] std::uint64_t capacity_bytes() const noexcept { return options_.capacity_bytes; }
  [[nodiscard]] std::string_view name() const noexcept { return "disk"; }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  /// The most value bytes the write-behind queue holds in memory (0: writes in put, or
  /// unavailable).
  [[nodiscard]] std::uint64_t write_behind_bytes() const noexcept {
    return queue_ ? options_.write_behind_bytes : 0;
  }
  /// False when the directory could not be opened; then `unavailable_reason()` says why.
  [[nodiscard]] bool available() const noexcept { return available_; }
  [[nodiscard]] const std::string& unavailable_reason() const noexcept {
    return unavailable_reason_;
  }
  /// The largest value `put` accepts.
  [[nodiscard]] std::uint64_t max_value_bytes() const noexcept { return store_.max_value_bytes(); }

  /// Every value `get`, `get_many` and `visit_many` hand out is either still
  /// in the write-behind queue (never left this process) or was copied out of
  /// its segment (mapping or preadv) into memory of this process and checked
  /// there against its record's CRC32C, key and length (`verifying_tier`):
  /// the cache stage does not compute the row's CRC32C again on a hit.
  static constexpr bool values_verified = true;
  /// Number of segment files.
  [[nodiscard]] std::size_t segment_count() const { return store_.segment_count(); }

  /// Waits until every record queued before the call is written (or its
  /// write failed, counted). Without write-behind: returns at once.
  void flush() {
    if (queue_) queue_->flush();
  }
  /// Value bytes queued for the writer and not yet on disk (not in `size_bytes()`).
  [[nodiscard]] std::uint64_t queued_bytes() const { return queue_ ? queue_->queued_bytes() : 0; }

  /// `flush()`, then fdatasync of the segment being written; false (counted) on failure.
  bool sync() {
    flush();
    if (store_.sync_active()) return true;
    counters_.bump(counters_.failures);
    return false;
  }

  /// A snapshot of the counters. Thread-safe.
  [[nodiscard]] tier_stats stats() const {
    return counters_.snapshot(size_bytes(), capacity_bytes());
  }

 private:
  static disk_tier_options clamped(disk_tier_options options) {
    options.segment_bytes = std::min(options.segment_bytes, options.capacity_bytes);
    return options;
  }

  bool count_miss(std::chrono::steady_clock::time_point start) {
    return counters_.record_get(false, 0, start);
  }

  bool open_directory(std::string& reason) {
    lock_fd_ = detail::disk_format::open_and_lock_directory(directory_, reason);
    std::vector<std::uint64_t> ids;
    if (lock_fd_ < 0 || !detail::disk_format::list_segment_ids(directory_, ids, reason))
      return false;
    store_.load(ids);
    return true;
  }

  static std::shared_ptr<const detail::disk_format::pending_record> make_record(
      detail::disk_format::record_kind kind, const cache_key& key,
      std::span<const std::byte> value) {
    return detail::disk_format::single_record(kind, key, value);
  }

  // An append on the caller's thread: SIGXFSZ is blocked there for the write
  // and, if the write raised it, taken (see file_size_limit.hpp).
  bool append_here(detail::disk_format::record_kind kind, const cache_key& key,
                   std::span<const std::byte> value) {
    if (!available_) {
      counters_.bump(counters_.failures);
      return false;
    }
    detail::disk_format::file_size_signal_guard guard;
    return store_.append(kind, key, value, &guard);
  }

  void close_lock() noexcept {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
  }

  std::filesystem::path directory_;
  disk_tier_options options_;
  bool available_ = false;
  std::string unavailable_reason_;
  int lock_fd_ = -1;
  detail::tier_counters counters_;
  detail::disk_format::segment_store store_;
  std::unique_ptr<detail::disk_format::write_queue> queue_;  // null: writes on the caller's thread
};

static_assert(cache_tier<disk_tier>, "disk_tier must satisfy the cache_tier concept");
static_assert(put_reporting_tier<disk_tier>);
static_assert(visiting_tier<disk_tier>);
static_assert(in_place_put_tier<disk_tier>);
static_assert(verifying_tier<disk_tier> && !in_process_tier<disk_tier>);

}  // namespace conveyor
