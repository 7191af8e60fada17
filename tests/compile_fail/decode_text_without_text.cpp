// A text decoder over a batch that has no text column.
// expect: conveyor: decode(...): this decoder reads fields of a text column
// expect-clang: conveyor::detail::spelled<'p', 'a', 'c', 'k', 'e', 'd'>
// max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>

namespace cy = conveyor;

int main() {
  auto pipe = cy::generate<cy::dense<"packed", std::uint8_t>>(10, 128, [](auto, auto) {}) | cy::batch(2) |
              cy::decode(cy::bits<float>("bloomfilter", 1024) >> cy::column<"x">);
  for (auto& b : pipe.epoch(0)) (void)b;
}
