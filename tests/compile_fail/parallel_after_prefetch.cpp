// expect: it must come before prefetch(...) and appear only once
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::prefetch(2) | conveyor::parallel(2);
  (void)pipe;
}
