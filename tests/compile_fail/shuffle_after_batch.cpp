// expect: place them before batch(n), not after it.
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::shuffle(1);
  (void)pipe;
}
