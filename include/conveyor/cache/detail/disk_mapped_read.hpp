// conveyor/cache/detail/disk_mapped_read.hpp: the disk tier's read path
// through read-only mappings of its segment files, and the SIGBUS guard that
// makes it safe.
//
// Why mmap: on the benchmark VM a pread of 8 KiB costs about 9 us, a memcpy
// of the same bytes from a mapping of the (page-cached) file well under 1 us;
// the disk tier's hit path is that read (bench/cache/disk_tier.cpp).
//
// Why a guard: a mapped page whose file was truncated (by another process,
// or by a failing disk: an I/O error on page-in) raises SIGBUS when touched,
// and SIGBUS kills the process, where pread would have returned a short read.
// So every read from a mapping goes through `guarded_copy`, which copies the
// bytes into memory the caller owns:
//   * A process-wide SIGBUS handler, installed when a tier first maps a file
//     (and installed again if someone replaced it since), remembers the
//     handler it replaced. For a fault of the calling thread inside the range
//     that thread is copying in `guarded_copy`, it jumps back (siglongjmp)
//     and `guarded_copy` returns `fault`: a counted failure and a miss.
//     Anything else (another address, another thread, a SIGBUS sent with
//     kill) goes to the replaced handler, or, when that was the default,
//     kills the process as SIGBUS would have.
//   * Only `memcpy` runs between the jump point and the fault: no lock, no
//     allocation, no destructor is skipped by the jump.
//   * Callers check the copy (the record checksum) and show only the copy:
//     bytes that change in the file after the check are never seen.
//   * The handler finds the thread's guarded range in a fixed table of slots
//     by kernel thread id (no thread_local in the handler: TLS of a shared
//     library may allocate on first use). A thread claims a slot on its
//     first guarded copy and frees it when it exits; when all slots are
//     taken the copy answers `unguarded` and the caller uses pread.
#pragma once

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <csetjmp>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <utility>

namespace conveyor::detail::disk_format {

/// A read-only shared mapping of [0, length) of a file (length may pass the
/// file's end: the tier maps a segment it appends to at its full size and
/// reads only what it has written).
class file_mapping {
 public:
  file_mapping() = default;
  /// Maps `length` bytes of `fd`; `valid()` is false when mmap refused.
  file_mapping(int fd, std::size_t length) noexcept {
    if (length == 0) return;
    void* at = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED) return;
    base_ = static_cast<const std::byte*>(at);
    length_ = length;
  }
  file_mapping(file_mapping&& other) noexcept
      : base_(std::exchange(other.base_, nullptr)), length_(std::exchange(other.length_, 0)) {}
  file_mapping& operator=(file_mapping&& other) noexcept {
    if (this != &other) {
      reset();
      base_ = std::exchange(other.base_, nullptr);
      length_ = std::exchange(other.length_, 0);
    }
    return *this;
  }
  file_mapping(const file_mapping&) = delete;
  file_mapping& operator=(const file_mapping&) = delete;
  ~file_mapping() { reset(); }

  void reset() noexcept {
    if (base_ != nullptr) ::munmap(const_cast<std::byte*>(base_), length_);
    base_ = nullptr;
    length_ = 0;
  }
  [[nodiscard]] bool valid() const noexcept { return base_ != nullptr; }
  /// Whether [offset, offset + size) lies inside the mapping.
  [[nodiscard]] bool covers(std::uint64_t offset, std::uint64_t size) const noexcept {
    return base_ != nullptr && offset <= length_ && size <= length_ - offset;
  }
  [[nodiscard]] const std::byte* data() const noexcept { return base_; }
  [[nodiscard]] std::size_t size() const noexcept { return length_; }

 private:
  const std::byte* base_ = nullptr;
  std::size_t length_ = 0;
};

