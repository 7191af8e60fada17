// What a tiered<memory_tier, memory_tier> costs over its top tier alone, on
// one thread, per key, in CPU time of the thread: hits in the top tier (get,
// get_many and visit_many in batches of 256) against the same calls on a lone
// memory tier holding the same values, and promotions (the top emptied, every
// key found below and copied up by get_many) against doing the same by hand:
// get_many on the lower tier, put_many into the top. Each figure is the
// median over interleaved rounds of (stack's CPU time) / (baseline's), for
// 64-byte and 4 KiB values. Then a write-back stack's put_many (every value
// stored by the top, as when filling) against put_many on a lone top tier.
// Used to check that promotion's guard (the write
// generations, tiered.hpp) does not slow the hit or the promotion path: build
// it before and after a change and alternate the two binaries.
#include "conveyor/cache/tiered.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "conveyor/cache/memory_tier.hpp"

namespace cy = conveyor;

namespace {

double thread_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

template <class Body>
double cpu_seconds(Body&& body) {
  double started = thread_seconds();
  body();
  return thread_seconds() - started;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

cy::memory_tier<> big_top() {
  return cy::memory_tier<>(256ull << 20);
}
cy::memory_tier<cy::eviction::lru> big_lower() {
  return cy::memory_tier<cy::eviction::lru>(256ull << 20);
}

void run(std::size_t value_size, std::size_t key_count, int rounds) {
  constexpr std::size_t batch = 256;
  std::vector<cy::cache_key> keys(key_count);
  cy::byte_buffer value(value_size, std::byte{0x3c});
  std::vector<std::span<const std::byte>> values(key_count, value);
  for (std::size_t i = 0; i < key_count; ++i) keys[i] = cy::cache_key{9, 9, i};

  cy::memory_tier<> alone = big_top();
  cy::tiered stack(big_top(), big_lower());
  cy::memory_tier<> by_hand_top = big_top();
  cy::memory_tier<cy::eviction::lru> by_hand_lower = big_lower();
  alone.put_many(keys, values);
  stack.put_many(keys, values);
  cy::memory_tier<> put_alone = big_top();
  cy::tiered write_back(cy::write_policy::write_back, big_top(), big_lower());
  by_hand_lower.put_many(keys, values);

  std::vector<cy::byte_buffer> out(batch);
  std::vector<std::uint8_t> found(batch);
  cy::byte_buffer one;
  std::vector<std::byte> sink(batch * value_size);
  std::size_t checked = 0;
  auto visit_all = [&](auto& tier) {
    for (std::size_t at = 0; at < key_count; at += batch) {
      auto part = std::span(keys).subspan(at, std::min(batch, key_count - at));
      checked += tier.visit_many(part, [&](std::size_t i, std::span<const std::byte> bytes) {
        std::copy(bytes.begin(), bytes.end(), sink.begin() + static_cast<long>(i * value_size));
      });
    }
  };
  auto get_many_all = [&](auto& tier) {
    for (std::size_t at = 0; at < key_count; at += batch) {
      auto part = std::span(keys).subspan(at, std::min(batch, key_count - at));
      checked += tier.get_many(part, out, found);
    }
  };
  auto put_many_all = [&](auto& tier) {
    for (std::size_t at = 0; at < key_count; at += batch) {
      const std::size_t n = std::min(batch, key_count - at);
      checked += tier.put_many(std::span(keys).subspan(at, n), std::span(values).subspan(at, n));
    }
  };
  auto get_all = [&](auto& tier) {
    for (const auto& key : keys) checked += tier.get(key, one) ? 1 : 0;
  };

  std::vector<double> visit_ratio, get_many_ratio, get_ratio, promote_ratio, put_ratio;
  double visit_ns = 0, promote_ns = 0, put_ns = 0, by_hand_ns = 0, put_alone_ns = 0;
  for (int round = 0; round < rounds; ++round) {
    double a = cpu_seconds([&] { visit_all(alone); });
    double b = cpu_seconds([&] { visit_all(stack); });
    visit_ratio.push_back(b / a);
    visit_ns += b;
    a = cpu_seconds([&] { get_many_all(alone); });
    b = cpu_seconds([&] { get_many_all(stack); });
    get_many_ratio.push_back(b / a);
    a = cpu_seconds([&] { get_all(alone); });
    b = cpu_seconds([&] { get_all(stack); });
    get_ratio.push_back(b / a);
    // Promotion: empty both tops (untimed), then find everything below.
    for (const auto& key : keys) {
      stack.tier<0>().erase(key);
      by_hand_top.erase(key);
    }
    a = cpu_seconds([&] {
      for (std::size_t at = 0; at < key_count; at += batch) {
        auto part = std::span(keys).subspan(at, std::min(batch, key_count - at));
        checked += by_hand_lower.get_many(part, out, found);
        std::vector<std::span<const std::byte>> spans(part.size());
        for (std::size_t i = 0; i < part.size(); ++i) spans[i] = out[i];
        by_hand_top.put_many(part, spans);
      }
    });
    b = cpu_seconds([&] { get_many_all(stack); });
    promote_ratio.push_back(b / a);
    promote_ns += b;
    by_hand_ns += a;
    a = cpu_seconds([&] { put_many_all(put_alone); });
    b = cpu_seconds([&] { put_many_all(write_back); });
    put_ratio.push_back(b / a);
    put_ns += b;
    put_alone_ns += a;
  }
  if (checked == 0 || stack.tier<0>().stats().puts < key_count) std::abort();  // keep the work
  double per_key = 1e9 / static_cast<double>(rounds) / static_cast<double>(key_count);
  std::printf(
      "%5zu-byte values, %zu keys, %d rounds: stack / baseline CPU time (median): visit_many "
      "%.3f, get_many %.3f, get %.3f; promotion by get_many %.3f (stack: %.1f ns/key visiting, "
      "%.1f ns/key promoting, by hand %.1f); write-back put_many %.3f (%.1f ns/key, top alone "
      "%.1f)\n",
      value_size, key_count, rounds, median(visit_ratio), median(get_many_ratio), median(get_ratio),
      median(promote_ratio), visit_ns * per_key, promote_ns * per_key, by_hand_ns * per_key,
      median(put_ratio), put_ns * per_key, put_alone_ns * per_key);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3)
    std::printf("load average: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  run(64, 16384, rounds);
  run(4096, 4096, rounds);
  return 0;
}
