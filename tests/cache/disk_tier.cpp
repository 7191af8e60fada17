// Tests of conveyor/cache/disk_tier.hpp and the CRC32C it uses: the cache_tier
// contract, then persistence, damage, segment eviction, the directory lock,
// full disks, kill -9 and eviction under threads.
#include "conveyor/cache/disk_tier.hpp"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"
#include "support/temp_dir.hpp"
#include "tier_contract.hpp"

namespace fs = std::filesystem;
using conveyor::byte_buffer;
using conveyor::cache_key;
using conveyor::disk_tier;
using conveyor::disk_tier_options;
using conveyor::test::temp_dir;

namespace {

static_assert(conveyor::cache_tier<disk_tier>);

// The value stored for a key in these tests: its length and bytes follow from
// the key alone, so any hit can be checked.
byte_buffer value_for(const cache_key& key, std::size_t max_size = 3000) {
  std::mt19937_64 random(key.hash());
  byte_buffer value(random() % max_size);
  for (auto& b : value) b = static_cast<std::byte>(random());
  return value;
}

cache_key key_of(std::uint64_t record) {
  return cache_key{7, 11, record};
}

std::vector<fs::path> segment_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".cvs") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

void flip_bit(const fs::path& file, std::uint64_t offset, int bit) {
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  stream.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  stream.read(&byte, 1);
  byte = static_cast<char>(byte ^ (1 << bit));
  stream.seekp(static_cast<std::streamoff>(offset));
  stream.write(&byte, 1);
}

// Every hit among keys [0, count) must be the key's own value; returns the hits.
std::size_t verify_all(disk_tier& tier, std::uint64_t count, std::size_t max_size = 3000) {
  std::size_t hits = 0;
  byte_buffer out;
  for (std::uint64_t r = 0; r < count; ++r) {
    if (!tier.get(key_of(r), out)) continue;
    ++hits;
    REQUIRE(out == value_for(key_of(r), max_size));
  }
  return hits;
}

// 64 MiB in segments of 4 MiB; `put` refuses values that do not fit a segment.
struct disk_contract_fixture {
  static bool available() { return true; }
  disk_tier& tier() { return tier_; }
  [[nodiscard]] std::size_t refused_value_bytes() const { return tier_.max_value_bytes() + 1; }
  temp_dir dir{"disk"};
  disk_tier tier_{dir.file("cache"), {.capacity_bytes = 64 << 20, .segment_bytes = 4 << 20}};
};

// A directory that cannot be created: its parent is a plain file.
struct uncreatable_disk_fixture {
  static bool available() { return true; }
  disk_tier& tier() { return tier_; }
  temp_dir dir{"disk"};
  disk_tier tier_{dir.file("plain-file", "x") / "cache"};
};

}  // namespace

TYPE_TO_STRING_AS("disk_tier", disk_contract_fixture);
TYPE_TO_STRING_AS("disk_tier in an uncreatable directory", uncreatable_disk_fixture);
TEST_CASE_TEMPLATE_INVOKE(tier_contract, disk_contract_fixture);
TEST_CASE_TEMPLATE_INVOKE(failing_tier_contract, uncreatable_disk_fixture);

TEST_CASE("crc32c: known answer, and the hardware and portable paths agree") {
  const char* text = "123456789";
  CHECK(conveyor::detail::crc32c_update_portable(0, text, 9) == 0xe3069283u);
  CHECK(conveyor::detail::crc32c_update(0, text, 9) == 0xe3069283u);
  std::mt19937 random(1);
  std::vector<unsigned char> bytes(1000);
  for (auto& b : bytes) b = static_cast<unsigned char>(random());
  for (std::size_t start : {0, 1, 3, 7})
    for (std::size_t length : {0, 1, 7, 8, 9, 63, 500, 993}) {
      auto whole = conveyor::detail::crc32c_update_portable(0, bytes.data() + start, length);
      CHECK(conveyor::detail::crc32c_update(0, bytes.data() + start, length) == whole);
      auto half = length / 2;
      auto split = conveyor::detail::crc32c_update(
          conveyor::detail::crc32c_update(0, bytes.data() + start, half),
          bytes.data() + start + half, length - half);
      CHECK(split == whole);
    }
}

