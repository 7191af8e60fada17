// conveyor/core/detail/trace.hpp: the spans every instrumented call site
// declares, thread naming, and the CONVEYOR_TRACE file. The buffers are in
// detail/trace_buffers.hpp (with why they are built that way), the file in
// the public trace_file.hpp.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "conveyor/core/detail/trace_buffers.hpp"
#include "conveyor/core/trace_file.hpp"

namespace conveyor {
namespace detail {

/// The span an instrumented call site declares: records [construction,
/// destruction) under the label in `slot` if tracing is on when it starts.
/// Off: one relaxed load and a branch.
class active_trace_span {
 public:
  active_trace_span(const std::atomic<const trace_label*>& slot, span_kind kind,
                    std::uint64_t epoch = 0, std::uint64_t batch = no_batch) noexcept
      : active_trace_span(slot.load(std::memory_order_relaxed), kind, epoch, batch) {}
  active_trace_span(const trace_label* label, span_kind kind, std::uint64_t epoch = 0,
                    std::uint64_t batch = no_batch) noexcept
      : label_(label) {
    if (label_ != nullptr) [[unlikely]] {
      kind_ = kind;
      epoch_ = epoch;
      batch_ = batch;
      begin_ns_ = trace_now_ns();
    }
  }
  active_trace_span(const active_trace_span&) = delete;
  active_trace_span& operator=(const active_trace_span&) = delete;
  ~active_trace_span() { end(); }

  /// Ends the span now (the destructor then does nothing).
  void end() noexcept {
    if (label_ != nullptr) [[unlikely]] {
      auto now = trace_now_ns();
      label_->file->record(trace_event{label_, begin_ns_, now - begin_ns_, epoch_, batch_, kind_});
      label_ = nullptr;
    }
  }

 private:
  const trace_label* label_;
  span_kind kind_{};
  std::uint64_t epoch_ = 0;
  std::uint64_t batch_ = 0;
  std::int64_t begin_ns_ = 0;
};

/// What a span is when CONVEYOR_NO_TRACE is defined: nothing.
class null_trace_span {
 public:
  template <class... Args>
  explicit null_trace_span(Args&&...) noexcept {}
  void end() noexcept {}
};

#ifdef CONVEYOR_NO_TRACE
using trace_span = null_trace_span;
#else
using trace_span = active_trace_span;
#endif

/// Names the calling thread in trace files it has not written to yet.
inline void name_trace_thread(std::string name) {
  this_thread_trace().name = std::move(name);
}
/// The same for the library's own threads ("parallel worker", 2): called as
/// each starts, traced or not, so it must not allocate. `role` must be a literal.
inline void name_trace_thread(const char* role, unsigned index = 0) noexcept {
  auto& state = this_thread_trace();
  state.role = role;
  state.role_index = index;
}

/// The consumer's thread is named "consumer" unless its owner named it.
inline void name_trace_thread_if_unnamed(const char* role) noexcept {
  auto& state = this_thread_trace();
  if (state.name.empty() && state.role == nullptr) state.role = role;
}

/// The file CONVEYOR_TRACE names, opened on first use and shared by every
/// pipeline of the process that has no trace of its own; null when the
/// variable is unset or empty. A path that cannot be written is reported once
/// on stderr and leaves tracing off (the pipelines run as without it).
inline std::shared_ptr<trace_file> trace_from_environment() {
  const char* path = std::getenv("CONVEYOR_TRACE");
  if (path == nullptr || *path == '\0') return nullptr;
  static std::mutex mutex;
  static std::string opened_path, failed_path;
  static std::shared_ptr<trace_file> opened;
  std::lock_guard lock(mutex);
  if (opened && opened_path == path) return opened;
  if (failed_path == path) return nullptr;
  try {
    opened = std::make_shared<trace_file>(path);
    opened_path = path;
    return opened;
  } catch (const std::exception& e) {
    failed_path = path;
    std::fprintf(stderr, "conveyor: CONVEYOR_TRACE=%s: %s; tracing stays off\n", path, e.what());
    return nullptr;
  }
}

}  // namespace detail
}  // namespace conveyor
