// conveyor/cache/cache_stage.hpp: cache(tier) keeps what the stages upstream
// of it produce, per record, in a cache tier, and serves later epochs from it.
//
// Call forms: `cache(pipe, tier)` and `pipe | cache(tier)`, where `tier` is a
// `std::shared_ptr<T>` to any `cache_tier` T (memory_tier, disk_tier, shm_tier,
// redis_tier, tiered<...>), or a movable tier by value (the stage then owns it
// through a shared_ptr); an optional `cache_options` names the stage.
// Placement: after batch(n), before parallel(n) and prefetch(n) (it wraps the
// batch function that they run), after the stages whose work it saves.
// Columns: unchanged; every column must be dense<...> or bytes<...>.
//
// Per batch: one lookup of keys {dataset fingerprint, chain fingerprint,
// record index} (`visit_values`: a memory tier shows its values in place,
// one lock per shard per batch; other tiers answer one `get_many`); each
// value is checked (type tag and lengths always; CRC32C unless the tier is
// an `in_process_tier`, whose bytes never left this process, or a
// `verifying_tier`, which checked them against its own checksum) and one that
// fails is a counted miss; a valid hit is copied once, straight into its row
// of the output columns. The upstream stages run once, for the missing
// records only, with the batch's batch_info; each of their rows is copied
// into its output row and written once into the tier's storage
// (`put_values`: straight into a memory tier's entries; for an
// `in_process_tier` without computing the CRC32C no hit would check). The output holds
// every row in the order of the batch's indices, whether it came from the
// tier or from upstream. A dense column whose values in a record are all
// exactly 0 or 1 of its dtype is stored as a bitmap and expanded on a hit
// (cache_options::pack_binary_columns, on by default; cached_batch.hpp).
// Records that upstream drops (skip policy) are absent, and not stored.
//
// Thread: whichever thread runs the batch function (a parallel(n) worker, or
// the consumer). Allocates: the output columns from the pipeline's pool (the
// sink's pool for delivered columns), per-thread scratch reused between
// batches, and for a tier that is not a memory tier one encode buffer per
// thread and its own get buffers. Errors: tier failures never fail the
// pipeline: tiers answer them as misses, and an exception out of a tier call
// is caught, counted (`tier_errors`) and treated the same way (the rows that
// call had produced are discarded); errors of the upstream stages propagate
// as they would without the cache. Early exit: nothing to stop.
// Stats: a "cache" row in pipeline.stats() (rows, busy time without upstream's
// time, latency), and hits/misses/invalid values in `cache_stats(pipe)`.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/cached_batch.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"

namespace conveyor {

/// Settings of a cache stage.
struct cache_options {
  /// The stage's row in pipeline.stats(); also its contribution to the chain
  /// fingerprint of stages after it.
  std::string name = "cache";
  /// Store a dense column as a bitmap, one bit per value, in a record whose
  /// values of that column are all exactly 0 or 1 of the column's dtype
  /// (float, double, float16, bfloat16, integer types, bool: bit patterns,
  /// so -0.0, NaN and everything else keep the column raw). Bit-exact either
  /// way; a hit expands the bitmap into the output column. Turn it off to
  /// skip the per-record scan when no column is ever binary (its cost is
  /// about one read of the column's bytes when it is; a non-binary column
  /// usually stops it within its first 8 to 32 values). Values written
  /// either way are read by every stage, whatever its setting.
  bool pack_binary_columns = true;
};

/// A snapshot of one cache stage's counters (summed over all epochs), plus
/// its tier's own stats.
struct cache_stage_stats {
  std::uint64_t hits = 0;        ///< records served from the tier
  std::uint64_t misses = 0;      ///< records the tier did not have
  std::uint64_t invalid = 0;     ///< values found but refused (tag, length or checksum), recomputed
  std::uint64_t stored = 0;      ///< records the tier accepted from put_many
  std::uint64_t not_stored = 0;  ///< records the tier refused (full, too large, failing)
  std::uint64_t tier_errors = 0;     ///< exceptions thrown by the tier, caught and served as misses
  std::uint64_t upstream_calls = 0;  ///< batches for which the upstream stages ran
  std::uint64_t bitmap_columns = 0;  ///< dense columns of records given to the tier, as bitmaps
  std::uint64_t raw_columns = 0;     ///< the same, as raw bytes (not binary, or packing off)
  tier_stats tier;                   ///< the tier's stats at the time of the snapshot

