// The cache stage over a real Redis: all hits after the first epoch, a server
// that is not there, and a server killed and restarted in the middle of an
// epoch. Each case skips when redis-server is not installed.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "cache_stage_support.hpp"
#include "conveyor/cache/redis_tier.hpp"
#include "redis_process.hpp"

using namespace cache_test;
using namespace std::chrono_literals;
using conveyor::test::redis_process;

namespace {

constexpr std::uint64_t record_count = 600;

auto base_pipe(call_counter calls) {
  return counted_source(record_count, std::move(calls)) | cy::shuffle(11) | cy::batch(20) |
         cy::map("expand", expand);
}

std::vector<std::vector<batch_snapshot>> reference_epochs() {
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::parallel(2);
  std::vector<std::vector<batch_snapshot>> out;
  for (std::uint64_t e = 0; e < 4; ++e) out.push_back(run_epoch(pipe, e));
  return out;
}

std::shared_ptr<cy::redis_tier> tier_at(std::uint16_t port) {
  cy::redis_tier_options options;
  options.servers = {"127.0.0.1:" + std::to_string(port)};
  options.key_prefix = "cache-stage-test:";
  options.connect_timeout = 200ms;
  options.io_timeout = 500ms;
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  return std::make_shared<cy::redis_tier>(options);
}

}  // namespace

TEST_CASE("cache_stage over redis: epochs 2 and 3 come from Redis and equal the uncached run") {
  if (!redis_process::available()) {
    MESSAGE("redis-server is not installed; skipping this test case");
    return;
  }
  redis_process server;
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier_at(server.port())) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_epoch(pipe, e) == expected[e]);
  CHECK(calls->load() == record_count);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.hits == 2 * record_count);
  CHECK(stats.tier.failures == 0);
}

TEST_CASE(
    "cache_stage over redis: binary columns go as bitmaps, CRC-checked, and come back bit-exact") {
  if (!redis_process::available()) {
    MESSAGE("redis-server is not installed; skipping this test case");
    return;
  }
  redis_process server;
  auto binary_pipe = [](call_counter calls) {
    return counted_source(record_count, std::move(calls)) | cy::shuffle(11) | cy::batch(20) |
           cy::map("expand-binary", expand_binary);
  };
  std::vector<std::vector<binary_snapshot>> expected;
  {
    auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
    auto pipe = binary_pipe(calls) | cy::parallel(2);
    for (std::uint64_t e = 0; e < 3; ++e) expected.push_back(run_binary_epoch(pipe, e));
  }
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = binary_pipe(calls) | cy::cache(tier_at(server.port())) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_binary_epoch(pipe, e) == expected[e]);
  CHECK(calls->load() == record_count);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.hits == 2 * record_count);
  CHECK(stats.invalid == 0);
  // x: all but every 7th record, u: all, h: all but every 5th (support header).
  CHECK(stats.bitmap_columns == (600 - 86) + 600 + (600 - 120));
  CHECK(stats.tier.failures == 0);
}

TEST_CASE(
    "cache_stage over redis: nobody listening on the port: all misses, counted failures, correct "
    "output") {
  if (!redis_process::available()) {
    MESSAGE("redis-server is not installed; skipping this test case");
    return;
  }
  auto port = conveyor::test::pick_free_port();
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier_at(port)) | cy::parallel(2);
  for (std::uint64_t e = 0; e < 3; ++e) CHECK(run_epoch(pipe, e) == expected[e]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.hits == 0);
  CHECK(stats.stored == 0);
  CHECK(stats.tier.failures > 0);
  CHECK(calls->load() == 3 * record_count);
}

TEST_CASE(
    "cache_stage over redis: the server is killed and restarted mid-epoch; the epoch completes "
    "correctly") {
  if (!redis_process::available()) {
    MESSAGE("redis-server is not installed; skipping this test case");
    return;
  }
  redis_process server;
  auto expected = reference_epochs();
  auto calls = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto pipe = base_pipe(calls) | cy::cache(tier_at(server.port())) | cy::parallel(2);
  CHECK(run_epoch(pipe, 0) == expected[0]);
  std::vector<batch_snapshot> got;
  for (auto& b : pipe.epoch(1)) {
    got.push_back(snapshot_of(b));
    if (got.size() == 8) server.stop();    // kill -9 while workers are mid-lookup
    if (got.size() == 16) server.start();  // back, empty (no persistence)
  }
  CHECK(got == expected[1]);
  auto stats = cy::cache_stats(pipe);
  CHECK(stats.tier.failures > 0);
  CHECK(stats.hits > 0);
  CHECK(stats.hits < 2 * record_count);
  // The restarted server is empty, and the client may still be backing off
  // (at most backoff_max, 50 ms) when the rest of epoch 1 is done, so that
  // epoch may have stored nothing since the restart. Once the backoff is
  // over, epoch 2 is correct and stores what it recomputes, and epoch 3 hits.
  std::this_thread::sleep_for(200ms);
  CHECK(run_epoch(pipe, 2) == expected[2]);
  const auto after_epoch_2 = cy::cache_stats(pipe).hits;
  CHECK(run_epoch(pipe, 3) == expected[3]);
  CHECK(cy::cache_stats(pipe).hits > after_epoch_2);
}
