// Benchmark: disk tier hits against raw pread of the same bytes at the same
// offsets (files in the page cache), plus the shared-memory tier's hits for
// reference; then the cost of a put, written behind and on the caller's
// thread, against copying the value into a new buffer. Every figure is a ratio
// to a baseline measured in this run; rounds alternate baseline and candidate
// and the median ratio is printed.
//
//   disk_tier_bench [rounds=5] [gets_per_round=60000]
//
// Hits: disk_tier.get and visit_many read through guarded mappings (the
// default); the preadv row is the same tier with map_segments = false.
#include "conveyor/cache/disk_tier.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/detail/disk_segment_format.hpp"
#include "conveyor/cache/shm_tier.hpp"

namespace fs = std::filesystem;
namespace format = conveyor::detail::disk_format;
using conveyor::byte_buffer;
using conveyor::cache_key;

namespace {

struct place {
  int fd;
  const std::byte* mapped;  // the segment file mapped read-only
  std::uint64_t value_offset;
};

double seconds_for(const std::function<void()>& work) {
  auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

volatile std::uint64_t sink = 0;

void run_size(std::size_t value_bytes, int rounds, std::size_t gets) {
  std::string pattern = (fs::temp_directory_path() / "conveyor-bench-XXXXXX").string();
  fs::path dir = ::mkdtemp(pattern.data());
  const std::size_t keys = (std::size_t{32} << 20) / value_bytes;  // ~32 MiB of values
  {
    conveyor::disk_tier writer(dir, {.capacity_bytes = 1 << 30, .segment_bytes = 32 << 20});
    byte_buffer value(value_bytes);
    std::mt19937_64 random(1);
    for (std::size_t k = 0; k < keys; ++k) {
      for (auto& b : value) b = static_cast<std::byte>(random());
      if (!writer.put(cache_key{1, 2, k}, value)) std::abort();
    }
  }
  // Where each value lives, found by scanning the segments as the tier does.
  std::unordered_map<std::uint64_t, place> where;
  std::vector<std::pair<int, std::pair<void*, std::size_t>>> open_files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".cvs") continue;
    int fd = ::open(entry.path().c_str(), O_RDONLY);
    auto size = fs::file_size(entry.path());
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    open_files.push_back({fd, {mapped, size}});
    format::scan_segment(
        fd, size, size, [&](const format::record_header& header, std::uint64_t at) {
          where[header.key.record] =
              place{fd, static_cast<const std::byte*>(mapped), at + format::record_header_size};
        });
  }
  auto tier_holder = std::make_unique<conveyor::disk_tier>(
      dir, conveyor::disk_tier_options{.capacity_bytes = 1 << 30, .segment_bytes = 32 << 20});
  conveyor::disk_tier& tier = *tier_holder;
  std::vector<std::uint64_t> order(gets);
  std::mt19937_64 random(2);
  for (auto& k : order) k = random() % keys;
  std::vector<cache_key> keys_in_order;
  for (auto k : order) keys_in_order.push_back(cache_key{1, 2, k});

