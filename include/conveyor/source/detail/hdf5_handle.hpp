// conveyor/source/detail/hdf5_handle.hpp: the process-wide HDF5 lock, quiet
// error handling, and owning wrappers for HDF5 identifiers.
//
// A thread-safe HDF5 build serializes its API with its own global lock, so we
// add nothing there. A build without it must never be entered by two threads
// at once, from any code in the process: every HDF5 call conveyor makes goes
// through `hdf5_session`, which then holds one recursive mutex (recursive
// because a session may close identifiers, which locks again).
#pragma once

#include <hdf5.h>

#include <atomic>
#include <mutex>
#include <string>
#include <utility>

namespace conveyor::detail {

inline bool hdf5_library_is_threadsafe() {
  static const bool threadsafe = [] {
    hbool_t flag = 0;
    return H5is_library_threadsafe(&flag) >= 0 && flag > 0;
  }();
  return threadsafe;
}

inline std::recursive_mutex& hdf5_global_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

inline std::atomic<bool>& hdf5_force_serialization() {
  static std::atomic<bool> force{false};
  return force;
}

// Holds the global lock when HDF5 is not thread-safe (or serialization is forced).
class hdf5_lock {
 public:
  hdf5_lock() {
    if (!hdf5_library_is_threadsafe() || hdf5_force_serialization().load(std::memory_order_relaxed))
      lock_ = std::unique_lock<std::recursive_mutex>(hdf5_global_mutex());
  }

 private:
  std::unique_lock<std::recursive_mutex> lock_;
};

// A locked stretch of HDF5 calls that does not print HDF5's error stack to
// stderr: failures become exceptions carrying the stack's text instead. The
// automatic printer is restored on exit (it is per thread in thread-safe builds,
// and guarded by the lock otherwise).
class hdf5_session {
 public:
  hdf5_session() {
    H5Eget_auto2(H5E_DEFAULT, &saved_function_, &saved_data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  hdf5_session(const hdf5_session&) = delete;
  hdf5_session& operator=(const hdf5_session&) = delete;
  ~hdf5_session() { H5Eset_auto2(H5E_DEFAULT, saved_function_, saved_data_); }

  // The descriptions on the current error stack, outermost first.
  static std::string error_stack_text() {
    std::string text;
    H5Ewalk2(
        H5E_DEFAULT, H5E_WALK_DOWNWARD,
        [](unsigned, const H5E_error2_t* entry, void* out) -> herr_t {
          auto& joined = *static_cast<std::string*>(out);
          if (entry->desc != nullptr && *entry->desc != '\0') {
            if (!joined.empty()) joined += "; ";
            joined += entry->desc;
          }
          return 0;
        },
        &text);
    H5Eclear2(H5E_DEFAULT);
    return text.empty() ? std::string("HDF5 call failed") : text;
  }

 private:
  hdf5_lock lock_;
  H5E_auto2_t saved_function_ = nullptr;
  void* saved_data_ = nullptr;
};

// Owns one identifier and closes it with the matching H5*close function.
class hdf5_id {
 public:
  using closer = herr_t (*)(hid_t);
  hdf5_id() = default;
  hdf5_id(hid_t id, closer close) : id_(id), close_(close) {}
  hdf5_id(hdf5_id&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), close_(other.close_) {}
  hdf5_id& operator=(hdf5_id&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      close_ = other.close_;
    }
    return *this;
  }
  hdf5_id(const hdf5_id&) = delete;
  hdf5_id& operator=(const hdf5_id&) = delete;
  ~hdf5_id() { reset(); }

  void reset() noexcept {
    if (id_ >= 0 && close_ != nullptr) {
      hdf5_lock lock;
      close_(id_);
    }
    id_ = H5I_INVALID_HID;
  }
  [[nodiscard]] hid_t get() const noexcept { return id_; }
  [[nodiscard]] bool valid() const noexcept { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  closer close_ = nullptr;
};

}  // namespace conveyor::detail
