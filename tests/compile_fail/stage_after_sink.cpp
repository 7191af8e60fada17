// A user's sink stage (placement must_be_last, named messages) followed by
// another stage: the error names the sink and says it must be last.
// first-error: conveyor: my_sink(...) delivers the pipeline's batches and must be the last stage
// max-lines: 24
#include <conveyor/conveyor.hpp>

namespace cy = conveyor;

struct my_sink {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  static constexpr cy::stage_placement placement{.must_be_last = true};
  CONVEYOR_STAGE_MESSAGES("my_sink(...)")
  std::string_view name() const { return "my_sink"; }
  template <class B>
  B operator()(B&& b, const cy::stage_context&) const {
    return std::move(b);
  }
};

int main() {
  auto sunk = cy::append_stage(cy::generate<cy::dense<"x", float>>(10, 1, [](auto, auto) {}) | cy::batch(2), my_sink{});
  auto pipe = sunk | cy::prefetch(2);
  (void)pipe;
}
