// conveyor/core/error.hpp: the exceptions conveyor throws and the error policy.
//
// Every error about data names where it happened: the file, the record index and
// the byte offset. Stages throw `data_error` (bad content) or `io_error` (the
// operating system said no); the pipeline wraps either in a `stage_error` that
// adds the stage name and rethrows it on the consumer's thread.
#pragma once

#include <cstdint>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace conveyor {

/// Marks a field of an error location as unknown.
inline constexpr std::uint64_t unknown_position = std::numeric_limits<std::uint64_t>::max();

/// Where in the input an error happened. Any part may be unknown.
struct error_location {
  std::string file;                          ///< path, or a description of the source
  std::uint64_t record = unknown_position;   ///< record index in the source
  std::uint64_t offset = unknown_position;   ///< byte offset in the file

  [[nodiscard]] std::string to_string() const {
    std::string out;
    if (!file.empty()) out += file;
    if (record != unknown_position) out += (out.empty() ? "" : ", ") + std::string("record ") + std::to_string(record);
    if (offset != unknown_position) out += (out.empty() ? "" : ", ") + std::string("byte offset ") + std::to_string(offset);
    return out;
  }
};

/// Base of every conveyor exception: a message plus the location it concerns.
class error : public std::runtime_error {
 public:
  error(std::string message, error_location where)
      : std::runtime_error(compose(message, where)), message_(std::move(message)), where_(std::move(where)) {}

  /// The message without the location.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] const error_location& where() const noexcept { return where_; }

 private:
  static std::string compose(const std::string& message, const error_location& where) {
    auto location = where.to_string();
    return location.empty() ? message : location + ": " + message;
  }
  std::string message_;
  error_location where_;
};

/// The data itself is wrong: a malformed record, a bad header, a wrong length.
/// Under the `skip` policy such records are counted and dropped.
class data_error : public error {
 public:
  data_error(std::string message, std::string file, std::uint64_t record = unknown_position,
             std::uint64_t offset = unknown_position)
      : error(std::move(message), error_location{std::move(file), record, offset}) {}
  data_error(std::string message, error_location where) : error(std::move(message), std::move(where)) {}
};

/// The operating system or a server failed: open, read, mmap, connect. Stages
/// that do I/O retry these under the `retry(n)` policy.
class io_error : public error {
 public:
  io_error(std::string message, std::string file, std::uint64_t record = unknown_position,
           std::uint64_t offset = unknown_position)
      : error(std::move(message), error_location{std::move(file), record, offset}) {}
  io_error(std::string message, error_location where) : error(std::move(message), std::move(where)) {}
};

/// An exception raised inside a pipeline stage, as the consumer sees it: the
/// stage's name, the epoch and batch, and the original error (its location is
/// kept; `cause()` rethrows the original).
class stage_error : public error {
 public:
  stage_error(std::string stage, std::uint64_t epoch, std::uint64_t batch, std::exception_ptr cause)
      : error(describe(stage, epoch, batch, cause), location_of(cause)), stage_(std::move(stage)),
        epoch_(epoch), batch_(batch), cause_(std::move(cause)) {}

  [[nodiscard]] const std::string& stage() const noexcept { return stage_; }
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] std::uint64_t batch() const noexcept { return batch_; }
  [[nodiscard]] const std::exception_ptr& cause() const noexcept { return cause_; }

 private:
  static std::string describe(const std::string& stage, std::uint64_t epoch, std::uint64_t batch,
                              const std::exception_ptr& cause) {
    std::string text = "stage '" + stage + "' failed in epoch " + std::to_string(epoch) + ", batch " +
                       std::to_string(batch) + ": ";
    try {
      if (cause) std::rethrow_exception(cause);
    } catch (const error& e) {
      text += e.message();
    } catch (const std::exception& e) {
      text += e.what();
    } catch (...) {
      text += "unknown exception";
    }
    return text;
  }
  static error_location location_of(const std::exception_ptr& cause) {
    try {
      if (cause) std::rethrow_exception(cause);
    } catch (const error& e) {
      return e.where();
    } catch (...) {
    }
    return {};
  }
  std::string stage_;
  std::uint64_t epoch_;
  std::uint64_t batch_;
  std::exception_ptr cause_;
};

/// What a pipeline does when a stage reports bad data or failed I/O.
struct error_policy {
  enum class kind : std::uint8_t { fail, skip, retry };
  kind action = kind::fail;
  unsigned attempts = 1;  ///< for retry: total attempts of an I/O read, at least 1

  friend constexpr bool operator==(const error_policy&, const error_policy&) = default;
};

namespace on_error {
/// Default: the first error ends the epoch with an exception on the consumer's thread.
inline constexpr error_policy fail{error_policy::kind::fail, 1};
/// Records that raise `data_error` are dropped and counted in stats; batches shrink.
inline constexpr error_policy skip{error_policy::kind::skip, 1};
/// `io_error` is retried up to `attempts` times in total, then fails.
constexpr error_policy retry(unsigned attempts) {
  return error_policy{error_policy::kind::retry, attempts < 1 ? 1u : attempts};
}
}  // namespace on_error

}  // namespace conveyor
