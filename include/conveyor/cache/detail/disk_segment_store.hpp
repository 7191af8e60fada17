// conveyor/cache/detail/disk_segment_store.hpp: the disk tier's segment files
// and its in-memory index: scan on open, verified reads, appends (one record,
// or a run of records in one pwritev), whole-segment eviction.
//
// Reads copy each record out of a read-only mapping of its segment under the
// SIGBUS guard of disk_mapped_read.hpp (a segment the tier appends to is
// mapped at its full size when started; a segment found on open at the size
// fstat gave before its scan), then check the copy; a segment that could not
// be mapped, or a thread without a guard slot, reads with preadv instead.
//
// Why apart from disk_tier: the tier is the public face (counters, the
// write-behind queue, the directory lock, unavailability); this is the file
// format at work. Locking: one shared_mutex; reads take it shared, appends
// and eviction exclusive. The record layout is in disk_segment_format.hpp.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/disk_index.hpp"
#include "conveyor/cache/detail/disk_mapped_read.hpp"
#include "conveyor/cache/detail/disk_segment_format.hpp"
#include "conveyor/cache/detail/disk_write_queue.hpp"
#include "conveyor/cache/detail/file_size_limit.hpp"
#include "conveyor/cache/detail/tier_counters.hpp"
#include "conveyor/cache/tier.hpp"

namespace conveyor::detail::disk_format {

class segment_store {
 public:
  /// `counters` (failures, evictions) must outlive the store. `map_segments`:
  /// read through guarded mappings (installs the SIGBUS guard's handler);
  /// false, or a handler that cannot be installed: preadv.
  segment_store(std::filesystem::path directory, std::uint64_t capacity_bytes,
                std::uint64_t segment_bytes, tier_counters& counters, bool map_segments = true)
      : directory_(std::move(directory)),
        capacity_bytes_(capacity_bytes),
        segment_bytes_(segment_bytes),
        counters_(counters),
        map_segments_(map_segments && sigbus::install()) {}
  segment_store(const segment_store&) = delete;
  segment_store& operator=(const segment_store&) = delete;
  ~segment_store() { close_all(); }

  /// Scans the segments `ids` (ascending) into the index, then evicts to the budget.
  void load(std::span<const std::uint64_t> ids) {
    for (auto id : ids) load_segment(id);
    next_segment_id_ = ids.empty() ? 1 : ids.back() + 1;
    std::unique_lock lock(mutex_);
    evict_until_fits(0);
  }

  enum class read_result : std::uint8_t { hit, miss, damaged };
  /// Reads `key`'s newest record into `out` and verifies it. `damaged`: the
  /// bytes failed a check; the key is forgotten and `out` cleared.
  read_result read(const cache_key& key, byte_buffer& out) {
    std::shared_lock lock(mutex_);
    const record_location* found = index_.find(key);
    if (found == nullptr) return read_result::miss;
    const record_location where = *found;
    out.resize(static_cast<std::size_t>(where.value_length));
    bool good = read_checked(key, where, out.data());
    lock.unlock();
    if (!good) {
      drop_damaged(key, where);
      out.clear();
      return read_result::damaged;
    }
    return read_result::hit;
  }

  /// What `visit` found.
  struct visit_summary {
    std::size_t hits = 0;
    std::uint64_t bytes = 0;
    std::size_t damaged = 0;  // found in the index, failed a check (forgotten)
  };
  /// For each position i in `which`: reads keys[i]'s record into a buffer of
  /// the calling thread, checks it, and calls visit(i, value) with the
  /// checked copy (under the shared lock: `visit` must not call into the
  /// tier). One lock for the whole batch.
  template <class Visit>
  visit_summary visit(std::span<const cache_key> keys, std::span<const std::uint32_t> which,
                      Visit&& visit) {
    thread_local byte_buffer scratch;
    thread_local std::vector<std::pair<cache_key, record_location>> damaged;
    thread_local std::vector<std::uint64_t> hashes;
    damaged.clear();
    hashes.resize(which.size());
    for (std::size_t k = 0; k < which.size(); ++k) hashes[k] = keys[which[k]].hash();
    visit_summary summary;
    {
      std::shared_lock lock(mutex_);
      // Every slot's cache miss starts before the first compare.
      for (auto hash : hashes) index_.prefetch(hash);
      for (std::size_t k = 0; k < which.size(); ++k) {
        const auto i = which[k];
        const record_location* found = index_.find(keys[i], hashes[k]);
        if (found == nullptr) continue;
        const record_location where = *found;
        if (scratch.size() < where.value_length)
          scratch.resize(static_cast<std::size_t>(where.value_length));
        if (!read_checked(keys[i], where, scratch.data())) {
          damaged.emplace_back(keys[i], where);
          continue;
        }
        ++summary.hits;
        summary.bytes += where.value_length;
        visit(static_cast<std::size_t>(i),
              std::span<const std::byte>(scratch.data(),
                                         static_cast<std::size_t>(where.value_length)));
      }
    }
    for (const auto& [key, where] : damaged) drop_damaged(key, where);
    summary.damaged = damaged.size();
    return summary;
  }

