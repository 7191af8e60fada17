// Tests of conveyor/cache/disk_tier.hpp and the CRC32C it uses: the cache_tier
// contract, then persistence, damage, segment eviction, the directory lock,
// full disks, kill -9 and eviction under threads.
#include "conveyor/cache/disk_tier.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csetjmp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
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
// WriteBehind: the default queue, or 0 (every write on the caller's thread).
// Map: reads through guarded mappings (the default) or preadv.
template <std::uint64_t WriteBehind, bool Map = true>
struct disk_contract_fixture {
  static bool available() { return true; }
  disk_tier& tier() { return tier_; }
  [[nodiscard]] std::size_t refused_value_bytes() const { return tier_.max_value_bytes() + 1; }
  temp_dir dir{"disk"};
  disk_tier tier_{dir.file("cache"),
                  {.capacity_bytes = 64 << 20,
                   .segment_bytes = 4 << 20,
                   .write_behind_bytes = WriteBehind,
                   .map_segments = Map}};
};
using write_behind_fixture = disk_contract_fixture<disk_tier_options{}.write_behind_bytes>;
using synchronous_fixture = disk_contract_fixture<0>;
using pread_fixture = disk_contract_fixture<disk_tier_options{}.write_behind_bytes, false>;

// A directory that cannot be created: its parent is a plain file.
struct uncreatable_disk_fixture {
  static bool available() { return true; }
  disk_tier& tier() { return tier_; }
  temp_dir dir{"disk"};
  disk_tier tier_{dir.file("plain-file", "x") / "cache"};
};

}  // namespace

