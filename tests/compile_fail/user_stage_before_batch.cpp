// A user's stage written against the stage protocol without named messages:
// the generic message still says what to do.
// first-error: conveyor: this stage works on batches; add | batch(n) before it.
// max-lines: 24
#include <conveyor/conveyor.hpp>

namespace cy = conveyor;

struct scale {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  std::string_view name() const { return "scale"; }
  template <class B>
  B operator()(B&& b, const cy::stage_context&) const {
    return std::move(b);
  }
};

int main() {
  auto pipe = cy::append_stage(cy::generate<cy::dense<"x", float>>(10, 1, [](auto, auto) {}), scale{});
  (void)pipe;
}
