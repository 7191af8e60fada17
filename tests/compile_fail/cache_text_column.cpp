// cache(...) on a batch with a column that is neither dense<...> nor bytes<...>
// (like the TSV source's text records, which point into a mapped file).
// expect: cache(...) stores dense<...> and bytes<...> columns in host memory only
// expect: decode text records into dense columns before cache(...)
#include <conveyor/cache/cache_stage.hpp>
#include <conveyor/cache/memory_tier.hpp>
#include <conveyor/conveyor.hpp>

#include <string>

struct text_column {
  static constexpr conveyor::fixed_string name{"record"};
  using storage = std::string;
};

int main() {
  auto pipe = conveyor::generate<conveyor::dense<"x", float>>(10, 1, [](auto, auto) {}) | conveyor::batch(2) |
              conveyor::map("to_text", [](conveyor::record_batch<conveyor::dense<"x", float>>&&) {
                return conveyor::record_batch<conveyor::dense<"x", float>, text_column>();
              }) |
              conveyor::cache(conveyor::memory_tier<>(1 << 20));
  (void)pipe;
}