TYPE_TO_STRING_AS("disk_tier (write-behind)", write_behind_fixture);
TYPE_TO_STRING_AS("disk_tier (synchronous writes)", synchronous_fixture);
TYPE_TO_STRING_AS("disk_tier (reads with preadv)", pread_fixture);
TYPE_TO_STRING_AS("disk_tier in an uncreatable directory", uncreatable_disk_fixture);
TEST_CASE_TEMPLATE_INVOKE(tier_contract, write_behind_fixture, synchronous_fixture, pread_fixture);
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
  tier.flush();
  CHECK(tier.queued_bytes() == 0);
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
    tier.flush();
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
  SUBCASE("reopen counts one failure per damaged record, one per cut-short scan") {
    flip_bit(files[0], record_offsets[2] + header + 1, 1);
    flip_bit(files[0], record_offsets[6] + header + 2, 5);
    flip_bit(files[0], record_offsets[9] + header + 3, 0);
    fs::resize_file(files[0], record_offsets[15] + header + 3);  // and a torn tail
    disk_tier tier(dir.path());
    CHECK(tier.stats().failures == 3 + 1);
    CHECK(verify_all(tier, 20) == 15 - 3);
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

namespace {

// Truncates `file` to `size` bytes from another process (a child that does
// only that), as another program would while the tier has the file mapped.
void truncate_from_another_process(const fs::path& file, std::uint64_t size) {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(::truncate(file.c_str(), static_cast<off_t>(size)) == 0 ? 0 : 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

}  // namespace

TEST_CASE(
    "disk_tier: segments truncated by another process while mapped cost counted misses, never a "
    "crash or a wrong value") {
  temp_dir dir("disk");
  const disk_tier_options options{.capacity_bytes = 64 << 20, .segment_bytes = 256 << 10};
  constexpr std::uint64_t count = 400;
  constexpr std::size_t max_size = 8000;
  // Records 0..199 come from an earlier tier (mapped on open at the size
  // fstat gave), 200..399 from this one (the segments it appends to are
  // mapped at their full size).
  {
    disk_tier writer(dir.path(), options);
    for (std::uint64_t r = 0; r < count / 2; ++r)
      REQUIRE(writer.put(key_of(r), value_for(key_of(r), max_size)));
  }
  disk_tier tier(dir.path(), options);
  for (std::uint64_t r = count / 2; r < count; ++r)
    REQUIRE(tier.put(key_of(r), value_for(key_of(r), max_size)));
  tier.flush();
  REQUIRE(tier.segment_count() >= 4);
  REQUIRE(tier.stats().failures == 0);
  // Every record is read through the mappings before the damage.
  REQUIRE(verify_all(tier, count, max_size) == count);

  const auto faults_before = conveyor::detail::disk_format::guarded_faults();
  for (const auto& file : segment_files(dir.path()))
    truncate_from_another_process(file, fs::file_size(file) / 3);

  std::size_t hits = 0;
  SUBCASE("get") {
    hits = verify_all(tier, count, max_size);
  }
  SUBCASE("visit_many and get_many") {
    std::vector<cache_key> keys;
    for (std::uint64_t r = 0; r < count; ++r) keys.push_back(key_of(r));
    std::span<const cache_key> all(keys);
    std::vector<std::uint8_t> seen(count, 0);
    hits = tier.visit_many(all.first(count / 2), [&](std::size_t i, std::span<const std::byte> v) {
      REQUIRE(i < count / 2);
      auto expected = value_for(key_of(i), max_size);
      REQUIRE(std::equal(v.begin(), v.end(), expected.begin(), expected.end()));
      seen[i] = 1;
    });
    std::vector<byte_buffer> values(count / 2);
    std::vector<std::uint8_t> found(count / 2);
    hits += tier.get_many(all.subspan(count / 2), values, found);
    for (std::size_t j = 0; j < count / 2; ++j)
      if (found[j]) REQUIRE(values[j] == value_for(key_of(count / 2 + j), max_size));
  }
  // Records wholly past the new end fault in the mapping (the guard turns the
  // SIGBUS into a miss); the one across it reads zeros and fails its checksum.
  CHECK(hits > 0);
  CHECK(hits < count);
  CHECK(tier.stats().failures == count - hits);
  CHECK(conveyor::detail::disk_format::guarded_faults() > faults_before);
  // The damaged keys are forgotten; a fresh value reads back.
  CHECK(verify_all(tier, count, max_size) == hits);
  REQUIRE(tier.put(key_of(count + 1), value_for(key_of(count + 1), max_size)));
  tier.flush();
  byte_buffer out;
  REQUIRE(tier.get(key_of(count + 1), out));
  CHECK(out == value_for(key_of(count + 1), max_size));
}

namespace {

sigjmp_buf chained_jump;
volatile std::sig_atomic_t chained_calls = 0;

void test_bus_handler(int, siginfo_t*, void*) {
  chained_calls = chained_calls + 1;
  siglongjmp(chained_jump, 1);
}

// A file of one mapped page's worth past `page`, then truncated to nothing:
// touching the mapping raises SIGBUS.
struct truncated_mapping {
  int fd = -1;
  volatile const char* bytes = nullptr;
  explicit truncated_mapping(const fs::path& file) {
    fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    void* at = ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(at != MAP_FAILED);
    bytes = static_cast<volatile const char*>(at);
    REQUIRE(::truncate(file.c_str(), 0) == 0);
  }
  ~truncated_mapping() {
    ::munmap(const_cast<char*>(bytes), 8192);
    ::close(fd);
  }
};

}  // namespace

TEST_CASE("disk_tier: a SIGBUS outside the tier's guarded reads reaches the handler it replaced") {
  struct sigaction mine {
  }, saved{};
  mine.sa_sigaction = &test_bus_handler;
  mine.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&mine.sa_mask);
  REQUIRE(::sigaction(SIGBUS, &mine, &saved) == 0);
  temp_dir dir("disk");
  {
    disk_tier tier(dir.path());  // installs the guard's handler in front of ours
    struct sigaction now {};
    REQUIRE(::sigaction(SIGBUS, nullptr, &now) == 0);
    const bool replaced = now.sa_sigaction != &test_bus_handler;
    CHECK(replaced);
    REQUIRE(tier.put(key_of(1), value_for(key_of(1))));
    tier.flush();

    truncated_mapping other(dir.file("other", std::string(8192, 'x')));
    chained_calls = 0;
    if (sigsetjmp(chained_jump, 1) == 0) {
      (void)other.bytes[4096];  // a fault in a mapping that is not the tier's
      FAIL("touching a truncated mapping raised no SIGBUS");
    }
    CHECK(chained_calls == 1);
    if (sigsetjmp(chained_jump, 1) == 0) ::raise(SIGBUS);  // a SIGBUS sent, not a fault
    CHECK(chained_calls == 2);

    byte_buffer out;  // the tier's own reads are unaffected
    REQUIRE(tier.get(key_of(1), out));
    CHECK(out == value_for(key_of(1)));
  }
  REQUIRE(::sigaction(SIGBUS, &saved, nullptr) == 0);
}

TEST_CASE("disk_tier: with the default SIGBUS action before it, a fault it does not guard kills") {
  temp_dir dir("disk");
  auto file = dir.file("other", std::string(8192, 'x'));
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(SIGBUS, &fallback, nullptr);
    if (!conveyor::detail::disk_format::sigbus::install()) ::_exit(2);
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    void* at = ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (fd < 0 || at == MAP_FAILED || ::truncate(file.c_str(), 0) != 0) ::_exit(3);
    (void)static_cast<volatile const char*>(at)[4096];
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGBUS);
}

TEST_CASE("disk_tier: the byte budget drops whole oldest segments") {
  temp_dir dir("disk");
  disk_tier_options options{.capacity_bytes = 256 << 10, .segment_bytes = 32 << 10};
  disk_tier tier(dir.path(), options);
  for (std::uint64_t r = 0; r < 1000; ++r) {
    REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
    REQUIRE(tier.size_bytes() <= options.capacity_bytes);
  }
  tier.flush();
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

  first.flush();           // nothing of the writer thread in flight while forking
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

namespace {

// Runs `body` in a forked child with SIGXFSZ at its default action (ends the
// process) and RLIMIT_FSIZE at `limit_bytes`; returns the child's wait status.
template <class Body>
int in_child_with_file_size_limit(rlim_t limit_bytes, Body body) {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_DFL);
    rlimit limit{limit_bytes, limit_bytes};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(90);
    int code = 0;
    try {
      code = body();
    } catch (...) {
      code = 91;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

// A write past the limit with nothing to stop SIGXFSZ: the child dies of it
// (so the tests below, where it must not, test something).
int write_past_limit(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 80;
  std::vector<char> bytes(8192, 'x');
  // From the limit on (4096 in the tests): a write across it would only be short.
  auto wrote = ::pwrite(fd, bytes.data(), bytes.size(), 4096);
  int error = errno;
  ::close(fd);
  return wrote < 0 && error == EFBIG ? 0 : 81;
}

}  // namespace

TEST_CASE(
    "disk_tier: past the file-size limit (ulimit -f) puts fail softly, SIGXFSZ left at its "
    "default") {
  temp_dir dir("disk");
  SUBCASE("control: a plain write past the limit is killed by SIGXFSZ") {
    int status =
        in_child_with_file_size_limit(4096, [&] { return write_past_limit(dir.file("plain")); });
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGXFSZ);
  }
  SUBCASE("the caller's-thread guard takes the signal a write raised") {
    int status = in_child_with_file_size_limit(4096, [&] {
      conveyor::detail::disk_format::file_size_signal_guard guard;
      int code = write_past_limit(dir.file("guarded"));
      guard.write_failed_with_efbig();
      return code;
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  SUBCASE("a thread that blocked the signal for good survives the write") {
    int status = in_child_with_file_size_limit(4096, [&] {
      int code = 82;
      std::thread writer([&] {
        conveyor::detail::disk_format::block_file_size_signal_in_this_thread();
        code = write_past_limit(dir.file("blocked"));
      });
      writer.join();
      return code;
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}

TEST_CASE(
    "disk_tier: past the file-size limit each lost record is one counted failure; the trainer "
    "lives") {
  for (std::uint64_t write_behind : {std::uint64_t{0}, std::uint64_t{1} << 20}) {
    CAPTURE(write_behind);
    temp_dir cache("disk");
    // 200 values of up to 3000 bytes (about 300 KiB) against a 64 KiB limit
    // per file: records past the limit fail (counted), each such failure seals
    // the segment, and later records go to new files.
    int status = in_child_with_file_size_limit(64 << 10, [&] {
      disk_tier tier(cache.path(), {.capacity_bytes = 1 << 20,
                                    .segment_bytes = 256 << 10,
                                    .write_behind_bytes = write_behind});
      std::uint64_t refused = 0;
      for (std::uint64_t r = 0; r < 200; ++r)
        refused += tier.put(key_of(r), value_for(key_of(r))) ? 0 : 1;
      // Caller's thread: put reports each failed write; behind: put returned true.
      if (write_behind == 0 ? refused == 0 : refused != 0) return 2;
      tier.flush();
      byte_buffer out;
      std::uint64_t hits = 0;
      for (std::uint64_t r = 0; r < 200; ++r) {
        if (!tier.get(key_of(r), out)) continue;
        if (out != value_for(key_of(r))) return 3;
        ++hits;
      }
      auto failures = tier.stats().failures;
      if (failures == 0 || hits == 0) return 4;
      if (hits + failures != 200) return 5;  // each lost record is one counted failure
      if (write_behind == 0 && refused != failures) return 7;
      if (tier.segment_count() < 2) return 6;
      return 0;
    });
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    disk_tier tier(cache.path());  // what the child stored is intact
    CHECK(tier.stats().failures == 0);
    CHECK(verify_all(tier, 200) > 0);
  }
}

TEST_CASE("disk_tier: a newer value that cannot be written leaves the key absent, not older") {
  temp_dir dir("disk");
  int status = in_child_with_file_size_limit(16 << 10, [&] {
    disk_tier tier(dir.path(), {.write_behind_bytes = 0});
    byte_buffer small(100, std::byte{1}), large(20 << 10, std::byte{2}), out;
    if (!tier.put(key_of(1), small)) return 2;
    if (!tier.get(key_of(1), out) || out != small) return 3;
    if (tier.put(key_of(1), large)) return 4;  // past the limit: refused
    if (tier.get(key_of(1), out) || tier.contains(key_of(1))) return 5;
    return tier.stats().failures == 1 ? 0 : 6;
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
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
          case 2:
            if (tier.get(key, out) && out != value_for(key)) wrong = true;
            break;
          default: {  // a batch through visit_many while segments come and go
            std::vector<cache_key> keys;
            for (int k = 0; k < 16; ++k) keys.push_back(key_of(random() % 300));
            tier.visit_many(
                std::span<const cache_key>(keys),
                [&](std::size_t j, std::span<const std::byte> value) {
                  auto expected = value_for(keys[j]);
                  if (!std::equal(value.begin(), value.end(), expected.begin(), expected.end()))
                    wrong = true;
                });
          }
        }
        (void)tier.stats();
      }
    });
  for (auto& thread : threads) thread.join();
  tier.flush();
  CHECK_FALSE(wrong.load());
  CHECK(tier.stats().failures == 0);
  // Segments were deleted while others read (the first one, at least).
  CHECK_FALSE(fs::exists(dir.path() / conveyor::detail::disk_format::segment_file_name(1)));
  CHECK(tier.size_bytes() <= tier.capacity_bytes());
}

TEST_CASE(
    "disk_tier write-behind: put returns before the write; get, contains and erase see the queue") {
  temp_dir dir("disk");
  {
    disk_tier tier(
        dir.path(),
        {.capacity_bytes = 8 << 20, .segment_bytes = 1 << 20, .write_behind_bytes = 256 << 10});
    byte_buffer out;
    for (std::uint64_t r = 0; r < 600; ++r) {
      REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
      REQUIRE(tier.get(key_of(r), out));  // queued or written: found either way
      REQUIRE(out == value_for(key_of(r)));
      CHECK(tier.queued_bytes() <= (256u << 10) + 3000);  // the budget (plus one value)
      if (r % 5 == 0) {
        REQUIRE(tier.erase(key_of(r)));
        CHECK_FALSE(tier.contains(key_of(r)));
        CHECK_FALSE(tier.get(key_of(r), out));
      }
      if (r % 7 == 0) REQUIRE(tier.put(key_of(r), byte_buffer(r % 50, std::byte{9})));
    }
    auto check_all = [&] {
      for (std::uint64_t r = 0; r < 600; ++r) {
        bool present = r % 7 == 0 || r % 5 != 0;
        CHECK(tier.contains(key_of(r)) == present);
        if (!present) continue;
        REQUIRE(tier.get(key_of(r), out));
        CHECK(out == (r % 7 == 0 ? byte_buffer(r % 50, std::byte{9}) : value_for(key_of(r))));
      }
    };
    check_all();
    tier.flush();
    CHECK(tier.queued_bytes() == 0);
    check_all();
    CHECK(tier.stats().failures == 0);
    std::uint64_t on_disk = 0;
    for (const auto& file : segment_files(dir.path())) on_disk += fs::file_size(file);
    CHECK(tier.size_bytes() == on_disk);
    for (std::uint64_t r = 600; r < 700; ++r) REQUIRE(tier.put(key_of(r), value_for(key_of(r))));
  }  // the destructor writes what is still queued
  disk_tier reopened(dir.path());
  CHECK(reopened.stats().failures == 0);
  byte_buffer out;
  for (std::uint64_t r = 0; r < 700; ++r) {
    bool present = r >= 600 || r % 7 == 0 || r % 5 != 0;
    REQUIRE(reopened.get(key_of(r), out) == present);
    if (present && r % 7 != 0) CHECK(out == value_for(key_of(r)));
  }
}

TEST_CASE("disk write queue: bounded, in order, flushed; lookups answer from it") {
  using namespace conveyor::detail::disk_format;
  std::mutex gate_mutex;
  std::condition_variable gate_changed;
  bool gate_open = false;
  std::vector<std::uint64_t> written;  // record numbers, in the order the writer wrote them
  std::uint64_t most_queued = 0;
  write_queue* queue_pointer = nullptr;
  write_queue queue(3000, [&](write_queue::record_run run) {
    std::unique_lock lock(gate_mutex);
    gate_changed.wait(lock, [&] { return gate_open; });
    for (const auto& record : run) written.push_back(record->key.record);
    most_queued = std::max(most_queued, queue_pointer->queued_bytes());
  });
  queue_pointer = &queue;
  auto record = [](std::uint64_t r, record_kind kind = record_kind::value) {
    return single_record(
        kind, key_of(r),
        kind == record_kind::value ? byte_buffer(1000, std::byte(r)) : byte_buffer{});
  };
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (std::uint64_t r = 0; r < 8; ++r) {
      queue.push({record(r)});
      pushed.fetch_add(1);
    }
    queue.push({record(3, record_kind::tombstone)});
    pushed.fetch_add(1);
  });
  // The writer is held at the gate with record 0: three values fill the
  // 3000-byte budget, so the producer must be waiting for room now.
  while (queue.queued_bytes() < 3000) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(pushed.load() <= 3);  // an unbounded queue would have taken all nine by now
  byte_buffer out;
  CHECK(queue.find(key_of(1), &out) == pending_lookup::value);
  CHECK(out == byte_buffer(1000, std::byte{1}));
  CHECK(queue.find(key_of(7), &out) == pending_lookup::absent);
  {
    std::lock_guard lock(gate_mutex);
    gate_open = true;
  }
  gate_changed.notify_all();
  producer.join();
  queue.flush();
  CHECK(queue.queued_bytes() == 0);
  CHECK(written == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 3});
  CHECK(most_queued <= 3000);
  CHECK(queue.find(key_of(3), &out) ==
        pending_lookup::absent);  // written: the tier's index answers
}

TEST_CASE("disk index: agrees with a std::map through growth, overwrites and erases") {
  using namespace conveyor::detail::disk_format;
  disk_index index;
  std::map<std::uint64_t, record_location> model;
  std::mt19937_64 random(23);
  auto check_all = [&] {
    REQUIRE(index.size() == model.size());
    for (std::uint64_t r = 0; r < 4000; ++r) {
      const record_location* found = index.find(key_of(r));
      auto expected = model.find(r);
      REQUIRE((found != nullptr) == (expected != model.end()));
      if (found != nullptr) {
        CHECK(found->segment_id == expected->second.segment_id);
        CHECK(found->offset == expected->second.offset);
        CHECK(found->fd == expected->second.fd);
      }
    }
  };
  for (int step = 0; step < 40000; ++step) {
    // Keys from a range that grows, so the table grows while keys are erased
    // and overwritten in runs that wrap around its end.
    const std::uint64_t r = random() % (100 + static_cast<std::uint64_t>(step) / 10);
    if (random() % 3 == 0) {
      CHECK(index.erase(key_of(r)) == (model.erase(r) == 1));
    } else {
      record_location where{random() % 9 + 1, random(), random() % 5000, nullptr,
                            static_cast<int>(random() % 100)};
      index.assign(key_of(r), where);
      model[r] = where;
    }
    if (step % 2000 == 0) check_all();
  }
  check_all();
  for (auto it = model.begin(); it != model.end();) {  // empty it again, checking as it goes
    REQUIRE(index.erase(key_of(it->first)));
    it = model.erase(it);
    if (model.size() % 500 == 0) check_all();
  }
  CHECK(index.size() == 0);
  CHECK(!index.erase(key_of(1)));
}

TEST_CASE(
    "disk_tier: records queued by put_many_with carry headers that verify, damage is caught") {
  // The record header (and its CRC32C over the value) is computed by the
  // thread that queues the batch, right after it writes the values; the
  // writer thread writes it as given. Reopening checks every record.
  temp_dir dir("disk");
  constexpr std::size_t count = 300;
  std::vector<cache_key> keys;
  std::vector<std::size_t> sizes;
  std::vector<std::uint64_t> offsets;
  std::uint64_t offset = conveyor::detail::disk_format::segment_header_size;
  for (std::uint64_t r = 0; r < count; ++r) {
    keys.push_back(key_of(r));
    sizes.push_back(value_for(key_of(r)).size());
    offsets.push_back(offset);
    offset += conveyor::detail::disk_format::record_header_size + sizes.back();
  }
  {
    disk_tier tier(dir.path());
    std::vector<std::uint8_t> stored(count);
    REQUIRE(tier.put_many_with(
                keys, sizes,
                [&](std::size_t i, std::span<std::byte> destination) {
                  auto value = value_for(keys[i]);
                  REQUIRE(destination.size() == value.size());
                  std::copy(value.begin(), value.end(), destination.begin());
                },
                stored) == count);
    tier.flush();
    CHECK(tier.queued_bytes() == 0);
  }
  {
    disk_tier reopened(dir.path());
    CHECK(reopened.stats().failures == 0);
    byte_buffer out;
    for (const auto& key : keys) {
      REQUIRE(reopened.get(key, out));
      CHECK(out == value_for(key));
    }
  }
  auto files = segment_files(dir.path());
  REQUIRE(files.size() == 1);
  const std::uint64_t damaged = 123;
  REQUIRE(sizes[damaged] > 4);
  flip_bit(files[0], offsets[damaged] + conveyor::detail::disk_format::record_header_size + 3, 6);
  disk_tier reopened(dir.path());
  CHECK(reopened.stats().failures == 1);  // one damaged record, skipped by the scan
  byte_buffer out;
  for (std::uint64_t r = 0; r < count; ++r) {
    CHECK(reopened.get(keys[r], out) == (r != damaged));
    if (r != damaged) CHECK(out == value_for(keys[r]));
  }
}
