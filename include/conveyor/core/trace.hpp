// conveyor/core/trace.hpp: opt-in tracing; a timeline of every stage call,
// wait and queue handoff, written as Chrome trace event JSON that
// chrome://tracing, Perfetto (ui.perfetto.dev) and speedscope open.
//
// Turning it on: `pipe | with_trace("trace.json")` (or `with_trace(pipe,
// path)`) for one pipeline; `with_trace(file)` with a shared
// `std::make_shared<trace_file>(path)` for several pipelines in one file
// (train and validation); or the environment variable CONVEYOR_TRACE=path for
// every pipeline of the process that has no trace of its own. Columns:
// unchanged; it is a setting, not a stage, and copies of the pipeline share
// the file.
// What it writes: one track per thread (the consumer, each parallel worker,
// the prefetch thread, named by "thread_name" metadata events) and one
// complete ("X") event per stage call (the source's read, each map or decode,
// to_device's copies), per wait (a consumer starved by parallel or prefetch,
// a worker or prefetch thread blocked by a full window or queue), per
// prefetch handoff and per call for the next batch, with the epoch and batch
// number as args. ts and dur are microseconds since the file was opened.
// Allocates: while on, each thread's buffer grows by one 48 KiB block per 1024
// spans until the next flush frees it. Off (no with_trace, no
// CONVEYOR_TRACE): one relaxed atomic load and a branch per span, nothing
// else; defining CONVEYOR_NO_TRACE in every translation unit compiles the
// spans out altogether.
// Thread: spans are recorded on the thread that runs the call, into that
// thread's own buffer, without a lock; the file is written at the end of each
// epoch run (on the consumer's thread, in finish() or the run's destructor)
// and when the last owner of the trace_file lets it go.
// Errors: with_trace(path) and trace_file(path) throw io_error naming the path
// and the system's reason when the file cannot be created or written.
// CONVEYOR_TRACE naming such a path prints one line on stderr and leaves
// tracing off. A write failing later (disk full) prints one line on stderr,
// is kept in trace_file::error(), and stops the trace; the pipeline's batches
// are never affected by tracing.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/trace.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/core/trace_file.hpp"

namespace conveyor {

struct with_trace_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::shared_ptr<trace_file> file) const {
    if (!file) throw std::invalid_argument("with_trace: the trace file is null");
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    detail::pipeline_access::settings(p).trace = std::move(file);
    return p;
  }
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, const std::string& path) const {
    return (*this)(std::forward<Upstream>(upstream), std::make_shared<trace_file>(path));
  }
  auto operator()(std::shared_ptr<trace_file> file) const {
    if (!file) throw std::invalid_argument("with_trace: the trace file is null");
    return bound_closure<with_trace_fn, std::shared_ptr<trace_file>>(std::move(file));
  }
  /// Opens the file now, so a path that cannot be written fails here.
  auto operator()(const std::string& path) const {
    return (*this)(std::make_shared<trace_file>(path));
  }
};
/// with_trace(path) / with_trace(file): see the top of this header.
inline constexpr with_trace_fn with_trace{};

/// Names the calling thread's track in trace files it has not written to yet
/// ("trainer", "validation"). Unnamed threads that run an epoch loop are
/// called "consumer"; the library's own threads name themselves.
inline void trace_thread_name(std::string name) {
  detail::name_trace_thread(std::move(name));
}

}  // namespace conveyor
