// A stage that reads columns on the host (map) after the device stager: the
// first error names the stage and the fix, and the instantiation names the
// device column the stager made.
// first-error: conveyor: map(...) reads columns on the host, and upstream delivers a column in device memory
// expect: move map(...) before the stage that moves columns to the device
// expect: fixed_string<2>{"x"}
// max-lines: 24
#include <conveyor/conveyor.hpp>
#include <conveyor/gpu/to_device.hpp>

namespace cy = conveyor;
using device_batch = cy::record_batch<cy::dense<"x", float, cy::memory_space::device>>;

int main() {
  auto pipe = cy::generate<cy::dense<"x", float>>(10, 1, [](auto, auto) {}) | cy::batch(2) | cy::to_cuda(0, 2) |
              cy::map("on_host", [](device_batch&& b) { return std::move(b); });
  (void)pipe;
}
