// cache(...) after parallel(n): the chain is already a stream, so there is no
// batch function left for the cache to wrap; the error says where it goes.
// expect: cache(...) wraps the batch function that parallel(n) and prefetch(n) run
// expect: move cache(...) before parallel(...) and prefetch(...)
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::parallel(2) | conveyor::cache(conveyor::memory_tier<>(1 << 20));
  (void)pipe;
}
