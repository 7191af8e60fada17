// conveyor/source/detail/delimited_mapping.hpp: the read-only mapping behind a
// delimited_file, and the caller-owned arena that holds unescaped fields.
#pragma once

#include <algorithm>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "conveyor/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace conveyor::detail::delimited {

// The smallest page size and the cache line size of the platforms we run on:
// what delimited_file::read steps by when it touches a batch's records first.
inline constexpr std::uint64_t page_bytes = 4096;
inline constexpr std::uint64_t cache_line_bytes = 64;

// The whole file mapped read-only. An empty file maps nothing: Boost refuses a
// zero-byte mapping, and an empty file is a valid source with no records.
class mapped_text {
 public:
  explicit mapped_text(const std::filesystem::path& path) : name_(path.string()) {
    std::error_code code;
    const auto status = std::filesystem::status(path, code);
    if (code || !std::filesystem::exists(status))
      throw io_error("cannot open: " + (code ? code.message() : std::string("no such file")),
                     name_);
    if (!std::filesystem::is_regular_file(status))
      throw io_error("cannot open: not a regular file", name_);
    const auto time = std::filesystem::last_write_time(path, code);
    if (code) throw io_error("cannot stat: " + code.message(), name_);
    mtime_ns_ =
        std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
    try {
      mapping_ = boost::interprocess::file_mapping(name_.c_str(), boost::interprocess::read_only);
      const auto size = std::filesystem::file_size(path, code);
      if (code) throw io_error("cannot stat: " + code.message(), name_);
      if (size > 0) {
        // Size 0 asks Boost to map the whole file as the open handle sees it.
        region_ = boost::interprocess::mapped_region(mapping_, boost::interprocess::read_only);
        data_ = static_cast<const char*>(region_.get_address());
        size_ = region_.get_size();
      }
    } catch (const boost::interprocess::interprocess_exception& failure) {
      throw io_error(std::string("cannot map: ") + failure.what(), name_);
    }
  }

  mapped_text(mapped_text&&) noexcept = default;
  mapped_text& operator=(mapped_text&&) noexcept = default;

  [[nodiscard]] const char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::int64_t mtime_ns() const noexcept { return mtime_ns_; }

  // Asks the kernel to start reading [begin, end) of the file now, so that a
  // batch of scattered records waits for one round of I/O instead of one per
  // page fault. Advice only: failures are ignored.
  void will_need(std::uint64_t begin, std::uint64_t end) const noexcept {
#if defined(__unix__) || defined(__APPLE__)
    if (size_ == 0 || begin >= end) return;
    static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t first = begin / page * page;
    const std::uint64_t last = std::min<std::uint64_t>(end, size_);
    ::madvise(const_cast<char*>(data_) + first, static_cast<std::size_t>(last - first),
              MADV_WILLNEED);
#else
    (void)begin;
    (void)end;
#endif
  }

  // The byte at `offset` (< size()), as an unsigned number.
  [[nodiscard]] unsigned byte_at(std::uint64_t offset) const noexcept {
    return static_cast<unsigned char>(data_[offset]);
  }

  // Asks the CPU to bring the cache line holding byte `offset` (< size())
  // into its caches. A hint: no fault, no effect on results.
  void prefetch(std::uint64_t offset) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(data_ + offset, 0, 3);
#else
    (void)offset;
#endif
  }

  // Whole-file hint for the one sequential pass that builds the index.
  void advise_sequential() noexcept {
    if (size_ != 0) region_.advise(boost::interprocess::mapped_region::advice_sequential);
  }
  void advise_normal() noexcept {
    if (size_ != 0) region_.advise(boost::interprocess::mapped_region::advice_normal);
  }

 private:
  std::string name_;
  std::int64_t mtime_ns_ = 0;
  boost::interprocess::file_mapping mapping_;
  boost::interprocess::mapped_region region_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

// A bump allocator made of blocks that are kept across clear(), so a caller
// that reads batch after batch stops allocating once the blocks suffice.
// Returned memory never moves, so string_views into it stay valid until clear().
class byte_arena {
 public:
  static constexpr std::size_t block_size = 64 * 1024;

  char* allocate(std::size_t bytes) {
    while (current_ < blocks_.size()) {
      block& candidate = blocks_[current_];
      if (candidate.capacity - candidate.used >= bytes) {
        char* out = candidate.bytes.get() + candidate.used;
        candidate.used += bytes;
        return out;
      }
      ++current_;
    }
    const std::size_t capacity = std::max(block_size, bytes);
    blocks_.push_back(block{std::make_unique<char[]>(capacity), capacity, bytes});
    current_ = blocks_.size() - 1;
    return blocks_.back().bytes.get();
  }

  // Gives back the last allocation's unused tail (an unescaped field is never
  // longer than its raw bytes, which is what gets allocated).
  void shrink_last(char* last_allocation, std::size_t kept) noexcept {
    block& last = blocks_[current_];
    last.used = static_cast<std::size_t>(last_allocation - last.bytes.get()) + kept;
  }

  void clear() noexcept {
    for (auto& each : blocks_) each.used = 0;
    current_ = 0;
  }

  [[nodiscard]] std::size_t capacity() const noexcept {
    std::size_t total = 0;
    for (const auto& each : blocks_) total += each.capacity;
    return total;
  }

 private:
  struct block {
    std::unique_ptr<char[]> bytes;
    std::size_t capacity = 0;
    std::size_t used = 0;
  };
  std::vector<block> blocks_;
  std::size_t current_ = 0;
};

}  // namespace conveyor::detail::delimited
