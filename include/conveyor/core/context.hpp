// conveyor/core/context.hpp: what a stage is handed with each batch.
#pragma once

#include <memory>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/stats.hpp"

namespace conveyor {

/// Handed to a source's read and to every map stage, per batch. Cheap to copy.
struct stage_context {
  std::shared_ptr<buffer_pool> pool;  ///< where output columns are allocated
  error_policy policy = on_error::fail;
  stage_counters* counters = nullptr;  ///< this stage's counters
  batch_info info;

  /// Reports one bad record. Under `skip` it is counted and the call returns
  /// (the stage drops the record); otherwise the error is thrown.
  void reject(const data_error& bad) const {
    if (policy.action == error_policy::kind::skip) {
      if (counters != nullptr) counters->skipped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    throw bad;
  }
};

}  // namespace conveyor
