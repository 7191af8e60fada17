// conveyor/core/detail/trace.hpp: the machinery behind trace.hpp: the trace
// file, per-thread event buffers and the span every instrumented call site
// declares.
//
// Why it is built this way:
// - Tracing off must cost nothing measurable. A stage's counters hold an
//   atomic pointer to its trace label; a span loads it once (relaxed) and does
//   nothing else when it is null: no clock read, no allocation, no store.
// - Tracing on must not serialize the threads it watches. Each thread appends
//   to a buffer of its own (a chain of fixed blocks, single writer); a block's
//   count is published with a release store and read by the flusher with an
//   acquire load, so the writer never takes a lock per event. Only the first
//   event of a thread in a file (a cache miss) takes the file's mutex.
// - Flushing happens at the end of each epoch run and when the file closes,
//   on the thread that calls it, while other pipelines sharing the file may go
//   on writing: the flusher reads only what a block's count published and
//   frees only blocks the writer has left.
// - The file is valid JSON after every flush: the closing "]}" is written
//   after the events and overwritten by the next flush.
// - Threads are per epoch run (parallel's workers, prefetch's thread). A thread
//   that exits retires its buffer, and the next thread with the same name
//   takes it over, so ten epochs show two worker tracks, not twenty.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include "conveyor/core/detail/json.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

class trace_file;

namespace detail {

/// What a span measured: a stage's own work, or one of the waits around it.
enum class span_kind : std::uint8_t {
  call,             ///< the stage ran (a source's read, a map, a copy issued)
  wait_upstream,    ///< the stage's consumer waited for its output (starved)
  wait_downstream,  ///< the stage waited for room downstream (blocked)
  handoff,          ///< the stage handed a batch to the next thread's queue
  next,             ///< the consumer's call for the next batch
};

inline constexpr std::uint64_t no_batch = ~std::uint64_t{0};

/// A name spans are recorded under, interned per trace file (stable address).
struct trace_label {
  trace_file* file;
  std::string name;
};

struct trace_event {
  const trace_label* label;
  std::int64_t begin_ns;
  std::int64_t duration_ns;
  std::uint64_t epoch;
  std::uint64_t batch;
  span_kind kind;
};

inline std::int64_t trace_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// One thread's events in one file: a chain of blocks, one writer (the
/// thread that owns it), one reader (the flusher, under the file's mutex).
class thread_buffer {
 public:
  thread_buffer(std::uint32_t tid, std::string role, std::string name)
      : tid_(tid), role_(std::move(role)), name_(std::move(name)) {}
  thread_buffer(const thread_buffer&) = delete;
  thread_buffer& operator=(const thread_buffer&) = delete;
  ~thread_buffer() {
    for (block* b = head_; b != nullptr;)
      delete std::exchange(b, b->next.load(std::memory_order_relaxed));
  }

  /// Writer only. Allocates a block every `block::capacity` events; false
  /// when that allocation failed (the event is dropped).
  bool push(const trace_event& event) noexcept {
    auto n = tail_->count.load(std::memory_order_relaxed);
    if (n == block::capacity) {
      auto* fresh = new (std::nothrow) block;
      if (fresh == nullptr) return false;
      tail_->next.store(fresh, std::memory_order_release);
      tail_ = fresh;
      n = 0;
    }
    tail_->events[n] = event;
    tail_->count.store(n + 1, std::memory_order_release);
    last_end_ns = std::max(last_end_ns, event.begin_ns + event.duration_ns);
    return true;
  }

  /// Reader only: calls emit(event) for every event published since the
  /// last drain, and frees the blocks the writer has left.
  template <class Emit>
  void drain(Emit&& emit) {
    for (;;) {
      auto n = head_->count.load(std::memory_order_acquire);
      for (; read_ < n; ++read_) emit(head_->events[read_]);
      if (n < block::capacity) return;
      block* next = head_->next.load(std::memory_order_acquire);
      if (next == nullptr) return;
      delete std::exchange(head_, next);
      read_ = 0;
    }
  }