  /// hits / (hits + misses + invalid), or 0 before any lookup.
  [[nodiscard]] double hit_ratio() const noexcept {
    auto lookups = hits + misses + invalid;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }

  friend std::ostream& operator<<(std::ostream& out, const cache_stage_stats& s) {
    return out << "hits " << s.hits << ", misses " << s.misses << ", invalid " << s.invalid
               << ", stored " << s.stored << ", not stored " << s.not_stored << ", tier errors "
               << s.tier_errors << ", upstream calls " << s.upstream_calls << ", bitmap columns "
               << s.bitmap_columns << ", raw columns " << s.raw_columns << ", tier failures "
               << s.tier.failures;
  }
};

namespace detail {

/// Shared by the stage (in the pipeline) and every runtime node built from it.
struct cache_stage_counters {
  std::atomic<std::uint64_t> hits{0}, misses{0}, invalid{0}, stored{0}, not_stored{0},
      tier_errors{0}, upstream_calls{0}, bitmap_columns{0}, raw_columns{0};

  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    if (n != 0) counter.fetch_add(n, std::memory_order_relaxed);
  }
  [[nodiscard]] cache_stage_stats snapshot() const noexcept {
    cache_stage_stats s;
    s.hits = hits.load(std::memory_order_relaxed);
    s.misses = misses.load(std::memory_order_relaxed);
    s.invalid = invalid.load(std::memory_order_relaxed);
    s.stored = stored.load(std::memory_order_relaxed);
    s.not_stored = not_stored.load(std::memory_order_relaxed);
    s.tier_errors = tier_errors.load(std::memory_order_relaxed);
    s.upstream_calls = upstream_calls.load(std::memory_order_relaxed);
    s.bitmap_columns = bitmap_columns.load(std::memory_order_relaxed);
    s.raw_columns = raw_columns.load(std::memory_order_relaxed);
    return s;
  }
};

/// Per-thread buffers of cache_function::produce, kept between batches so a
/// steady state allocates only the output columns.
template <class Codec>
struct cache_scratch {
  std::vector<cache_key> keys;
  std::vector<std::uint8_t> from_hit;    // per batch row: served from the tier
  std::vector<std::uint64_t> missing;    // the records asked of upstream
  std::vector<std::size_t> missing_row;  // the batch row of each of them
  std::vector<std::size_t>
      fresh_row;                   // per batch row: its row in upstream's batch, or Codec::no_row
  std::vector<std::uint8_t> keep;  // per batch row: delivered (not dropped upstream)
  std::vector<cache_key> put_keys;
  std::vector<std::size_t> put_sizes;
  typename Codec::value_plan plan;
  typename Codec::hit_bytes hit_bytes;
};

/// The runtime node: a batch function that answers from the tier first.
template <batch_function Up, cache_tier Tier>
struct cache_function {
  using batch_type = typename Up::batch_type;
  using codec = cached_batch<batch_type>;
  using fields = typename codec::fields;
  using widths_type = std::array<std::uint64_t, codec::column_count>;
  // Read: bytes that never left this process, or that the tier itself
  // checked against its own checksum on a private copy (`verifying_tier`:
  // the disk tier's record CRC32C), are trusted past their header; the rest
  // have their row CRC32C verified. Write: the same tiers get them without a
  // CRC32C (marked so: row_codec.hpp, and a verifying read refuses the mark):
  // no hit of theirs checks it, and a verifying tier computes its own
  // checksum over the value (the disk tier on its writer thread, off the
  // fill's critical path); every other tier gets the row CRC32C.
  static constexpr row_checksum read_checksum =
      in_process_tier<Tier> || verifying_tier<Tier> ? row_checksum::trust : row_checksum::verify;
  static constexpr row_checksum write_checksum = read_checksum;

  Up up;
  std::shared_ptr<Tier> tier;
  std::shared_ptr<cache_stage_counters> cache_counters;
  stage_context ctx;
  std::string name;
  std::uint64_t dataset = 0;
  std::uint64_t chain = 0;
  bool pack_binary_columns = true;

