// cache(...) after parallel(n): the chain is already a stream, so there is no
// batch function left for the cache to wrap; the first error line names the
// stage and where it goes, and the whole diagnostic stays short.
// first-error: conveyor: cache(...) needs the batch function that parallel(n) and prefetch(n) turn into a stream
// expect: move cache(...) before parallel(...) and prefetch(...)
// max-lines: 24
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::parallel(2) | conveyor::cache(conveyor::memory_tier<>(1 << 20));
  (void)pipe;
}
