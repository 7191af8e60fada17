// conveyor/cache/detail/file_size_limit.hpp: how the disk tier writes past the
// process's file-size limit (RLIMIT_FSIZE, `ulimit -f`) without dying of it.
//
// Why: a write that would grow a file past RLIMIT_FSIZE fails with EFBIG *and*
// raises SIGXFSZ, whose default action ends the process with no message. A
// cache must treat that like a full disk (a counted, soft failure). Three
// layers, none of which changes the process's signal dispositions:
//   1. Before each write the tier compares the file's new end with the
//      current soft limit and does not write what would not fit (the normal
//      case: no signal is ever raised).
//   2. The write-behind thread is the tier's own: it blocks SIGXFSZ in its own
//      signal mask for its whole life, so a write that still crosses the
//      limit (lowered by another thread meanwhile) gets EFBIG and a pending
//      signal that dies with the thread.
//   3. A synchronous write on the caller's thread blocks SIGXFSZ in that
//      thread's mask only for the write; if the write failed with EFBIG the
//      pending SIGXFSZ it raised is taken with sigtimedwait before the mask
//      is restored. (A process-directed SIGXFSZ that another process sent at
//      that very moment would be taken with it: the one accepted imprecision.)
#pragma once

#include <pthread.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdint>
#include <ctime>

namespace conveyor::detail::disk_format {

/// The soft RLIMIT_FSIZE now, in bytes (UINT64_MAX: none, or unknown).
inline std::uint64_t file_size_limit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_FSIZE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

/// True when a file may grow to `end_offset` bytes under the soft RLIMIT_FSIZE.
inline bool within_file_size_limit(std::uint64_t end_offset) noexcept {
  return end_offset <= file_size_limit();
}

inline sigset_t file_size_signal_set() noexcept {
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGXFSZ);
  return only;
}

/// Blocks SIGXFSZ for the calling thread for good (the write-behind thread).
inline void block_file_size_signal_in_this_thread() noexcept {
  sigset_t only = file_size_signal_set();
  ::pthread_sigmask(SIG_BLOCK, &only, nullptr);
}

/// Blocks SIGXFSZ in the calling thread for one write. Call
/// `write_failed_with_efbig()` when the write failed with EFBIG: the signal it
/// raised is then taken before the thread's mask is restored.
class file_size_signal_guard {
 public:
  file_size_signal_guard() noexcept {
    sigset_t only = file_size_signal_set();
    ::pthread_sigmask(SIG_BLOCK, &only, &previous_);
  }
  file_size_signal_guard(const file_size_signal_guard&) = delete;
  file_size_signal_guard& operator=(const file_size_signal_guard&) = delete;
  ~file_size_signal_guard() {
    if (take_pending_ && sigismember(&previous_, SIGXFSZ) == 0) {
      sigset_t only = file_size_signal_set();
      sigset_t pending;
      sigemptyset(&pending);
      if (::sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ) == 1) {
        timespec no_wait{};
        ::sigtimedwait(&only, nullptr, &no_wait);
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  void write_failed_with_efbig() noexcept { take_pending_ = true; }

 private:
  sigset_t previous_{};
  bool take_pending_ = false;
};

}  // namespace conveyor::detail::disk_format