  [[nodiscard]] bool contains(const cache_key& key) const {
    std::shared_lock lock(mutex_);
    return index_.contains(key);
  }
  /// Bytes of all segment files.
  [[nodiscard]] std::uint64_t size_bytes() const noexcept {
    return total_bytes_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t segment_count() const {
    std::shared_lock lock(mutex_);
    return segments_.size();
  }
  /// The largest value a record may hold.
  [[nodiscard]] std::uint64_t max_value_bytes() const noexcept {
    auto overhead = segment_header_size + record_header_size;
    return segment_bytes_ > overhead ? segment_bytes_ - overhead : 0;
  }
  /// fdatasync of the segment being written; false when that fails.
  bool sync_active() {
    std::unique_lock lock(mutex_);
    if (!writable_ || segments_.empty()) return true;
    return ::fdatasync(segments_.rbegin()->second.fd) == 0;
  }

  // The writer thread's append: runs of records that go to the same segment
  // are written with one pwritev under one exclusive lock (on the VM measured
  // an 8 KiB pwrite took 12-14 us, a 512 KiB one 4.5-7 us per 8 KiB); a record
  // that needs a new segment, eviction or more room than the file-size limit
  // leaves goes through `append` alone.
  void append_run(write_queue::record_run run) noexcept {
    try {
      std::unique_lock lock(mutex_);
      auto& staged = run_scratch_;
      staged.clear();
      staged.reserve(max_run_parts / 2);
      std::vector<iovec>& parts = run_parts_;
      parts.clear();
      std::uint64_t staged_bytes = 0;
      // Read once per run, not per record (a getrlimit call was 1.6% of a
      // filling epoch's samples). The writer thread blocks SIGXFSZ, so a
      // limit lowered during the run is an EFBIG, handled below.
      const std::uint64_t size_limit = file_size_limit();
      auto write_staged = [&] {
        if (staged.empty()) return;
        auto& [id, active] = *segments_.rbegin();
        bool ok = write_vector(active.fd, parts.data(), active.size, staged_bytes,
                               static_cast<int>(parts.size()));
        if (!ok) {
          bool too_large = errno == EFBIG;
          if (::ftruncate(active.fd, static_cast<off_t>(active.size)) != 0 || too_large)
            writable_ = false;
          for (const auto* one : staged) {
            counters_.bump(counters_.failures);
            index_.erase(one->key);
          }
        } else {
          for (const auto* one : staged) {
            auto offset = active.size;
            auto size = record_header_size + one->value.size();
            active.size += size;
            total_bytes_.fetch_add(size, std::memory_order_relaxed);
            if (one->kind == record_kind::tombstone) {
              index_.erase(one->key);
            } else {
              active.keys.push_back(one->key);
              index_.assign(
                  one->key,
                  record_location{id, offset, one->value.size(),
                                  mapped_base(active, offset, one->value.size()), active.fd});
            }
          }
        }
        staged.clear();
        parts.clear();
        staged_bytes = 0;
      };
      for (const auto& record : run) {
        auto record_size = record_header_size + record->value.size();
        bool fits =
            writable_ && !segments_.empty() && parts.size() + 2 <= max_run_parts &&
            segments_.rbegin()->second.size + staged_bytes + record_size <= segment_bytes_ &&
            total_bytes_.load(std::memory_order_relaxed) + staged_bytes + record_size <=
                capacity_bytes_ &&
            segments_.rbegin()->second.size + staged_bytes + record_size <= size_limit;
        if (!fits) {
          write_staged();
          append_locked(record->kind, record->key, record->value, nullptr);
          continue;
        }
        staged.push_back(record.get());
        parts.push_back({const_cast<std::byte*>(record->header.data()), record->header.size()});
        parts.push_back({const_cast<std::byte*>(record->value.data()), record->value.size()});
        staged_bytes += record_size;
      }
      write_staged();
    } catch (...) {  // bad_alloc growing the index or the scratch: counted, the records are lost
      counters_.bump(counters_.failures);
    }
  }

  // Appends one record (false: too large for a segment, or the write failed,
  // counted). `guard`: set when writing on the caller's thread.
  bool append(record_kind kind, const cache_key& key, std::span<const std::byte> value,
              file_size_signal_guard* guard = nullptr) {
    if (value.size() > max_value_bytes()) return false;
    std::unique_lock lock(mutex_);
    return append_locked(kind, key, value, guard);
  }

 private:
  struct segment {
    int fd = -1;
    std::uint64_t size = 0;
    std::vector<cache_key> keys;  // keys whose records live here, for eviction
    file_mapping mapping;         // unmapped when the segment is dropped
  };

  // The segment's mapping base if it covers a record of `value_length` at `offset`.
  static const std::byte* mapped_base(const segment& seg, std::uint64_t offset,
                                      std::uint64_t value_length) noexcept {
    return seg.mapping.covers(offset, record_header_size + value_length) ? seg.mapping.data()
                                                                         : nullptr;
  }

  // Reads the record at `where` (its value into `value`, which has room for
  // it) and checks magic, key, length and both checksums on the copy.
  // Caller holds the lock (shared is enough). A fault in the mapping counts
  // like damage (the caller forgets the key).
  bool read_checked(const cache_key& key, const record_location& where, std::byte* value) noexcept {
    record_header_bytes header_bytes;
    const auto length = static_cast<std::size_t>(where.value_length);
    bool read_ok = false;
    copy_result copied = copy_result::unguarded;
    if (where.mapped != nullptr) {
      const std::byte* record = where.mapped + where.offset;
      copied = guarded_copy(header_bytes.data(), record, record_header_size);
      if (copied == copy_result::copied)
        copied = guarded_copy(value, record + record_header_size, length);
      read_ok = copied == copy_result::copied;
    }
    if (copied == copy_result::unguarded) {
      iovec parts[2] = {{header_bytes.data(), header_bytes.size()}, {value, length}};
      read_ok = read_vector(where.fd, parts, where.offset, header_bytes.size() + length);
    }
    if (!read_ok) return false;
    auto header = decode_record_header(header_bytes);
    return header && header->key == key && header->value_length == where.value_length &&
           record_checksum_matches(header_bytes, header->record_checksum,
                                   std::span<const std::byte>(value, length));
  }

  // Scans one segment into the index; unreadable segments are kept (empty) so
  // that eviction deletes them in turn.
  void load_segment(std::uint64_t id) {
    auto path = directory_ / segment_file_name(id);
    segment seg;
    seg.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (seg.fd < 0 || ::fstat(seg.fd, &info) != 0) {
      counters_.bump(counters_.failures);
      if (seg.fd >= 0) ::close(seg.fd);
      return;
    }
    seg.size = static_cast<std::uint64_t>(info.st_size);
    // Mapped at the size fstat gave before the scan; only records the scan
    // found whole inside it are read through it.
    if (map_segments_) seg.mapping = file_mapping(seg.fd, static_cast<std::size_t>(seg.size));
    auto summary = scan_segment(
        seg.fd, seg.size, max_value_bytes(), [&](const record_header& header, std::uint64_t at) {
          if (header.kind == record_kind::tombstone) {
            index_.erase(header.key);
            return;
          }
          index_.assign(header.key,
                        record_location{id, at, header.value_length,
                                        mapped_base(seg, at, header.value_length), seg.fd});
          seg.keys.push_back(header.key);
        });
    // One failure per damaged record, and one for a scan cut short (a damaged
    // header or a torn tail: how many records followed is unknowable).
    counters_.bump(counters_.failures, summary.damaged_records + (summary.stopped_early ? 1 : 0));
    total_bytes_.fetch_add(seg.size, std::memory_order_relaxed);
    segments_.emplace(id, std::move(seg));
  }

  // Drops whole oldest segments while `incoming` more bytes would not fit.
  // Caller holds the exclusive lock.
  void evict_until_fits(std::uint64_t incoming) {
    while (!segments_.empty() &&
           total_bytes_.load(std::memory_order_relaxed) + incoming > capacity_bytes_) {
      auto oldest = segments_.begin();
      for (const auto& key : oldest->second.keys) {
        const record_location* found = index_.find(key);
        if (found != nullptr && found->segment_id == oldest->first) {
          index_.erase(key);
          counters_.bump(counters_.evictions);
        }
      }
      ::close(oldest->second.fd);
      ::unlink((directory_ / segment_file_name(oldest->first)).c_str());
      total_bytes_.fetch_sub(oldest->second.size, std::memory_order_relaxed);
      if (std::next(oldest) == segments_.end()) writable_ = false;
      segments_.erase(oldest);
    }
  }

  // Starts a new segment for appends. Caller holds the exclusive lock.
  bool start_segment() {
    auto id = next_segment_id_++;
    auto path = directory_ / segment_file_name(id);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    auto header = encode_segment_header(id);
    if (!within_file_size_limit(header.size()) ||
        ::pwrite(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
      ::close(fd);
      ::unlink(path.c_str());
      return false;
    }
    // Mapped at its full size: appends land inside the mapping (pages past
    // the file's end are never read: only indexed records are).
    file_mapping mapping;
    if (map_segments_) mapping = file_mapping(fd, static_cast<std::size_t>(segment_bytes_));
    segments_.emplace(id, segment{fd, header.size(), {}, std::move(mapping)});
    total_bytes_.fetch_add(header.size(), std::memory_order_relaxed);
    writable_ = true;
    return true;
  }

  // Appends one record; the caller holds the exclusive lock. Runs on the
  // writer thread, or on the caller's with `guard`.
  bool append_locked(record_kind kind, const cache_key& key, std::span<const std::byte> value,
                     file_size_signal_guard* guard) {
    auto header = encode_record_header(kind, key, value);
    auto record_size = header.size() + value.size();
    // A record that cannot be written leaves the key absent: an older record
    // must not be served in place of a newer value that was lost (the key may
    // come back after a reopen, with that older, correct-for-its-time value).
    auto fail = [&] {
      counters_.bump(counters_.failures);
      index_.erase(key);
      return false;
    };
    bool need_segment =
        !writable_ || segments_.rbegin()->second.size + record_size > segment_bytes_;
    if (need_segment) writable_ = false;
    evict_until_fits(record_size + (need_segment ? segment_header_size : 0));
    if (need_segment && !start_segment()) return fail();
    auto& [id, active] = *segments_.rbegin();
    iovec parts[2] = {{header.data(), header.size()},
                      {const_cast<std::byte*>(value.data()), value.size()}};
    if (!within_file_size_limit(active.size + record_size)) {
      // As EFBIG, without raising SIGXFSZ. The segment is sealed: the next
      // record starts a new file, which the limit may still allow.
      writable_ = false;
      return fail();
    }
    if (!write_vector(active.fd, parts, active.size, record_size)) {
      bool too_large = errno == EFBIG;
      if (too_large && guard != nullptr) guard->write_failed_with_efbig();
      if (::ftruncate(active.fd, static_cast<off_t>(active.size)) != 0 || too_large)
        writable_ = false;
      return fail();
    }
    auto offset = active.size;
    active.size += record_size;  // before the index, which may throw bad_alloc
    total_bytes_.fetch_add(record_size, std::memory_order_relaxed);
    if (kind == record_kind::tombstone) {
      index_.erase(key);
    } else {
      active.keys.push_back(key);
      index_.assign(key, record_location{id, offset, value.size(),
                                         mapped_base(active, offset, value.size()), active.fd});
    }
    return true;
  }

  // Forgets a key whose record failed verification, unless a put replaced it meanwhile.
  void drop_damaged(const cache_key& key, const record_location& where) {
    std::unique_lock lock(mutex_);
    const record_location* found = index_.find(key);
    if (found != nullptr && found->segment_id == where.segment_id && found->offset == where.offset)
      index_.erase(key);
  }

  void close_all() noexcept {
    for (auto& [id, seg] : segments_) ::close(seg.fd);
    segments_.clear();
  }

  std::filesystem::path directory_;
  std::uint64_t capacity_bytes_;
  std::uint64_t segment_bytes_;
  tier_counters& counters_;
  const bool map_segments_;

  mutable std::shared_mutex mutex_;            // guards everything below except the atomics
  std::map<std::uint64_t, segment> segments_;  // by id: begin() is the oldest
  disk_index index_;
  std::uint64_t next_segment_id_ = 1;
  bool writable_ = false;  // the newest segment was started by this object and takes appends
  std::atomic<std::uint64_t> total_bytes_{0};

  // The writer thread's scratch for append_run (guarded by mutex_): the
  // records of the pwritev being staged; their headers were encoded when
  // they were queued (pending_record::header).
  static constexpr std::size_t max_run_parts = 1024;  // IOV_MAX on Linux
  std::vector<const pending_record*> run_scratch_;
  std::vector<iovec> run_parts_;
};

}  // namespace conveyor::detail::disk_format
