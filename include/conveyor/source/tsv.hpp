// conveyor/source/tsv.hpp: delimited text files as pipeline sources.
//
// `tsv_file(path)` and `csv_file(path)` open a delimited_file (memory-mapped,
// record index built once and reused, Python csv quoting) and read whole
// batches of records into a `text<"record">` column: per row, the fields as
// string_views into the mapping (zero-copy), plus each row's record index and
// byte offset for error messages. The column's schema (the file's path and
// header) is published when an epoch starts, so decoders (decode.hpp) bind
// field names once per epoch.
//
// Thread: read() is const and runs on any thread (parallel workers included).
// Allocates: nothing per batch in steady state: the field tables are recycled
// between batches (a free list per source, one table per batch in flight).
// Errors: a malformed record (field count, unterminated quote) is a data_error
// naming file, record and byte offset; under on_error::skip it is dropped and
// counted. Opening a missing file throws io_error.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/text.hpp"
#include "conveyor/source/delimited.hpp"
#include "conveyor/source/field_table.hpp"

namespace conveyor {

namespace detail {

/// A field_table whose views a text column holds; recycled by its source.
struct delimited_storage final : text_storage {
  field_table table;
  std::shared_ptr<const delimited_file> file;           ///< the mapping the views point into
  std::shared_ptr<struct delimited_storage_pool> home;  ///< set while a column holds it
  void recycle() noexcept override;
};

/// The free list of a delimited source's storages. Thread-safe.
struct delimited_storage_pool : std::enable_shared_from_this<delimited_storage_pool> {
  std::mutex mutex;
  std::vector<std::unique_ptr<delimited_storage>> free;

  text_column::storage_handle acquire() {
    std::unique_ptr<delimited_storage> storage;
    {
      std::lock_guard lock(mutex);
      if (!free.empty()) {
        storage = std::move(free.back());
        free.pop_back();
      }
    }
    if (!storage) storage = std::make_unique<delimited_storage>();
    storage->home = shared_from_this();
    return text_column::storage_handle(storage.release());
  }
  void give_back(delimited_storage* storage) noexcept {
    std::unique_ptr<delimited_storage> owned(storage);
    auto home = std::move(owned->home);  // keeps this pool alive until the end of the call
    constexpr std::size_t max_free = 64;
    std::lock_guard lock(mutex);
    if (free.size() < max_free) {
      try {
        free.push_back(std::move(owned));
      } catch (...) {  // no room to remember it: let it go
      }
    }
  }
};

inline void delimited_storage::recycle() noexcept { home->give_back(this); }

}  // namespace detail

/// A delimited file as a record_source of `text<"record">` batches. Copies
/// share the open file.
class delimited_source {
 public:
  using batch_type = record_batch<text<"record">>;

  explicit delimited_source(std::shared_ptr<const delimited_file> file)
      : file_(std::move(file)), name_(std::filesystem::path(file_->path()).filename().string()),
        storages_(std::make_shared<detail::delimited_storage_pool>()) {
    auto schema = std::make_shared<text_schema>();
    schema->origin = file_->path();
    schema->fields.assign(file_->header().begin(), file_->header().end());
    schema->contents = file_->contents();
    schema_ = std::move(schema);
    fingerprint_ = compute_fingerprint();
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return file_->size(); }
  /// The file's name (without directories): the stage's label in stats.
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] const delimited_file& file() const noexcept { return *file_; }
  /// The schema of the "record" column: the file's path and header.
  [[nodiscard]] const std::shared_ptr<const text_schema>& schema() const noexcept { return schema_; }
  /// Published to the pipeline when an epoch starts (decoders bind to it).
  [[nodiscard]] std::vector<std::pair<std::string, std::shared_ptr<const text_schema>>> text_schemas() const {
    return {{"record", schema_}};
  }
  /// Path, size, modification time and sampled content: a changed file gets a new one.
  [[nodiscard]] std::uint64_t fingerprint() const noexcept { return fingerprint_; }

  batch_type read(std::span<const std::uint64_t> indices, const stage_context& ctx) const {
    auto handle = storages_->acquire();
    auto& storage = static_cast<detail::delimited_storage&>(*handle);
    auto& table = storage.table;
    storage.file = file_;
    file_->read(indices, table, ctx.policy);
    for (const auto& bad : table.skipped()) ctx.reject(bad);  // counts them (the policy is skip here)
    const std::size_t rows = table.rows();
    storage.columns = table.columns();
    table.hand_over(storage.cells, storage.record_indices, storage.byte_offsets);
    storage.rows = rows;
    batch_type out(ctx.pool, ctx.info,
                   rows == indices.size() ? indices : std::span<const std::uint64_t>(storage.record_indices.data(), rows));
    out.get<"record">() = text_column(std::move(handle), schema_);
    return out;
  }

 private:
  [[nodiscard]] std::uint64_t compute_fingerprint() const {
    auto whole = file_->contents();
    std::uint64_t h = detail::fnv1a(file_->path(), detail::salt::source);
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(file_->path(), ec);
    h = detail::combine(h, whole.size() ^ (ec ? 0 : static_cast<std::uint64_t>(mtime.time_since_epoch().count())));
    constexpr std::size_t sample = 4096;
    h = detail::hash_bytes(whole.data(), std::min(sample, whole.size()), h);
    if (whole.size() > sample) h = detail::hash_bytes(whole.data() + whole.size() - sample, sample, h);
    for (std::size_t k = 1; k < 16 && whole.size() > 2 * sample; ++k)
      h = detail::hash_bytes(whole.data() + whole.size() / 16 * k, 256, h);
    return h;
  }

  std::shared_ptr<const delimited_file> file_;
  std::string name_;
  std::shared_ptr<detail::delimited_storage_pool> storages_;
  std::shared_ptr<const text_schema> schema_;
  std::uint64_t fingerprint_ = 0;
};

/// tsv_file(path, options): a tab-separated file as a pipeline source.
inline delimited_source tsv_file(const std::filesystem::path& path, delimited_options options = delimited_options::tsv()) {
  return delimited_source(std::make_shared<const delimited_file>(path, std::move(options)));
}
/// csv_file(path, options): a comma-separated file as a pipeline source.
inline delimited_source csv_file(const std::filesystem::path& path, delimited_options options = delimited_options::csv()) {
  return delimited_source(std::make_shared<const delimited_file>(path, std::move(options)));
}

}  // namespace conveyor
