// decode(...) before batch(n).
// first-error: conveyor: decode(...) works on batches; add | batch(n) before it.
// max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/decode/decode.hpp>
#include <conveyor/source/tsv.hpp>

int main() {
  auto pipe = conveyor::tsv_file("x.tsv") | conveyor::decode(conveyor::bits<float>("b", 8) >> conveyor::column<"x">);
  (void)pipe;
}
