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
// Per batch: one `get_many` for keys {dataset fingerprint, chain fingerprint,
// record index}; each value is checked (type tag, lengths, CRC32C) and one
// that fails is a counted miss; the upstream stages run once, for the missing
// records only, with the batch's batch_info; their rows are stored with one
// `put_many`; the output holds every row in the order of the batch's indices,
// whether it came from the tier or from upstream. Records that upstream drops
// (skip policy) are absent, and not stored.
//
// Thread: whichever thread runs the batch function (a parallel(n) worker, or
// the consumer). Allocates: the output columns from the pipeline's pool, one
// buffer per record looked up (reused per thread), one encode buffer per batch
// with misses. Errors: tier failures never fail the pipeline: tiers answer them
// as misses, and an exception out of a tier call is caught, counted
// (`tier_errors`) and treated the same way; errors of the upstream stages
// propagate as they would without the cache. Early exit: nothing to stop.
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
};

/// A snapshot of one cache stage's counters (summed over all epochs), plus
/// its tier's own stats.
struct cache_stage_stats {
  std::uint64_t hits = 0;            ///< records served from the tier
  std::uint64_t misses = 0;          ///< records the tier did not have
  std::uint64_t invalid = 0;         ///< values found but refused (tag, length or checksum), recomputed
  std::uint64_t stored = 0;          ///< records the tier accepted from put_many
  std::uint64_t not_stored = 0;      ///< records the tier refused (full, too large, failing)
  std::uint64_t tier_errors = 0;     ///< exceptions thrown by the tier, caught and served as misses
  std::uint64_t upstream_calls = 0;  ///< batches for which the upstream stages ran
  tier_stats tier;                   ///< the tier's stats at the time of the snapshot

  /// hits / (hits + misses + invalid), or 0 before any lookup.
  [[nodiscard]] double hit_ratio() const noexcept {
    auto lookups = hits + misses + invalid;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }

  friend std::ostream& operator<<(std::ostream& out, const cache_stage_stats& s) {
    return out << "hits " << s.hits << ", misses " << s.misses << ", invalid " << s.invalid << ", stored "
               << s.stored << ", not stored " << s.not_stored << ", tier errors " << s.tier_errors
               << ", upstream calls " << s.upstream_calls << ", tier failures " << s.tier.failures;
  }
};

namespace detail {

/// Shared by the stage (in the pipeline) and every runtime node built from it.
struct cache_stage_counters {
  std::atomic<std::uint64_t> hits{0}, misses{0}, invalid{0}, stored{0}, not_stored{0}, tier_errors{0},
      upstream_calls{0};

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
    return s;
  }
};

/// Per-thread buffers of cache_function::produce, kept between batches so a
/// steady state allocates only the output columns.
template <class Fields>
struct cache_scratch {
  std::vector<cache_key> keys;
  std::vector<byte_buffer> values;
  std::vector<std::uint8_t> found;
  std::vector<Fields> hits;
  std::vector<std::size_t> hit_slot;  // per batch row: index into hits
  std::vector<std::uint64_t> missing;
  std::vector<std::uint64_t> kept;
  std::vector<row_origin> origins;
  std::vector<cache_key> put_keys;
  std::vector<std::span<const std::byte>> put_values;
  std::vector<std::size_t> put_offsets;
  byte_buffer encoded;
};

/// The runtime node: a batch function that answers from the tier first.
template <batch_function Up, cache_tier Tier>
struct cache_function {
  using batch_type = typename Up::batch_type;
  using codec = cached_batch<batch_type>;
  using fields = typename codec::fields;
  static constexpr auto no_hit = static_cast<std::size_t>(-1);

  Up up;
  std::shared_ptr<Tier> tier;
  std::shared_ptr<cache_stage_counters> cache_counters;
  stage_context ctx;
  std::string name;
  std::uint64_t dataset = 0;
  std::uint64_t chain = 0;

  batch_type produce(std::span<const std::uint64_t> indices, batch_info info) const {
    return run_stage(name, info, [&] { return produce_batch(indices, info); });
  }