  [[nodiscard]] std::uint32_t tid() const noexcept { return tid_; }
  [[nodiscard]] const std::string& role() const noexcept {
    return role_;
  }  ///< as the thread named itself
  [[nodiscard]] const std::string& name() const noexcept {
    return name_;
  }  ///< role, numbered if shared

  // Owned by the file's registry (under its mutex), except `retired`.
  std::thread::id owner;
  std::atomic<bool> retired{false};  ///< its thread exited; another may take it over
  std::int64_t last_end_ns = 0;      ///< writer's: when its latest span ended
  bool named = false;                ///< its thread_name event has been written

 private:
  struct block {
    static constexpr std::size_t capacity = 1024;
    std::atomic<std::size_t> count{0};
    std::atomic<block*> next{nullptr};
    trace_event events[capacity];
  };

  std::uint32_t tid_;
  std::string role_;
  std::string name_;
  block* head_ = new block;  // reader's end
  block* tail_ = head_;      // writer's end
  std::size_t read_ = 0;     // reader's position in head_
};

/// A thread's view of tracing: its name, and the buffers it writes in the
/// files it traced into last (a small cache, so that an event finds its
/// buffer without a lock). Destroyed when the thread exits: retires them.
struct thread_trace_state {
  struct entry {
    std::uint64_t file_id = 0;
    std::shared_ptr<thread_buffer> buffer;
  };
  std::string name;            ///< set by the user (trace_thread_name)
  const char* role = nullptr;  ///< set by the library's threads, without allocating
  unsigned role_index = 0;     ///< 0: none
  std::array<entry, 4> entries;
  std::size_t next_slot = 0;

  thread_trace_state() = default;
  thread_trace_state(const thread_trace_state&) = delete;
  thread_trace_state& operator=(const thread_trace_state&) = delete;
  ~thread_trace_state() {
    for (auto& e : entries)
      if (e.buffer) e.buffer->retired.store(true, std::memory_order_release);
  }
};

inline thread_trace_state& this_thread_trace() {
  thread_local thread_trace_state state;
  return state;
}

inline std::uint64_t next_trace_file_id() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

inline std::uint64_t trace_process_id() noexcept {
#if __has_include(<unistd.h>)
  return static_cast<std::uint64_t>(::getpid());
#else
  return 1;
#endif
}

}  // namespace detail

