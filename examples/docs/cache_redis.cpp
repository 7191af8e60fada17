// docs/cache-redis.md: redis_tier against a real redis-server that this
// program starts (a random free port, a password, a temporary directory; the
// same helper as the Redis tests, tests/cache/redis_process.hpp) and stops.
// Prints "skipped: redis-server is not installed" (ctest: skipped) without one.
// Exits 1 unless the values put are read back, singly and in a pipelined batch.
#include <conveyor/cache/redis_tier.hpp>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "cache/redis_process.hpp"

int main() {
  if (!conveyor::test::redis_process::available()) {
    std::printf("skipped: redis-server is not installed\n");
    return 0;
  }
  conveyor::test::redis_process server({"--requirepass", "s3cret"});
  const std::string text = "decoded record 42";
  const auto bytes = std::as_bytes(std::span(text.data(), text.size()));
  const conveyor::cache_key key{/*dataset=*/1, /*chain=*/2, /*record=*/42};
  std::vector<conveyor::cache_key> keys{{1, 2, 42}, {1, 2, 43}, {1, 2, 44}};
  std::vector<conveyor::byte_buffer> values(keys.size());
  std::vector<std::uint8_t> found(keys.size());
  bool ok = true;

  // Laid out as docs/cache-redis.md quotes it.
  // clang-format off
  conveyor::redis_tier_options options;
  options.servers = {server.address()};   // "host:port"; with cluster = true, the cluster's seed nodes
  options.password = "s3cret";            // AUTH <password>; set username too for ACL users
  options.key_prefix = "dea-v1:";
  options.ttl = std::chrono::hours(6);     // SET ... PX; 0 = no expiry
  options.io_timeout = std::chrono::milliseconds(500);

  conveyor::redis_tier cache(options);
  cache.put(key, bytes);                   // false if not stored
  conveyor::byte_buffer value;
  if (cache.get(key, value)) { /* hit */ }
  cache.get_many(keys, values, found);     // pipelined, split per cluster node
  std::cout << cache.stats().failures << " failures, "
            << cache.counters().moved_redirects << " MOVED\n";
  // clang-format on

  ok &= value.size() == text.size();
  // One hit (record 42) and two misses; no failure, no redirect.
  ok &= found[0] == 1 && found[1] == 0 && found[2] == 0 && values[0].size() == text.size();
  ok &= cache.stats().failures == 0 && cache.counters().moved_redirects == 0;
  // The value is under key_prefix + cache_key::to_string(), with the TTL set.
  auto ttl =
      conveyor::test::send_command(server.where(), {"PTTL", "dea-v1:" + key.to_string()}, "s3cret");
  ok &= ttl.integer > 0 && ttl.integer <= 6 * 3600 * 1000;
  // A wrong password: every call fails, is counted, and answers as a miss.
  options.password = "wrong";
  conveyor::redis_tier refused(options);
  ok &= !refused.get(key, value) && refused.stats().failures > 0;

  std::printf("cache_redis: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