namespace sigbus {

inline constexpr std::size_t slot_count = 256;

// One thread's guarded copy. `owner` is the kernel thread id of the thread
// that claimed the slot (0: free); only that thread writes the other fields,
// and only its own signal handler reads them.
struct slot {
  std::atomic<long> owner{0};
  sigjmp_buf* jump = nullptr;
  const std::byte* volatile begin = nullptr;
  const std::byte* volatile end = nullptr;
};

struct state {
  slot slots[slot_count];
  struct sigaction replaced {};  // the handler found when ours was installed
  std::mutex install_mutex;
  std::atomic<std::uint64_t> faults{0};  // guarded faults caught, process-wide
};

inline state& global() noexcept {
  static state instance;  // constant-initialised members: safe before main and in the handler
  return instance;
}

inline long this_thread_kernel_id() noexcept {
  return static_cast<long>(::syscall(SYS_gettid));
}

// Hands `signal` to the handler that was there before ours.
inline void chain(int signal, siginfo_t* info, void* context) noexcept {
  const struct sigaction& before = global().replaced;
  if ((before.sa_flags & SA_SIGINFO) != 0 && before.sa_sigaction != nullptr) {
    before.sa_sigaction(signal, info, context);
    return;
  }
  if (before.sa_handler == SIG_IGN && info != nullptr && info->si_code <= 0)
    return;  // a SIGBUS sent by kill/raise, ignored as before
  if (before.sa_handler == SIG_DFL || before.sa_handler == SIG_IGN) {
    // The default action (a fault cannot be ignored): restore it and raise
    // again; SA_NODEFER leaves SIGBUS unblocked, so it ends the process now.
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(signal, &fallback, nullptr);
    ::raise(signal);
    return;
  }
  before.sa_handler(signal);
}

inline void handler(int signal, siginfo_t* info, void* context) noexcept {
  if (info != nullptr && info->si_code > 0) {  // raised by the kernel for a fault
    const long me = this_thread_kernel_id();
    auto* address = static_cast<const std::byte*>(info->si_addr);
    for (auto& s : global().slots) {
      if (s.owner.load(std::memory_order_relaxed) != me) continue;
      if (s.jump != nullptr && address >= s.begin && address < s.end) {
        global().faults.fetch_add(1, std::memory_order_relaxed);
        // The jump does not restore the signal mask (saving it would cost a
        // system call per copy): put back the mask of the interrupted code,
        // since whoever delivered the signal may have blocked more than
        // SIGBUS for the handler (TSan blocks every signal).
        if (context != nullptr)
          ::pthread_sigmask(SIG_SETMASK, &static_cast<ucontext_t*>(context)->uc_sigmask, nullptr);
        siglongjmp(*s.jump, 1);
      }
      break;
    }
  }
  chain(signal, info, context);
}

/// Installs the guard's SIGBUS handler unless it is the current one. Returns
/// false when sigaction failed (the caller then reads with pread).
inline bool install() noexcept {
  state& g = global();
  std::lock_guard lock(g.install_mutex);
  struct sigaction current {};
  if (::sigaction(SIGBUS, nullptr, &current) != 0) return false;
  if ((current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == &handler) return true;
  g.replaced = current;
  struct sigaction ours {};
  ours.sa_sigaction = &handler;
  ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
  sigemptyset(&ours.sa_mask);
  return ::sigaction(SIGBUS, &ours, nullptr) == 0;
}

// The calling thread's slot, claimed on first use and freed at thread exit;
// null when every slot is taken.
struct thread_slot {
  slot* claimed = nullptr;
  long id = 0;
  thread_slot() noexcept {
    id = this_thread_kernel_id();
    for (auto& s : global().slots) {
      long expected = 0;
      if (s.owner.compare_exchange_strong(expected, id, std::memory_order_acq_rel)) {
        claimed = &s;
        break;
      }
    }
  }
  thread_slot(const thread_slot&) = delete;
  thread_slot& operator=(const thread_slot&) = delete;
  ~thread_slot() {
    if (claimed != nullptr) claimed->owner.store(0, std::memory_order_release);
  }
};

inline slot* my_slot() noexcept {
  thread_local thread_slot mine;
  return mine.claimed;
}

}  // namespace sigbus

/// What `guarded_copy` did.
enum class copy_result : std::uint8_t { copied, fault, unguarded };

/// Copies `size` bytes from `from` (inside a mapping) to `to`; a SIGBUS while
/// reading `from` ends the copy with `fault` (`to` then holds garbage). Needs
/// `sigbus::install()` to have succeeded; `unguarded` (nothing copied) when
/// this thread has no slot.
[[gnu::noinline]] inline copy_result guarded_copy(std::byte* to, const std::byte* from,
                                                  std::size_t size) noexcept {
  if (size == 0) return copy_result::copied;
  sigbus::slot* s = sigbus::my_slot();
  if (s == nullptr) return copy_result::unguarded;
  sigjmp_buf jump;
  if (sigsetjmp(jump, 0) != 0) {  // the handler restored the signal mask
    s->begin = nullptr;
    s->end = nullptr;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    s->jump = nullptr;
    return copy_result::fault;
  }
  s->jump = &jump;
  s->begin = from;
  s->end = from + size;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(to, from, size);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s->begin = nullptr;
  s->end = nullptr;
  s->jump = nullptr;
  return copy_result::copied;
}

/// Guarded faults caught in this process so far (all tiers).
inline std::uint64_t guarded_faults() noexcept {
  return sigbus::global().faults.load(std::memory_order_relaxed);
}

}  // namespace conveyor::detail::disk_format
