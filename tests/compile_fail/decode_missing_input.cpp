// A column decoder naming a column the batch lacks: the error names the
// column (readably under clang too) and stops there.
// expect: conveyor: decode(...): the batch upstream has no column with the name this decoder reads
// expect-gcc: column_input_check<conveyor::column_name<conveyor::fixed_string<5>{"bits"}>
// expect-clang: column_input_check<conveyor::detail::spelled<'b', 'i', 't', 's'>
// expect-clang: conveyor::detail::spelled<'p', 'a', 'c', 'k', 'e', 'd'>
// max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>

namespace cy = conveyor;

int main() {
  auto pipe = cy::generate<cy::dense<"packed", std::uint8_t>>(10, 128, [](auto, auto) {}) | cy::batch(2) |
              cy::decode(cy::packed_bits<float>(cy::column<"bits">, 1024) >> cy::column<"x">);
  for (auto& b : pipe.epoch(0)) (void)b;
}