TEST_CASE("disk_tier: creates its directory 0700; its size is its segment files' size") {
  temp_dir dir("disk");
  disk_tier tier(dir.file("cache"), {.capacity_bytes = 1 << 20, .segment_bytes = 64 << 10});
  REQUIRE(tier.available());
  CHECK(tier.name() == "disk");
  struct stat info {};
  REQUIRE(::stat(dir.file("cache").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0700);

  for (std::uint64_t r = 0; r < 10; ++r) REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
  CHECK(tier.put(key_of(1), byte_buffer{std::byte{1}, std::byte{2}}));
  CHECK(tier.erase(key_of(2)));  // a tombstone record
  std::uint64_t on_disk = 0;
  for (const auto& file : segment_files(dir.file("cache"))) on_disk += fs::file_size(file);
  CHECK(tier.size_bytes() == on_disk);
  CHECK(tier.stats().size_bytes == on_disk);
  CHECK(tier.put(key_of(20), byte_buffer(tier.max_value_bytes())));
  CHECK_FALSE(tier.put(key_of(21), byte_buffer(tier.max_value_bytes() + 1)));
  CHECK(tier.stats().rejected_puts == 1);
}

TEST_CASE("disk_tier: reopen rebuilds the index, erases survive") {
  temp_dir dir("disk");
  {
    disk_tier tier(dir.path(), {.capacity_bytes = 1 << 20, .segment_bytes = 64 << 10});
    for (std::uint64_t r = 0; r < 100; ++r) REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
    for (std::uint64_t r = 0; r < 100; r += 10) REQUIRE(tier.erase(key_of(r)));
    CHECK(tier.segment_count() > 1);
  }
  disk_tier reopened(dir.path(), {.capacity_bytes = 1 << 20, .segment_bytes = 64 << 10});
  CHECK(reopened.stats().failures == 0);
  for (std::uint64_t r = 0; r < 100; ++r) CHECK(reopened.contains(key_of(r)) == (r % 10 != 0));
  CHECK(verify_all(reopened, 100) == 90);
  // New writes go to a new segment and are found after another reopen.
  REQUIRE(reopened.put(key_of(0), value_for(key_of(0))));
  CHECK(verify_all(reopened, 100) == 91);
}

TEST_CASE("disk_tier: flipped bits and a torn tail cost hits, never return wrong data") {
  temp_dir dir("disk");
  std::vector<std::uint64_t> record_offsets;  // record r starts here in the single segment
  {
    disk_tier tier(dir.path());
    std::uint64_t offset = conveyor::detail::disk_format::segment_header_size;
    for (std::uint64_t r = 0; r < 20; ++r) {
      record_offsets.push_back(offset);
      auto value = value_for(key_of(r));
      REQUIRE(tier.put(key_of(r), value));
      offset += conveyor::detail::disk_format::record_header_size + value.size();
    }
  }
  auto files = segment_files(dir.path());
  REQUIRE(files.size() == 1);
  const auto header = conveyor::detail::disk_format::record_header_size;

  SUBCASE("a bit in a value: only that record is lost") {
    REQUIRE(value_for(key_of(5)).size() > 10);
    flip_bit(files[0], record_offsets[5] + header + 10, 3);
    disk_tier tier(dir.path());
    CHECK(tier.stats().failures == 1);
    CHECK_FALSE(tier.contains(key_of(5)));
    CHECK(verify_all(tier, 20) == 19);
  }
  SUBCASE("a bit in a header: the rest of the segment is lost") {
    flip_bit(files[0], record_offsets[8] + 41, 0);  // the value length
    disk_tier tier(dir.path());
    CHECK(verify_all(tier, 20) == 8);
  }
  SUBCASE("a torn tail: everything before it survives") {
    fs::resize_file(files[0], record_offsets[15] + header + 3);
    disk_tier tier(dir.path());
    CHECK(verify_all(tier, 20) == 15);
    // Appends after a torn tail go to a new segment and survive another reopen.
    REQUIRE(tier.put(key_of(17), value_for(key_of(17))));
  }
  SUBCASE("damage after open is caught by get") {
    disk_tier tier(dir.path());
    REQUIRE(tier.contains(key_of(3)));
    REQUIRE(value_for(key_of(3)).size() > 1);
    flip_bit(files[0], record_offsets[3] + header + 1, 7);
    byte_buffer out;
    CHECK_FALSE(tier.get(key_of(3), out));
    CHECK(out.empty());
    CHECK(tier.stats().failures == 1);
    CHECK_FALSE(tier.contains(key_of(3)));
    CHECK(verify_all(tier, 20) == 19);
  }
  SUBCASE("garbage file with a segment name") {
    std::ofstream(dir.path() / conveyor::detail::disk_format::segment_file_name(7))
        << "not a segment at all";
    disk_tier tier(dir.path());
    CHECK(verify_all(tier, 20) == 20);
  }
}

TEST_CASE("disk_tier: the byte budget drops whole oldest segments") {
  temp_dir dir("disk");
  disk_tier_options options{.capacity_bytes = 256 << 10, .segment_bytes = 32 << 10};
  disk_tier tier(dir.path(), options);
  for (std::uint64_t r = 0; r < 1000; ++r) {
    REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
    REQUIRE(tier.size_bytes() <= options.capacity_bytes);
  }
  CHECK(tier.stats().evictions > 0);
  CHECK(segment_files(dir.path()).size() == tier.segment_count());
  CHECK(segment_files(dir.path()).size() <= 8);
  CHECK(tier.contains(key_of(999)));
  CHECK_FALSE(tier.contains(key_of(0)));
  auto hits = verify_all(tier, 1000);
  CHECK(hits > 100);
  CHECK(hits < 1000);
}

TEST_CASE("disk_tier: a second user of the directory gets an unavailable tier or io_error") {
  temp_dir dir("disk");
  disk_tier first(dir.path());
  REQUIRE(first.put(key_of(1), value_for(key_of(1))));
  disk_tier second(dir.path());
  CHECK_FALSE(second.available());
  CHECK(second.unavailable_reason().find("in use") != std::string::npos);
  byte_buffer out;
  CHECK_FALSE(second.get(key_of(1), out));
  CHECK_FALSE(second.put(key_of(2), value_for(key_of(2))));
  CHECK(second.stats().failures >= 2);
  CHECK_THROWS_AS(disk_tier(dir.path(), {.throw_if_unavailable = true}), conveyor::io_error);

  pid_t child = ::fork();  // another process: the same answer
  REQUIRE(child >= 0);
  if (child == 0) {
    disk_tier other(dir.path());
    ::_exit(!other.available() && !other.put(key_of(3), value_for(key_of(3))) ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

TEST_CASE("disk_tier: an uncreatable directory counts the open and each put, or throws naming it") {
  temp_dir dir("disk");
  // mkdir fails with ENOTDIR, even as root.
  auto impossible = dir.file("plain-file", "x") / "cache";
  disk_tier tier(impossible);
  CHECK_FALSE(tier.available());
  CHECK_FALSE(tier.put(key_of(1), value_for(key_of(1))));
  CHECK(tier.stats().failures >= 2);
  try {
    disk_tier strict(impossible, {.throw_if_unavailable = true});
    FAIL("expected io_error");
  } catch (const conveyor::io_error& error) {
    CHECK(std::string(error.what()).find(impossible.string()) != std::string::npos);
  }
}

TEST_CASE("disk_tier: a full disk (RLIMIT_FSIZE) fails puts softly in a child process") {
  temp_dir dir("disk");
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{64 << 10, 64 << 10};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    int code = 0;
    try {
      disk_tier tier(dir.path(), {.capacity_bytes = 1 << 20, .segment_bytes = 256 << 10});
      std::uint64_t stored = 0, refused = 0;
      for (std::uint64_t r = 0; r < 200; ++r)
        (tier.put(key_of(r), value_for(key_of(r))) ? stored : refused)++;
      byte_buffer out;
      for (std::uint64_t r = 0; r < 200; ++r)
        if (tier.get(key_of(r), out) && out != value_for(key_of(r))) code = 3;
      if (stored == 0 || refused == 0) code = 4;
      if (tier.stats().failures < refused) code = 5;
    } catch (...) {
      code = 6;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  disk_tier tier(dir.path());  // what the child managed to store is intact
  CHECK(tier.stats().failures == 0);
  CHECK(verify_all(tier, 200) > 0);
}

TEST_CASE("disk_tier: kill -9 of a writer mid-write leaves only correct hits") {
  temp_dir dir("disk");
  std::mt19937 random(12345);
  for (int round = 0; round < 8; ++round) {
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      disk_tier tier(dir.path(), {.capacity_bytes = 4 << 20, .segment_bytes = 512 << 10});
      for (std::uint64_t i = 0;; ++i) {
        auto key = key_of(i % 500);
        tier.put(key, value_for(key, 20000));
        if (i % 7 == 0) tier.erase(key_of((i * 31) % 500));
      }
    }
    ::usleep(2000 + random() % 40000);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    disk_tier tier(dir.path(), {.capacity_bytes = 4 << 20, .segment_bytes = 512 << 10});
    REQUIRE(tier.available());
    verify_all(tier, 500, 20000);
    CHECK(tier.size_bytes() <= 4u << 20);
  }
}

TEST_CASE("disk_tier: threads reading and writing at once (stress)") {
  temp_dir dir("disk");
  disk_tier tier(dir.path(), {.capacity_bytes = 2 << 20, .segment_bytes = 128 << 10});
  std::atomic<bool> wrong{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 random(t);
      byte_buffer out;
      for (int i = 0; i < 3000; ++i) {
        auto key = key_of(random() % 300);
        switch (random() % 4) {
          case 0:
            tier.put(key, value_for(key));
            break;
          case 1:
            tier.erase(key);
            break;
          default:
            if (tier.get(key, out) && out != value_for(key)) wrong = true;
        }
        (void)tier.stats();
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK_FALSE(wrong.load());
  CHECK(tier.stats().failures == 0);
  CHECK(tier.size_bytes() <= tier.capacity_bytes());
}