  byte_buffer buffer(value_bytes);
  auto raw_pread = [&] {
    for (auto k : order) {
      const auto& p = where.at(k);
      if (::pread(p.fd, buffer.data(), value_bytes, static_cast<off_t>(p.value_offset)) !=
          static_cast<ssize_t>(value_bytes))
        std::abort();
      sink = sink + std::to_integer<unsigned>(buffer[0]);
    }
  };
  auto pread_and_crc = [&] {
    for (auto k : order) {
      const auto& p = where.at(k);
      if (::pread(p.fd, buffer.data(), value_bytes, static_cast<off_t>(p.value_offset)) !=
          static_cast<ssize_t>(value_bytes))
        std::abort();
      sink = sink + conveyor::detail::crc32c(buffer);
    }
  };
  auto mmap_copy = [&] {
    for (auto k : order) {
      const auto& p = where.at(k);
      std::memcpy(buffer.data(), p.mapped + p.value_offset, value_bytes);
      sink = sink + std::to_integer<unsigned>(buffer[0]);
    }
  };
  byte_buffer out;
  auto tier_get = [&] {
    for (auto k : order) {
      if (!tier.get(cache_key{1, 2, k}, out)) std::abort();
      sink = sink + std::to_integer<unsigned>(out[0]);
    }
  };
  // The same tier's batched path: visit_many of 256 keys per call.
  auto tier_visit = [&] {
    std::span<const cache_key> all(keys_in_order);
    for (std::size_t at = 0; at < all.size(); at += 256) {
      auto batch = all.subspan(at, std::min<std::size_t>(256, all.size() - at));
      if (tier.visit_many(batch, [&](std::size_t, std::span<const std::byte> value) {
            sink = sink + std::to_integer<unsigned>(value[0]);
          }) != batch.size())
        std::abort();
    }
  };
  raw_pread();  // warm the page cache and the index
  tier_get();
  tier_visit();
  std::vector<double> tier_ratio, crc_ratio, mmap_ratio, visit_ratio, pread_tier_ratio;
  double best_pread = 1e9, best_tier = 1e9;
  for (int round = 0; round < rounds; ++round) {
    double base = seconds_for(raw_pread);
    double t = seconds_for(tier_get);
    double c = seconds_for(pread_and_crc);
    double m = seconds_for(mmap_copy);
    double v = seconds_for(tier_visit);
    tier_ratio.push_back(base / t);
    crc_ratio.push_back(base / c);
    mmap_ratio.push_back(base / m);
    visit_ratio.push_back(base / v);
    best_pread = std::min(best_pread, base);
    best_tier = std::min(best_tier, t);
  }
  tier_holder.reset();
  {  // The tier reading with preadv (map_segments = false), on the same files.
    conveyor::disk_tier pread_tier(
        dir, {.capacity_bytes = 1 << 30, .segment_bytes = 32 << 20, .map_segments = false});
    auto pread_get = [&] {
      for (auto k : order) {
        if (!pread_tier.get(cache_key{1, 2, k}, out)) std::abort();
        sink = sink + std::to_integer<unsigned>(out[0]);
      }
    };
    pread_get();
    for (int round = 0; round < rounds; ++round) {
      double base = seconds_for(raw_pread);
      pread_tier_ratio.push_back(base / seconds_for(pread_get));
    }
  }
  std::printf("value %6zu B, %zu keys, %zu random gets/round, %d rounds\n", value_bytes, keys, gets,
              rounds);
  std::printf("  raw pread (baseline)        %10.0f reads/s\n",
              static_cast<double>(gets) / best_pread);
  std::printf("  disk_tier.get               %10.0f hits/s   ratio to raw pread %.2f\n",
              static_cast<double>(gets) / best_tier, median(tier_ratio));
  std::printf("  disk_tier.visit_many, 256 keys per call         ratio to raw pread %.2f\n",
              median(visit_ratio));
  std::printf("  disk_tier.get, map_segments = false (preadv)    ratio to raw pread %.2f\n",
              median(pread_tier_ratio));
  std::printf("  pread + crc32c (no index)                     ratio to raw pread %.2f\n",
              median(crc_ratio));
  std::printf("  memcpy from mmap                              ratio to raw pread %.2f\n",
              median(mmap_ratio));
  for (auto& [fd, mapping] : open_files) {
    ::munmap(mapping.first, mapping.second);
    ::close(fd);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

void run_shm(std::size_t value_bytes, int rounds, std::size_t gets) {
  std::string name = "conveyor-bench-" + std::to_string(::getpid());
  conveyor::shm_tier::remove(name);
  const std::size_t keys = (std::size_t{32} << 20) / value_bytes;
  {
    conveyor::shm_tier tier(name,
                            {.capacity_bytes = 256 << 20, .average_value_bytes = value_bytes});
    byte_buffer value(value_bytes, std::byte{7});
    std::vector<byte_buffer> copies(keys,
                                    value);  // the memcpy baseline reads the same amount of memory
    for (std::size_t k = 0; k < keys; ++k)
      if (!tier.put(cache_key{1, 2, k}, value)) std::abort();
    // A bucket that overflows evicts early, so time only keys that are present.
    std::vector<std::uint64_t> present;
    for (std::size_t k = 0; k < keys; ++k)
      if (tier.contains(cache_key{1, 2, k})) present.push_back(k);
    std::vector<std::uint64_t> order(gets);
    std::mt19937_64 random(3);
    for (auto& k : order) k = present[random() % present.size()];
    byte_buffer buffer(value_bytes), out;
    auto heap_copy = [&] {
      for (auto k : order) {
        std::memcpy(buffer.data(), copies[k].data(), value_bytes);
        sink = sink + std::to_integer<unsigned>(buffer[0]);
      }
    };
    auto shm_get = [&] {
      for (auto k : order) {
        if (!tier.get(cache_key{1, 2, k}, out)) std::abort();
        sink = sink + std::to_integer<unsigned>(out[0]);
      }
    };
    shm_get();
    std::vector<double> ratio;
    double best = 1e9;
    for (int round = 0; round < rounds; ++round) {
      double base = seconds_for(heap_copy);
      double t = seconds_for(shm_get);
      ratio.push_back(base / t);
      best = std::min(best, t);
    }
    std::printf(
        "shm_tier value %6zu B, %zu of %zu keys present: %10.0f hits/s   ratio to memcpy from heap "
        "%.2f\n",
        value_bytes, present.size(), keys, static_cast<double>(gets) / best, median(ratio));
  }
  conveyor::shm_tier::remove(name);
}

}  // namespace

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Puts of `puts` values of `value_bytes` into a fresh tier per round. The
// baseline is what "a put costs a copy of the value" means: a new buffer
// filled by memcpy. Write-behind puts are timed alone (the writer thread runs
// meanwhile) and with the flush that drains the queue; besides wall time, the
// CPU time of the calling thread alone (what the trainer's thread pays; on a
// loaded 2-core machine the writer thread also takes wall time from it).
void run_puts(std::size_t value_bytes, int rounds, std::size_t puts) {
  byte_buffer value(value_bytes, std::byte{5});
  std::vector<byte_buffer> copies(puts);
  std::vector<double> behind_ratio, drained_ratio, caller_ratio, behind_cpu_ratio, caller_cpu_ratio;
  std::vector<double> batch_ratio, batch_cpu_ratio, batch_drained_ratio, raw_write_ratio,
      raw_write_cpu_ratio;
  std::vector<cache_key> batch_keys(256);
  std::vector<std::size_t> batch_sizes(256, value_bytes);
  std::vector<std::uint8_t> batch_stored(256);
  double best_copy = 1e9;
  for (int round = 0; round < rounds; ++round) {
    for (auto& copy : copies) byte_buffer().swap(copy);
    double copy_cpu = thread_cpu_seconds();
    double copy_time = seconds_for([&] {
      for (std::size_t i = 0; i < puts; ++i) copies[i] = byte_buffer(value.begin(), value.end());
    });
    copy_cpu = thread_cpu_seconds() - copy_cpu;
    best_copy = std::min(best_copy, copy_time);
    for (std::uint64_t write_behind : {std::uint64_t{64} << 20, std::uint64_t{0}}) {
      std::string pattern = (fs::temp_directory_path() / "conveyor-bench-XXXXXX").string();
      fs::path dir = ::mkdtemp(pattern.data());
      {
        conveyor::disk_tier tier(dir, {.capacity_bytes = std::uint64_t{1} << 30,
                                       .segment_bytes = 32 << 20,
                                       .write_behind_bytes = write_behind});
        double put_cpu = thread_cpu_seconds();
        double put_time = seconds_for([&] {
          for (std::size_t i = 0; i < puts; ++i)
            if (!tier.put(cache_key{3, 4, i}, value)) std::abort();
        });
        put_cpu = thread_cpu_seconds() - put_cpu;
        double flush_time = seconds_for([&] { tier.flush(); });
        if (write_behind != 0) {
          behind_ratio.push_back(put_time / copy_time);
          drained_ratio.push_back((put_time + flush_time) / copy_time);
          behind_cpu_ratio.push_back(put_cpu / copy_cpu);
        } else {
          caller_ratio.push_back(put_time / copy_time);
          caller_cpu_ratio.push_back(put_cpu / copy_cpu);
        }
      }
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    {  // The floor for the writer thread: the same bytes appended to a fresh file
       // with one pwrite per 1 MiB, no tier at all.
      std::string pattern = (fs::temp_directory_path() / "conveyor-bench-XXXXXX").string();
      fs::path dir = ::mkdtemp(pattern.data());
      byte_buffer run(std::size_t{1} << 20, std::byte{5});
      int fd = ::open((dir / "raw").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) std::abort();
      double write_cpu = thread_cpu_seconds();
      double write_time = seconds_for([&] {
        std::uint64_t total = std::uint64_t{puts} * value_bytes, at = 0;
        while (at < total) {
          auto n = static_cast<std::size_t>(std::min<std::uint64_t>(run.size(), total - at));
          if (::pwrite(fd, run.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n))
            std::abort();
          at += n;
        }
      });
      write_cpu = thread_cpu_seconds() - write_cpu;
      ::close(fd);
      raw_write_ratio.push_back(write_time / copy_time);
      raw_write_cpu_ratio.push_back(write_cpu / copy_cpu);
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    {  // put_many_with, 256 values per call, written behind: the cache stage's path
      std::string pattern = (fs::temp_directory_path() / "conveyor-bench-XXXXXX").string();
      fs::path dir = ::mkdtemp(pattern.data());
      {
        conveyor::disk_tier tier(
            dir, {.capacity_bytes = std::uint64_t{1} << 30, .segment_bytes = 32 << 20});
        double put_cpu = thread_cpu_seconds();
        double put_time = seconds_for([&] {
          for (std::size_t at = 0; at < puts; at += 256) {
            std::size_t n = std::min<std::size_t>(256, puts - at);
            for (std::size_t j = 0; j < n; ++j) batch_keys[j] = cache_key{3, 4, at + j};
            if (tier.put_many_with(
                    std::span<const cache_key>(batch_keys.data(), n),
                    std::span<const std::size_t>(batch_sizes.data(), n),
                    [&](std::size_t, std::span<std::byte> to) {
                      std::memcpy(to.data(), value.data(), to.size());
                    },
                    std::span<std::uint8_t>(batch_stored.data(), n)) != n)
              std::abort();
          }
        });
        put_cpu = thread_cpu_seconds() - put_cpu;
        double flush_time = seconds_for([&] { tier.flush(); });
        batch_ratio.push_back(put_time / copy_time);
        batch_cpu_ratio.push_back(put_cpu / copy_cpu);
        batch_drained_ratio.push_back((put_time + flush_time) / copy_time);
      }
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
  std::printf(
      "put of %zu B values, %zu per round, %d rounds (time as a multiple of copying the value)\n",
      value_bytes, puts, rounds);
  std::printf("  copy into a new buffer (baseline) %10.0f values/s\n",
              static_cast<double>(puts) / best_copy);
  std::printf(
      "  put, written behind                         %6.2fx the copy (wall), %6.2fx (caller's "
      "CPU)\n",
      median(behind_ratio), median(behind_cpu_ratio));
  std::printf("  put, written behind, plus flush()           %6.2fx the copy (wall)\n",
              median(drained_ratio));
  std::printf(
      "  put, written on the caller's thread         %6.2fx the copy (wall), %6.2fx (caller's "
      "CPU)\n",
      median(caller_ratio), median(caller_cpu_ratio));
  std::printf(
      "  put_many_with, 256 per call, written behind %6.2fx the copy (wall), %6.2fx (caller's "
      "CPU)\n",
      median(batch_ratio), median(batch_cpu_ratio));
  std::printf("  put_many_with as above, plus flush()        %6.2fx the copy (wall)\n",
              median(batch_drained_ratio));
  std::printf(
      "  raw pwrite of the same bytes, 1 MiB a call  %6.2fx the copy (wall), %6.2fx (its CPU)\n",
      median(raw_write_ratio), median(raw_write_cpu_ratio));
}

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  std::size_t gets = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 60000;
  std::printf("crc32c hardware path: %s\n",
              conveyor::detail::crc32c_hardware_available() ? "sse4.2" : "portable");
  run_size(4096, rounds, gets);
  run_size(16384, rounds, gets / 2);
  run_shm(4096, rounds, gets);
  run_shm(16384, rounds, gets / 2);
  run_puts(8192, rounds, 4096);
  return 0;
}
