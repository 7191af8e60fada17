// expect: the function given to map cannot take the upstream batch
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::map("wrong", [](conveyor::record_batch<conveyor::dense<"y", float>>&& b) { return std::move(b); });
  (void)pipe;
}
