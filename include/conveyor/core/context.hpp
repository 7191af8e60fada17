// conveyor/core/context.hpp: what a stage is handed with each batch.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/buffer_pool.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/stats.hpp"

namespace conveyor {

/// The records a stage rejected while making one batch (under the skip
/// policy); the pipeline drops them from the stage's output. Per call, never
/// shared between threads.
struct rejections {
  std::vector<std::uint64_t> records;  ///< by record index (data_error::where().record)
  std::vector<std::size_t> rows;       ///< by row of the stage's output batch

  [[nodiscard]] bool empty() const noexcept { return records.empty() && rows.empty(); }
  void clear() noexcept {
    records.clear();
    rows.clear();
  }
  /// Drops the rejected rows of `batch` that it still holds. O(rows x log
  /// rejected): a stage may reject most of a batch of bad records.
  template <class Batch>
  void apply(Batch& batch) const {
    if (empty()) return;
    std::vector<std::uint8_t> keep(batch.rows(), 1);
    bool any = false;
    for (std::size_t r : rows) {
      if (r < keep.size()) {
        keep[r] = 0;
        any = true;
      }
    }
    if (!records.empty()) {
      std::vector<std::uint64_t> sorted(records);
      std::sort(sorted.begin(), sorted.end());
      auto indices = batch.indices();
      for (std::size_t r = 0; r < keep.size(); ++r) {
        if (keep[r] != 0 && std::binary_search(sorted.begin(), sorted.end(), indices[r])) {
          keep[r] = 0;
          any = true;
        }
      }
    }
    if (any) batch.keep_rows(keep);
  }
};

/// Handed to a source's read and to every batch stage, per batch. Cheap to copy.
struct stage_context {
  /// Pageable memory for intermediate columns (index columns, text, scratch).
  std::shared_ptr<buffer_pool> pool;
  error_policy policy = on_error::fail;
  stage_counters* counters = nullptr;  ///< this stage's counters
  batch_info info;
  /// The sink's pool (with_pool, a pinned or tensor pool): columns the
  /// pipeline delivers are allocated from it by the stage that produces them.
  std::shared_ptr<buffer_pool> output_pool;
  /// Names of the columns the pipeline delivers (its last batch type's).
  std::span<const std::string_view> delivered;
  /// Where reject() records what it drops; set by the pipeline per call.
  rejections* rejected = nullptr;

  /// The pool to allocate column `name` from: the sink's pool when the
  /// pipeline delivers that column, else the pageable one. A stage writing a
  /// delivered column through it writes straight into the sink's memory.
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool_for(std::string_view name) const noexcept {
    if (output_pool && std::find(delivered.begin(), delivered.end(), name) != delivered.end()) return output_pool;
    return pool;
  }

  /// Reports one bad record (named by bad.where().record). Under `skip` it
  /// is counted, the call returns, and the pipeline drops that record from
  /// this stage's output; otherwise the error is thrown.
  void reject(const data_error& bad) const {
    if (policy.action != error_policy::kind::skip) throw bad;
    if (counters != nullptr) counters->skipped.fetch_add(1, std::memory_order_relaxed);
    if (rejected != nullptr && bad.where().record != unknown_position)
      rejected->records.push_back(bad.where().record);
  }
  /// Reports that row `row` of this stage's output is bad: as reject(bad),
  /// dropping that row (for errors whose record index is unknown).
  void reject(const data_error& bad, std::size_t row) const {
    if (policy.action != error_policy::kind::skip) throw bad;
    if (counters != nullptr) counters->skipped.fetch_add(1, std::memory_order_relaxed);
    if (rejected != nullptr) rejected->rows.push_back(row);
  }
};

}  // namespace conveyor
