// Links conveyor::hdf5 and conveyor::redis (and conveyor::torch, conveyor::cuda
// where found): their headers compile and HDF5's library links.
#include <conveyor/cache/redis_tier.hpp>
#include <conveyor/source/hdf5.hpp>
#include <cstdio>

int main() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return 1;
  std::printf("consumer_components: HDF5 %u.%u.%u\n", major, minor, release);
  return 0;
}