/// A Chrome trace event / Perfetto JSON file that pipelines write spans to
/// (see trace.hpp and docs/observability.md). Thread-safe. Opening
/// truncates the file and writes its header; each flush() appends the spans
/// recorded since, and leaves a complete JSON document behind it. The
/// destructor flushes and closes.
class trace_file {
 public:
  /// Opens `path` for writing. Throws io_error naming the path and the
  /// system's reason when it cannot be created or written.
  explicit trace_file(std::string path)
      : path_(std::move(path)),
        id_(detail::next_trace_file_id()),
        origin_ns_(detail::trace_now_ns()),
        pid_(detail::trace_process_id()) {
    out_ = std::fopen(path_.c_str(), "wb");
    if (out_ == nullptr) throw io_error(reason("cannot open the trace file for writing"), path_);
    std::string process;
    append_metadata(process, 0, "process_name", "conveyor");
    std::string header = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[" + process.substr(1);
    if (std::fwrite(header.data(), 1, header.size(), out_) != header.size() || !write_closing()) {
      std::string message = reason("cannot write the trace file");
      std::fclose(out_);
      out_ = nullptr;
      throw io_error(std::move(message), path_);
    }
  }
  trace_file(const trace_file&) = delete;
  trace_file& operator=(const trace_file&) = delete;
  ~trace_file() {
    flush();
    std::lock_guard lock(write_mutex_);
    if (out_ != nullptr) std::fclose(out_);
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// Writes every span recorded so far (by any thread) to the file. Never
  /// throws: a failed write (disk full) is kept in error(), reported once on
  /// stderr, and turns the file off; the pipeline's results are unaffected.
  void flush() noexcept {
    std::lock_guard lock(write_mutex_);
    if (out_ == nullptr) return;
    std::vector<std::shared_ptr<detail::thread_buffer>> buffers;
    try {
      {
        std::lock_guard registry(registry_mutex_);
        buffers = buffers_;
      }
      if (!error_.empty()) {  // the file is off: empty the buffers so they do not grow
        for (auto& buffer : buffers)
          buffer->drain([&](const detail::trace_event&) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
          });
        return;
      }
      std::string text;
      bool ok = true;
      auto spill = [&] {
        ok = ok && std::fwrite(text.data(), 1, text.size(), out_) == text.size();
        text.clear();
      };
      if (std::fseek(out_, closing_at_, SEEK_SET) != 0) ok = false;
      for (auto& buffer : buffers) {
        if (!buffer->named) {
          append_metadata(text, buffer->tid(), "thread_name", buffer->name());
          append_sort_index(text, buffer->tid(), buffer->role());
          buffer->named = true;
        }
        buffer->drain([&](const detail::trace_event& event) {
          append_event(text, buffer->tid(), event);
          if (text.size() > (1u << 16)) spill();
        });
      }
      spill();
      if (!ok || !write_closing()) fail(reason("cannot write the trace file"));
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

  /// Spans written to the file so far.
  [[nodiscard]] std::uint64_t events_written() const noexcept {
    return written_.load(std::memory_order_relaxed);
  }
  /// Spans lost: a buffer could not grow (out of memory), or the file had failed.
  [[nodiscard]] std::uint64_t events_dropped() const noexcept {
    return dropped_.load(std::memory_order_relaxed);
  }
  /// Why the file stopped being written; empty while all is well.
  [[nodiscard]] std::string error() const {
    std::lock_guard lock(write_mutex_);
    return error_;
  }

  /// The label spans of stage `name` are recorded under (interned).
  const detail::trace_label* label(std::string_view name) {
    std::lock_guard lock(registry_mutex_);
    for (const auto& l : labels_)
      if (l->name == name) return l.get();
    labels_.push_back(
        std::make_unique<detail::trace_label>(detail::trace_label{this, std::string(name)}));
    return labels_.back().get();
  }

  /// Appends one span to the calling thread's buffer. Never throws, never
  /// blocks except on the thread's first span in this file.
  void record(const detail::trace_event& event) noexcept {
    auto& state = detail::this_thread_trace();
    for (auto& entry : state.entries) {
      if (entry.file_id == id_) {
        if (!entry.buffer->push(event)) dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    try {
      auto buffer =
          attach(event.begin_ns,
                 state.name.empty() && state.role != nullptr
                     ? std::string(state.role) +
                           (state.role_index != 0 ? " " + std::to_string(state.role_index) : "")
                     : state.name);
      auto& slot = state.entries[state.next_slot++ % state.entries.size()];
      slot = {id_, buffer};
      if (!buffer->push(event)) dropped_.fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  // The calling thread's buffer: its own, a retired one of the same name, or a
  // new one. (A thread evicted from its own cache finds its buffer again by
  // owner.) A thread attaches when its first span ends, so a retired track is
  // taken over only if its last span ended before this one began: spans on a
  // track must not overlap.
  std::shared_ptr<detail::thread_buffer> attach(std::int64_t first_begin_ns,
                                                const std::string& thread_name) {
    std::lock_guard lock(registry_mutex_);
    auto me = std::this_thread::get_id();
    const std::string role = thread_name.empty() ? "thread" : thread_name;
    for (auto& b : buffers_)
      if (b->owner == me && b->role() == role && !b->retired.load(std::memory_order_acquire))
        return b;
    std::size_t same_role = 0;
    for (auto& b : buffers_) {
      if (b->role() != role) continue;
      ++same_role;
      if (b->retired.load(std::memory_order_acquire) && b->last_end_ns <= first_begin_ns) {
        b->retired.store(false, std::memory_order_relaxed);
        b->owner = me;
        return b;
      }
    }
    std::string name = role;
    if (same_role > 0 || thread_name.empty()) name += " " + std::to_string(same_role + 1);
    auto b = std::make_shared<detail::thread_buffer>(
        static_cast<std::uint32_t>(buffers_.size() + 1), role, name);
    b->owner = me;
    buffers_.push_back(b);
    return b;
  }

  std::string reason(std::string_view what) const {
    int code = errno;
    return std::string(what) + " (" + (code != 0 ? std::strerror(code) : "unknown error") + ")";
  }

  void fail(std::string message) noexcept {
    try {
      error_ = std::move(message);
      std::fprintf(stderr, "conveyor: trace file %s: %s; tracing into it stops\n", path_.c_str(),
                   error_.c_str());
    } catch (...) {
      error_ = "error";
    }
  }

  // Writes the document's end and remembers where the next flush overwrites it.
  bool write_closing() {
    static constexpr std::string_view closing = "\n]}\n";
    long at = std::ftell(out_);
    if (at < 0) return false;
    if (std::fwrite(closing.data(), 1, closing.size(), out_) != closing.size()) return false;
    if (std::fflush(out_) != 0) return false;
    closing_at_ = at;
    return true;
  }

  void append_metadata(std::string& text, std::uint32_t tid, std::string_view what,
                       std::string_view name) const {
    text += ",\n{\"ph\":\"M\",\"name\":\"";
    text += what;
    text += "\",\"pid\":";
    detail::append_json_number(text, pid_);
    text += ",\"tid\":";
    detail::append_json_number(text, std::uint64_t{tid});
    text += ",\"args\":{\"name\":";
    detail::append_json_string(text, name);
    text += "}}";
  }

  // Viewers order tracks by this: the loops that consume batches on top, then
  // prefetch threads, then parallel workers, then threads nobody named.
  void append_sort_index(std::string& text, std::uint32_t tid, std::string_view role) const {
    std::uint64_t index = role == "prefetch"                    ? 1
                          : role.starts_with("parallel worker") ? 2
                          : role == "thread"                    ? 3
                                                                : 0;
    text += ",\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":";
    detail::append_json_number(text, pid_);
    text += ",\"tid\":";
    detail::append_json_number(text, std::uint64_t{tid});
    text += ",\"args\":{\"sort_index\":";
    detail::append_json_number(text, index);
    text += "}}";
  }

  void append_event(std::string& text, std::uint32_t tid, const detail::trace_event& event) {
    using detail::span_kind;
    static constexpr std::string_view suffix[] = {"", ": waiting for upstream",
                                                  ": waiting for room downstream", ": handoff", ""};
    static constexpr std::string_view category[] = {"stage", "wait", "wait", "handoff", "consumer"};
    auto kind = static_cast<std::size_t>(event.kind);
    text += ",\n{\"name\":";
    detail::append_json_string(text, event.label->name);
    text.pop_back();  // the closing quote: the suffix goes inside (it needs no escaping)
    text += suffix[kind];
    text += '"';
    text += ",\"cat\":\"";
    text += category[kind];
    text += "\",\"ph\":\"X\",\"ts\":";
    detail::append_json_microseconds(text, event.begin_ns - origin_ns_);
    text += ",\"dur\":";
    detail::append_json_microseconds(text, event.duration_ns);
    text += ",\"pid\":";
    detail::append_json_number(text, pid_);
    text += ",\"tid\":";
    detail::append_json_number(text, std::uint64_t{tid});
    if (event.batch != detail::no_batch) {
      text += ",\"args\":{\"epoch\":";
      detail::append_json_number(text, event.epoch);
      text += ",\"batch\":";
      detail::append_json_number(text, event.batch);
      text += '}';
    }
    text += '}';
    written_.fetch_add(1, std::memory_order_relaxed);
  }

  std::string path_;
  std::uint64_t id_;
  std::int64_t origin_ns_;
  std::uint64_t pid_;
  std::FILE* out_ = nullptr;
  long closing_at_ = 0;
  mutable std::mutex write_mutex_;  // the FILE, error_, the readers' ends of the buffers
  std::mutex registry_mutex_;       // buffers_, labels_
  std::vector<std::shared_ptr<detail::thread_buffer>> buffers_;
  std::vector<std::unique_ptr<detail::trace_label>> labels_;
  std::string error_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

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
