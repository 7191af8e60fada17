// A clock of this thread's CPU time, not wall time: the benchmark machines are
// shared, and a thread that is descheduled should not look slow. (Cache and
// memory-bandwidth contention from other processes still show.)
#pragma once

#include <chrono>
#include <ctime>

namespace conveyor::bench {

struct thread_cpu_clock {
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<thread_cpu_clock, duration>;
  static time_point now() noexcept {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return time_point(std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec));
  }
};

}  // namespace conveyor::bench
