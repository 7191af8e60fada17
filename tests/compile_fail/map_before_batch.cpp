// map(...) before batch(n): stages after the plan see batches; the first
// error line names the stage and the fix.
// first-error: conveyor: map(...) works on batches; add | batch(n) before it.
// max-lines: 24
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) |
              conveyor::map("twice", [](auto&& b) { return std::move(b); }) | conveyor::batch(2);
  (void)pipe;
}
