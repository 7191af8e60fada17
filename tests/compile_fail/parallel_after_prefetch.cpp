// parallel(n) after prefetch(n): parallel runs the batch function upstream of
// it once per batch; after prefetch there is only a stream.
// first-error: conveyor: parallel(n) needs the batch function that parallel(n) and prefetch(n) turn into a stream
// expect: move parallel(n) before parallel(...) and prefetch(...)
// max-lines: 24
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::prefetch(2) | conveyor::parallel(2);
  (void)pipe;
}
