// Timing for benchmarks that compare loaders in one run: wall-clock and CPU
// time of the whole process (every thread, workers included) around a piece of
// work, and the machine's load average to print beside the figures. The
// benchmark machines are shared, so the per-CPU-second figure is the steadier
// one; the load average says how shared.
#pragma once

#include <chrono>
#include <ctime>
#include <fstream>
#include <string>

#include <sys/resource.h>

namespace conveyor::bench {

/// CPU seconds used so far by every thread of this process.
inline double process_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg prints them ("" elsewhere).
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

/// Page faults (minor: no I/O) taken so far by every thread of this process.
inline long process_minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/// Seconds of wall-clock time and of process CPU time, and the minor page
/// faults taken meanwhile (fresh memory being faulted in shows up here).
struct timing {
  double wall = 0, cpu = 0;
  long minor_faults = 0;
};

/// Runs work() once and returns how long it took, wall and CPU.
template <class Work>
timing measure(Work&& work) {
  const long faults_start = process_minor_faults();
  const double cpu_start = process_cpu_seconds();
  const auto wall_start = std::chrono::steady_clock::now();
  work();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count(),
          process_cpu_seconds() - cpu_start, process_minor_faults() - faults_start};
}

}  // namespace conveyor::bench