  batch_type produce(std::span<const std::uint64_t> indices, batch_info info) const {
    return run_stage(name, info, [&] { return produce_batch(indices, info); });
  }

 private:
  // One batch: hits are copied straight from the tier's value into the output
  // columns (once, while the tier shows the value); the missing records are
  // asked of upstream in one call, each of their rows copied into the output
  // and written straight into the tier's storage (once each).
  batch_type produce_batch(std::span<const std::uint64_t> indices, batch_info info) const {
    auto begin = clock::now();
    std::chrono::nanoseconds upstream_time{0};
    thread_local cache_scratch<codec> scratch;
    auto& s = scratch;
    const std::size_t n = indices.size();

    batch_type out(ctx.pool, info, indices);
    widths_type widths{};
    bool have_columns = false;
    std::size_t accepted = 0;
    const std::size_t tier_hits = look_up(indices, out, widths, have_columns, accepted, s);

    s.missing.clear();
    s.missing_row.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (s.from_hit[i]) continue;
      s.missing.push_back(indices[i]);
      s.missing_row.push_back(i);
    }
    std::uint64_t invalid = tier_hits > accepted ? tier_hits - accepted : 0;
    const std::uint64_t absent =
        s.missing.size() - std::min<std::uint64_t>(invalid, s.missing.size());

    std::optional<batch_type> fresh;
    auto run_upstream = [&](std::span<const std::uint64_t> which) {
      auto started = clock::now();
      fresh.emplace(up.produce(which, info));
      upstream_time += clock::now() - started;
      cache_counters->upstream_calls.fetch_add(1, std::memory_order_relaxed);
    };
    if (!s.missing.empty()) run_upstream(s.missing);
    if (fresh && accepted > 0 && fresh->rows() > 0 && codec::dense_widths(*fresh) != widths) {
      // The stored rows disagree with what upstream makes now (a width that
      // the chain fingerprint cannot see): trust upstream, recompute them all.
      invalid += accepted;
      accepted = 0;
      run_upstream(indices);
    }
    cache_stage_counters::add(cache_counters->hits, accepted);
    cache_stage_counters::add(cache_counters->invalid, invalid);
    cache_stage_counters::add(cache_counters->misses, absent);
    if (fresh) store(*fresh, s);

