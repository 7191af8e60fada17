// expect: map works on batches; add | batch(n) before it.
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) |
              conveyor::map("id", [](auto&& b) { return std::move(b); });
  (void)pipe;
}
