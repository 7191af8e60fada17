// with_pool(...) given a pool of device memory: host stages would write it.
// expect: conveyor: with_pool(...) takes a pool of host memory
#include <conveyor/conveyor.hpp>

namespace cy = conveyor;

struct device_pool final : cy::buffer_pool {
  static constexpr cy::memory_space static_space = cy::memory_space::device;
  void* acquire(std::size_t, std::size_t&) override { return nullptr; }
  void release(void*, std::size_t) noexcept override {}
  cy::memory_space space() const noexcept override { return static_space; }
};

int main() {
  auto pipe = cy::generate<cy::dense<"x", float>>(10, 1, [](auto, auto) {}) | cy::batch(2) |
              cy::with_pool(std::make_shared<device_pool>());
  (void)pipe;
}