    batch_type result;
    if (accepted == 0 && fresh) {
      result = std::move(*fresh);  // nothing from the tier: upstream's batch is the answer
    } else {
      merge(out, fresh ? &*fresh : nullptr, widths, have_columns, s);
      result = std::move(out);
    }
    auto busy =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - begin) - upstream_time;
    ctx.counters->add_batch(result.rows(), result.size_bytes(), busy);
    return result;
  }

  // Visits the tier's values of the batch's keys: each that parses (type tag,
  // lengths; CRC32C unless the tier is in-process or verifying) and agrees on dense widths
  // with the first accepted one is copied into row i of `out`. Returns the
  // tier's hit count; `accepted` counts the rows copied. A tier that throws
  // counts as a tier error and answers nothing (rows copied before the throw
  // are discarded with it).
  std::size_t look_up(std::span<const std::uint64_t> indices, batch_type& out, widths_type& widths,
                      bool& have_columns, std::size_t& accepted, cache_scratch<codec>& s) const {
    const std::size_t n = indices.size();
    s.keys.resize(n);
    for (std::size_t i = 0; i < n; ++i) s.keys[i] = cache_key{dataset, chain, indices[i]};
    s.from_hit.assign(n, 0);
    s.hit_bytes.reset(n);
    auto visit = [&](std::size_t i, std::span<const std::byte> value) {
      if (i >= n || s.from_hit[i]) return;  // a tier that shows a key twice or outside the batch
      fields parsed;
      if (codec::parse(value, parsed, read_checksum) != row_check::ok) return;
      const widths_type hit_widths = codec::dense_widths(parsed);
      if (!have_columns) {
        codec::allocate_dense(out, ctx, n, hit_widths);
        widths = hit_widths;
        have_columns = true;
      } else if (hit_widths != widths) {
        return;
      }
      codec::copy_hit(parsed, out, i, s.hit_bytes);
      s.from_hit[i] = 1;
      ++accepted;
    };
    try {
      return visit_values(*tier, std::span<const cache_key>(s.keys), visit);
    } catch (...) {
      cache_counters->tier_errors.fetch_add(1, std::memory_order_relaxed);
      s.from_hit.assign(n, 0);
      accepted = 0;
      return 0;
    }
  }

  void store(const batch_type& fresh, cache_scratch<codec>& s) const {
    const std::size_t rows = fresh.rows();
    if (rows == 0) return;
    s.put_keys.resize(rows);
    s.put_sizes.resize(rows);
    // Scan first (which columns are bitmaps decides each value's size), then
    // write each value once into the tier's storage.
    codec::plan_batch(fresh, pack_binary_columns, s.plan);
    for (std::size_t r = 0; r < rows; ++r) {
      s.put_keys[r] = cache_key{dataset, chain, fresh.indices()[r]};
      s.put_sizes[r] = codec::plan_value(fresh, r, s.plan);
    }
    cache_stage_counters::add(cache_counters->bitmap_columns, s.plan.bitmap_columns);
    cache_stage_counters::add(cache_counters->raw_columns, s.plan.raw_columns);
    std::size_t stored = 0;
    try {
      stored = put_values(*tier, std::span<const cache_key>(s.put_keys),
                          std::span<const std::size_t>(s.put_sizes),
                          [&](std::size_t r, std::span<std::byte> destination) {
                            codec::write_value(fresh, r, s.plan, destination, write_checksum);
                          });
    } catch (...) {
      cache_counters->tier_errors.fetch_add(1, std::memory_order_relaxed);
    }
    cache_stage_counters::add(cache_counters->stored, stored);
    cache_stage_counters::add(cache_counters->not_stored, rows - std::min(stored, rows));
  }

  // Completes `out` (its dense columns hold the hits, if any): upstream's rows
  // go to the rows of their records, records upstream dropped (skip policy)
  // are removed, the bytes columns are built.
  void merge(batch_type& out, const batch_type* fresh, const widths_type& hit_widths,
             bool have_columns, cache_scratch<codec>& s) const {
    const std::size_t n = out.rows();
    if (!have_columns)
      codec::allocate_dense(out, ctx, n,
                            fresh && fresh->rows() > 0 ? codec::dense_widths(*fresh) : hit_widths);
    s.fresh_row.assign(n, codec::no_row);
    s.keep.assign(s.from_hit.begin(), s.from_hit.begin() + static_cast<std::ptrdiff_t>(n));
    std::size_t next_fresh = 0;
    const std::size_t fresh_rows = fresh ? fresh->rows() : 0;
    for (std::size_t j = 0; j < s.missing.size(); ++j) {
      if (next_fresh < fresh_rows && fresh->indices()[next_fresh] == s.missing[j]) {
        const std::size_t row = s.missing_row[j];
        codec::copy_fresh_dense(*fresh, next_fresh, out, row);
        s.fresh_row[row] = next_fresh++;
        s.keep[row] = 1;
      }  // else: upstream dropped this record (skip policy)
    }
    if (next_fresh != fresh_rows)
      throw std::logic_error(
          "cache: the stages upstream returned rows that are not a subsequence of the records "
          "asked for, in order");
    codec::build_bytes(out, ctx, n, s.from_hit, s.fresh_row, s.hit_bytes, fresh);
    if (std::find(s.keep.begin(), s.keep.end(), std::uint8_t{0}) != s.keep.end())
      out.keep_rows(s.keep);
  }
};

/// The stage as the pipeline holds it.
template <cache_tier Tier>
struct cache_stage {
  static constexpr stage_kind kind = stage_kind::wrap;
  static constexpr stage_placement placement{.needs_batches = true, .before_streams = true};
  CONVEYOR_STAGE_MESSAGES("cache(...)")
  template <class In>
  using output = In;

  std::shared_ptr<Tier> tier;
  std::shared_ptr<cache_stage_counters> counters;
  std::string label;
  bool pack_binary_columns = true;

  [[nodiscard]] std::string_view name() const noexcept { return label; }

  template <batch_function Up>
  auto attach(Up&& up, build_env& env) const {
    auto& stage_counters = env.counters_for(label);
    return cache_function<std::remove_cvref_t<Up>, Tier>{std::forward<Up>(up),
                                                         tier,
                                                         counters,
                                                         env.context(stage_counters),
                                                         label,
                                                         env.dataset_fingerprint,
                                                         env.chain_fingerprint,
                                                         pack_binary_columns};
  }

