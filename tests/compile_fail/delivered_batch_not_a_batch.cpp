// A sink's batch type whose delivered_batch is not a record_batch: the
// pipeline cannot tell which columns it delivers, and says what it must be.
// first-error: conveyor: a batch type's delivered_batch must be a record_batch<...>
// max-lines: 24
#include <conveyor/conveyor.hpp>

namespace cy = conveyor;

struct wrong_rows {
  using delivered_batch = int;  // must be the record_batch whose columns it delivers
  std::size_t rows() const { return 0; }
  std::size_t size_bytes() const { return 0; }
};

struct to_wrong_rows {
  static constexpr cy::stage_kind kind = cy::stage_kind::map;
  static constexpr cy::stage_placement placement{.must_be_last = true};
  std::string_view name() const { return "to_wrong_rows"; }
  template <class B>
  wrong_rows operator()(B&&, const cy::stage_context&) const {
    return {};
  }
};

int main() {
  auto pipe =
      cy::append_stage(cy::generate<cy::dense<"x", float>>(10, 1, [](auto, auto) {}) | cy::batch(2),
                       to_wrong_rows{});
  for (auto& rows : pipe.epoch(0)) (void)rows;
}
