// expect: a pipeline yields batches only after batch(n)
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::shuffle(3);
  for (auto& b : pipe.epoch(0)) (void)b;
}