  /// The epoch-end hook (stage.hpp): a write-behind tier is flushed once an
  /// epoch's batches are exhausted, so the epoch's values are on disk before
  /// the next starts. An epoch left early leaves its writes queued (the tier's
  /// destructor or the next complete epoch writes them).
  void end_epoch(std::uint64_t /*epoch*/) const requires flushable_tier<Tier> { tier->flush(); }

  [[nodiscard]] cache_stage_stats stats() const {
    auto s = counters->snapshot();
    s.tier = tier->stats();
    return s;
  }
};

template <class T>
inline constexpr bool is_cache_stage_v = false;
template <class Tier>
inline constexpr bool is_cache_stage_v<cache_stage<Tier>> = true;

template <class T>
struct shared_tier_type {};
template <class Tier>
requires cache_tier<Tier>
struct shared_tier_type<std::shared_ptr<Tier>> {
  using type = Tier;
};

}  // namespace detail

/// What `cache(...)` accepts as its tier: a shared_ptr to a cache_tier, or a
/// cache_tier by value.
template <class T>
concept cache_tier_argument = cache_tier<std::remove_cvref_t<T>> || requires {
  typename detail::shared_tier_type<std::remove_cvref_t<T>>::type;
};

struct cache_fn {
  template <pipeline_or_source Upstream, cache_tier_argument TierArg>
  auto operator()(Upstream&& upstream, TierArg&& tier, cache_options options = {}) const {
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    using P = decltype(p);
    if constexpr (P::batched && !P::streaming)
      static_assert(detail::cacheable_batch_v<typename P::batch_type>,
                    "conveyor: cache(...) stores dense<...> and bytes<...> columns in host memory "
                    "only; decode text "
                    "records into dense columns before cache(...).");
    auto shared = share(std::forward<TierArg>(tier));
    using Tier = typename decltype(shared)::element_type;
    if (!shared) throw std::invalid_argument("cache: the tier is a null shared_ptr");
    return append_stage(std::move(p),
                        detail::cache_stage<Tier>{
                            std::move(shared), std::make_shared<detail::cache_stage_counters>(),
                            std::move(options.name), options.pack_binary_columns});
  }
  template <cache_tier_argument TierArg>
  auto operator()(TierArg&& tier, cache_options options = {}) const {
    auto shared = share(std::forward<TierArg>(tier));
    return bound_closure<cache_fn, decltype(shared), cache_options>(std::move(shared),
                                                                    std::move(options));
  }

 private:
  template <class TierArg>
  static auto share(TierArg&& tier) {
    using T = std::remove_cvref_t<TierArg>;
    if constexpr (cache_tier<T>) {
      static_assert(std::is_constructible_v<T, TierArg&&>,
                    "conveyor: this tier cannot be moved into the cache stage; pass "
                    "std::make_shared<Tier>(...) "
                    "instead.");
      return std::make_shared<T>(std::forward<TierArg>(tier));
    } else {
      return std::shared_ptr<typename detail::shared_tier_type<T>::type>(
          std::forward<TierArg>(tier));
    }
  }
};
/// cache(tier): see the top of this header.
inline constexpr cache_fn cache{};

/// The counters of cache stage number `which` (0: the first) of `pipe`, and
/// its tier's stats. Thread-safe (relaxed snapshot; may run during an epoch).
/// Throws std::out_of_range when the pipeline has fewer cache stages.
template <class Pipeline>
requires is_pipeline_v<Pipeline> cache_stage_stats cache_stats(const Pipeline& pipe,
                                                               std::size_t which = 0) {
  std::optional<cache_stage_stats> found;
  std::size_t seen = 0;
  std::apply(
      [&](const auto&... stages) {
        (
            [&](const auto& stage) {
              if constexpr (detail::is_cache_stage_v<std::remove_cvref_t<decltype(stage)>>) {
                if (seen++ == which) found = stage.stats();
              }
            }(stages),
            ...);
      },
      pipe.stages());
  if (!found)
    throw std::out_of_range("cache_stats: the pipeline has no cache stage number " +
                            std::to_string(which));
  return *found;
}

}  // namespace conveyor
