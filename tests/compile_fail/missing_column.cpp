// A stage asks for a column upstream does not produce: the error names it and the fix.
// expect: the batch has no column with this name
// expect-gcc: column_is_missing<conveyor::column_name<conveyor::fixed_string<9>{"features"}>
// expect-clang: column_is_missing<conveyor::detail::spelled<'f', 'e', 'a', 't', 'u', 'r', 'e', 's'>
// expect: Produce it upstream
#include <conveyor/conveyor.hpp>

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2);
  for (auto& b : pipe.epoch(0)) (void)b.get<"features">();
}
