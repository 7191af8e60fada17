// conveyor/core/trace_file.hpp: the file a pipeline's trace is written to,
// a Chrome trace event / Perfetto JSON document (see trace.hpp, which turns
// tracing on, and docs/observability.md).
//
// A header of its own because users name the class (several pipelines
// sharing one `std::make_shared<trace_file>(path)`) and pipeline.hpp needs it
// without trace.hpp's closures.
// Thread: every member may be called from any thread; spans are appended to
// per-thread buffers without a lock, flush() writes under the file's mutex.
// Errors: the constructor throws io_error naming the path and the system's
// reason; a later failed write is kept in error() and stops the file.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "conveyor/core/detail/json.hpp"
#include "conveyor/core/detail/trace_buffers.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor {

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

}  // namespace conveyor