 private:
  batch_type produce_batch(std::span<const std::uint64_t> indices, batch_info info) const {
    auto begin = clock::now();
    std::chrono::nanoseconds upstream_time{0};
    thread_local cache_scratch<fields> scratch;
    auto& s = scratch;
    const std::size_t n = indices.size();

    look_up(indices, s);
    // Validate: a hit must parse, and agree on dense widths with the first hit.
    s.hits.clear();
    s.hit_slot.assign(n, no_hit);
    s.missing.clear();
    std::array<std::uint64_t, codec::column_count> widths{};
    std::uint64_t invalid = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (s.found[i]) {
        fields parsed;
        bool ok = codec::parse(s.values[i], parsed) == row_check::ok;
        if (ok && !s.hits.empty() && codec::dense_widths(parsed) != widths) ok = false;
        if (ok) {
          if (s.hits.empty()) widths = codec::dense_widths(parsed);
          s.hit_slot[i] = s.hits.size();
          s.hits.push_back(parsed);
          continue;
        }
        ++invalid;
      }
      s.missing.push_back(indices[i]);
    }
    std::optional<batch_type> fresh;
    auto run_upstream = [&](std::span<const std::uint64_t> which) {
      auto started = clock::now();
      fresh.emplace(up.produce(which, info));
      upstream_time += clock::now() - started;
      cache_counters->upstream_calls.fetch_add(1, std::memory_order_relaxed);
    };
    const std::uint64_t absent = s.missing.size() - invalid;
    if (!s.missing.empty()) run_upstream(s.missing);
    if (fresh && !s.hits.empty() && fresh->rows() > 0 && codec::dense_widths(*fresh) != widths) {
      // The stored rows disagree with what upstream makes now (a width that
      // the chain fingerprint cannot see): trust upstream, recompute them all.
      invalid += s.hits.size();
      s.hits.clear();
      s.hit_slot.assign(n, no_hit);
      run_upstream(indices);
    }
    cache_stage_counters::add(cache_counters->hits, s.hits.size());
    cache_stage_counters::add(cache_counters->invalid, invalid);
    cache_stage_counters::add(cache_counters->misses, absent);
    if (fresh) store(*fresh, s);

