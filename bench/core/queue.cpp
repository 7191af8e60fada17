// Handoff cost per batch through prefetch's queue (conveyor::spsc_ring, which
// blocks) vs a bare boost::lockfree::spsc_queue (which spins). One producer
// thread pushes N items, the consumer pops them; the figure is nanoseconds per
// item, and the ratio spsc_ring / boost (lower is better; 1.0 = same cost).
// Items are 64-byte structs standing in for a batch handle.
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <conveyor/exec/spsc_ring.hpp>
#include <cstdio>
#include <string>
#include <thread>

namespace {
using clock_type = std::chrono::steady_clock;
struct item {
  std::uint64_t value = 0;
  std::uint64_t pad[7] = {};
};

double ring_ns(std::size_t capacity, std::uint64_t count) {
  conveyor::spsc_ring<item> ring(capacity);
  auto begin = clock_type::now();
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < count; ++i) ring.push(item{i, {}});
    ring.close();
  });
  std::uint64_t sum = 0;
  while (auto v = ring.pop()) sum += v->value;
  producer.join();
  auto ns = std::chrono::duration<double, std::nano>(clock_type::now() - begin).count();
  if (sum != count * (count - 1) / 2) std::printf("ring lost items!\n");
  return ns / static_cast<double>(count);
}

double boost_ns(std::size_t capacity, std::uint64_t count) {
  boost::lockfree::spsc_queue<item> queue(capacity);
  auto begin = clock_type::now();
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < count; ++i)
      while (!queue.push(item{i, {}})) {
      }
  });
  std::uint64_t sum = 0, seen = 0;
  item v;
  while (seen < count)
    if (queue.pop(v)) {
      sum += v.value;
      ++seen;
    }
  producer.join();
  auto ns = std::chrono::duration<double, std::nano>(clock_type::now() - begin).count();
  if (sum != count * (count - 1) / 2) std::printf("boost lost items!\n");
  return ns / static_cast<double>(count);
}
}  // namespace

int main(int argc, char** argv) {
  std::uint64_t count = argc > 1 ? std::stoull(argv[1]) : 2'000'000;
  for (std::size_t capacity : {4u, 64u}) {
    double best_ring = 1e9, best_boost = 1e9;
    for (int r = 0; r < 5; ++r) {
      best_ring = std::min(best_ring, ring_ns(capacity, count));
      best_boost = std::min(best_boost, boost_ns(capacity, count));
    }
    std::printf("capacity %3zu: spsc_ring %.1f ns/item, boost::lockfree::spsc_queue %.1f ns/item, ratio %.2f\n",
                capacity, best_ring, best_boost, best_ring / best_boost);
  }
}
