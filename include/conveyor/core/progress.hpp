// conveyor/core/progress.hpp: progress_line, one line of progress for a long
// epoch: rows done of the total, rows per second and the time left.
//
//   cy::progress_line progress(run.plan().records_per_rank(), std::cerr,
//                              {.label = "epoch 3", .overwrite = cy::stderr_is_terminal()});
//   for (auto& batch : run) { train_step(batch); progress.add(batch.rows()); }
//   progress.finish();
//
// prints, at most once per `interval` (default 500 ms),
//
//   epoch 3  123,456/1,000,000 rows (12.3%)  48.2k rows/s  ETA 0:18  loss 0.4121
//
// rewriting the line in place with '\r' on a terminal (overwrite = true), or
// one line per interval otherwise (a log file). The rate is the average since
// the line was made (construction to the latest add); the ETA is the rows left
// at that rate. A total of 0 means unknown: the line then has no percentage
// and no ETA. It is not a pipeline stage: the training loop calls add(rows)
// on its own thread. Allocates: one string per printed line. Not thread-safe
// (one loop, one line). Errors: none thrown by add() or finish() beyond those
// of the stream; rows beyond the total are counted and shown as 100%.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>
#include <string_view>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

namespace conveyor {

/// How a progress_line prints.
struct progress_options {
  /// Printed first ("epoch 3"); empty: nothing.
  std::string label{};
  /// At most one line per interval (finish() always prints).
  std::chrono::milliseconds interval{500};
  /// Rewrite the line in place ('\r', then erase to its end): for a
  /// terminal. false: one line per interval, each ended by a newline (`\n`).
  bool overwrite = true;
  /// false: print nothing at all (the counts are still kept).
  bool enabled = true;
};

/// Is standard error a terminal? (POSIX isatty; false elsewhere.)
inline bool stderr_is_terminal() noexcept {
#if __has_include(<unistd.h>)
  return ::isatty(STDERR_FILENO) != 0;
#else
  return false;
#endif
}

namespace detail {

// "1,234,567": digits grouped by threes, whatever the locale.
inline std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "950", "48.2k", "1.25M": three significant digits.
inline std::string rate_text(double per_second) {
  char text[32];
  if (per_second < 1e3)
    std::snprintf(text, sizeof text, "%.0f", per_second);
  else if (per_second < 1e6)
    std::snprintf(text, sizeof text, "%.*fk",
                  per_second < 1e4   ? 2
                  : per_second < 1e5 ? 1
                                     : 0,
                  per_second / 1e3);
  else
    std::snprintf(text, sizeof text, "%.*fM",
                  per_second < 1e7   ? 2
                  : per_second < 1e8 ? 1
                                     : 0,
                  per_second / 1e6);
  return text;
}

// "0:07", "12:34", "1:02:03".
inline std::string duration_text(double seconds) {
  auto s = static_cast<std::uint64_t>(std::llround(std::max(seconds, 0.0)));
  char text[32];
  if (s >= 3600)
    std::snprintf(
        text, sizeof text, "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
        static_cast<unsigned long long>(s / 60 % 60), static_cast<unsigned long long>(s % 60));
  else
    std::snprintf(text, sizeof text, "%llu:%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  return text;
}

}  // namespace detail

/// See the top of this header.
class progress_line {
 public:
  using clock = std::chrono::steady_clock;

  /// A line for `total_rows` rows (0: unknown), printed to `out`, starting now.
  explicit progress_line(std::uint64_t total_rows, std::ostream& out = std::cerr,
                         progress_options options = {})
      : progress_line(total_rows, out, std::move(options), clock::now()) {}
  /// The same, with the start time given (tests, or a loop timed elsewhere).
  progress_line(std::uint64_t total_rows, std::ostream& out, progress_options options,
                clock::time_point start)
      : total_(total_rows),
        out_(&out),
        options_(std::move(options)),
        start_(start),
        latest_(start) {}
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;
  /// Ends the line as finish() would, if anything was printed and finish() was not called.
  ~progress_line() {
    if (printed_ && !finished_) {
      try {
        finish(latest_);
      } catch (...) {  // a destructor must not throw; the stream's failure is the stream's
      }
    }
  }

  /// Counts `rows` more; prints the line if `interval` has passed since the
  /// last one. `note` is appended to the line ("loss 0.4121").
  void add(std::uint64_t rows, std::string_view note = {}) { add(rows, clock::now(), note); }
  void add(std::uint64_t rows, clock::time_point now, std::string_view note = {}) {
    done_ += rows;
    latest_ = now;
    if (!options_.enabled || finished_) return;
    if (printed_ && now - last_print_ < options_.interval) return;
    if (!printed_ && now - start_ < options_.interval) return;
    print(now, note);
  }

  /// Prints the final line (on a terminal: then erases it, leaving the
  /// cursor at the start of an empty line) and ends it. Later add()s count
  /// but print nothing.
  void finish(std::string_view note = {}) { finish(clock::now(), note); }
  void finish(clock::time_point now, std::string_view note = {}) {
    if (finished_) return;
    finished_ = true;
    latest_ = now;
    if (!options_.enabled) return;
    if (options_.overwrite) {
      if (printed_) *out_ << "\r\033[K" << std::flush;
    } else {
      *out_ << text(now, note) << '\n' << std::flush;
    }
  }

  /// The line as it would print at `now` (without '\r' or the newline `\n`).
  [[nodiscard]] std::string text(clock::time_point now, std::string_view note = {}) const {
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::string line = options_.label;
    if (!line.empty()) line += "  ";
    line += detail::grouped(done_);
    if (total_ != 0) {
      line += '/';
      line += detail::grouped(total_);
    }
    line += " rows";
    if (total_ != 0) {
      char percent[24];
      std::snprintf(
          percent, sizeof percent, " (%.1f%%)",
          std::min(100.0, 100.0 * static_cast<double>(done_) / static_cast<double>(total_)));
      line += percent;
    }
    line += "  ";
    line += elapsed > 0 ? detail::rate_text(rate) : std::string("-");
    line += " rows/s";
    if (total_ != 0) {
      line += "  ETA ";
      if (done_ >= total_)
        line += detail::duration_text(0);
      else if (rate > 0)
        line += detail::duration_text(static_cast<double>(total_ - done_) / rate);
      else
        line += '-';
    }
    if (!note.empty()) {
      line += "  ";
      line += note;
    }
    return line;
  }

  [[nodiscard]] std::uint64_t done() const noexcept { return done_; }
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }

 private:
  void print(clock::time_point now, std::string_view note) {
    printed_ = true;
    last_print_ = now;
    if (options_.overwrite)
      *out_ << '\r' << text(now, note) << "\033[K" << std::flush;
    else
      *out_ << text(now, note) << '\n' << std::flush;
  }

  std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::ostream* out_;
  progress_options options_;
  clock::time_point start_;
  clock::time_point latest_;
  clock::time_point last_print_{};
  bool printed_ = false;
  bool finished_ = false;
};

}  // namespace conveyor