    std::optional<batch_type> out;
    if (s.hits.empty() && fresh) {
      out.emplace(std::move(*fresh));  // nothing to merge: upstream's batch is the answer
    } else {
      out.emplace(merge(indices, info, fresh ? &*fresh : nullptr, widths, s));
    }
    auto busy = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - begin) - upstream_time;
    ctx.counters->add_batch(out->rows(), out->size_bytes(), busy);
    return std::move(*out);
  }

  void look_up(std::span<const std::uint64_t> indices, cache_scratch<fields>& s) const {
    const std::size_t n = indices.size();
    s.keys.resize(n);
    for (std::size_t i = 0; i < n; ++i) s.keys[i] = cache_key{dataset, chain, indices[i]};
    if (s.values.size() < n) s.values.resize(n);
    s.found.assign(n, 0);
    try {
      tier->get_many(s.keys, std::span<byte_buffer>(s.values.data(), n), s.found);
    } catch (...) {
      cache_counters->tier_errors.fetch_add(1, std::memory_order_relaxed);
      s.found.assign(n, 0);
    }
  }

  void store(const batch_type& fresh, cache_scratch<fields>& s) const {
    const std::size_t rows = fresh.rows();
    if (rows == 0) return;
    s.encoded.clear();
    s.put_offsets.assign(1, 0);
    s.put_keys.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      codec::encode_row(fresh, r, s.encoded);
      s.put_offsets.push_back(s.encoded.size());
      s.put_keys[r] = cache_key{dataset, chain, fresh.indices()[r]};
    }
    s.put_values.resize(rows);
    for (std::size_t r = 0; r < rows; ++r)
      s.put_values[r] = std::span<const std::byte>(s.encoded.data() + s.put_offsets[r],
                                                   s.put_offsets[r + 1] - s.put_offsets[r]);
    std::size_t stored = 0;
    try {
      stored = tier->put_many(s.put_keys, s.put_values);
    } catch (...) {
      cache_counters->tier_errors.fetch_add(1, std::memory_order_relaxed);
    }
    cache_stage_counters::add(cache_counters->stored, stored);
    cache_stage_counters::add(cache_counters->not_stored, rows - std::min(stored, rows));
  }

  batch_type merge(std::span<const std::uint64_t> indices, batch_info info, const batch_type* fresh,
                   const std::array<std::uint64_t, codec::column_count>& hit_widths,
                   cache_scratch<fields>& s) const {
    s.kept.clear();
    s.origins.clear();
    std::size_t next_fresh = 0;
    const std::size_t fresh_rows = fresh ? fresh->rows() : 0;
    for (std::size_t i = 0; i < indices.size(); ++i) {
      if (s.hit_slot[i] != no_hit) {
        s.kept.push_back(indices[i]);
        s.origins.push_back(row_origin{true, s.hit_slot[i]});
      } else if (next_fresh < fresh_rows && fresh->indices()[next_fresh] == indices[i]) {
        s.kept.push_back(indices[i]);
        s.origins.push_back(row_origin{false, next_fresh++});
      }  // else: upstream dropped this record (skip policy)
    }
    if (next_fresh != fresh_rows)
      throw std::logic_error("cache: the stages upstream returned rows that are not a subsequence of the records "
                             "asked for, in order");
    auto widths = s.hits.empty() && fresh ? codec::dense_widths(*fresh) : hit_widths;
    return codec::assemble(ctx, info, s.kept, s.origins, s.hits, fresh, widths);
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

  [[nodiscard]] std::string_view name() const noexcept { return label; }

  template <batch_function Up>
  auto attach(Up&& up, build_env& env) const {
    auto& stage_counters = env.counters_for(label);
    return cache_function<std::remove_cvref_t<Up>, Tier>{std::forward<Up>(up), tier,
                                                           counters,        env.context(stage_counters),
                                                           label,           env.dataset_fingerprint,
                                                           env.chain_fingerprint};
  }

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
concept cache_tier_argument =
    cache_tier<std::remove_cvref_t<T>> || requires { typename detail::shared_tier_type<std::remove_cvref_t<T>>::type; };

struct cache_fn {
  template <pipeline_or_source Upstream, cache_tier_argument TierArg>
  auto operator()(Upstream&& upstream, TierArg&& tier, cache_options options = {}) const {
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    using P = decltype(p);
    if constexpr (P::batched && !P::streaming)
      static_assert(detail::cacheable_batch_v<typename P::batch_type>,
                    "conveyor: cache(...) stores dense<...> and bytes<...> columns in host memory only; decode text "
                    "records into dense columns before cache(...).");
    auto shared = share(std::forward<TierArg>(tier));
    using Tier = typename decltype(shared)::element_type;
    if (!shared) throw std::invalid_argument("cache: the tier is a null shared_ptr");
    return append_stage(std::move(p), detail::cache_stage<Tier>{std::move(shared),
                                                                std::make_shared<detail::cache_stage_counters>(),
                                                                std::move(options.name)});
  }
  template <cache_tier_argument TierArg>
  auto operator()(TierArg&& tier, cache_options options = {}) const {
    auto shared = share(std::forward<TierArg>(tier));
    return bound_closure<cache_fn, decltype(shared), cache_options>(std::move(shared), std::move(options));
  }

 private:
  template <class TierArg>
  static auto share(TierArg&& tier) {
    using T = std::remove_cvref_t<TierArg>;
    if constexpr (cache_tier<T>) {
      static_assert(std::is_constructible_v<T, TierArg&&>,
                    "conveyor: this tier cannot be moved into the cache stage; pass std::make_shared<Tier>(...) "
                    "instead.");
      return std::make_shared<T>(std::forward<TierArg>(tier));
    } else {
      return std::shared_ptr<typename detail::shared_tier_type<T>::type>(std::forward<TierArg>(tier));
    }
  }
};
/// cache(tier): see the top of this header.
inline constexpr cache_fn cache{};

/// The counters of cache stage number `which` (0: the first) of `pipe`, and
/// its tier's stats. Thread-safe (relaxed snapshot; may run during an epoch).
/// Throws std::out_of_range when the pipeline has fewer cache stages.
template <class Pipeline>
  requires is_pipeline_v<Pipeline>
cache_stage_stats cache_stats(const Pipeline& pipe, std::size_t which = 0) {
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
  if (!found) throw std::out_of_range("cache_stats: the pipeline has no cache stage number " + std::to_string(which));
  return *found;
}

}  // namespace conveyor
