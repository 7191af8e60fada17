// conveyor/cache/tiered.hpp: a stack of cache tiers that is itself a tier.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/cache/eviction_listener.hpp"
#include "conveyor/cache/tier.hpp"
#include "conveyor/core/histogram.hpp"

namespace conveyor {

/// How `tiered<...>::put` fills the tiers.
enum class write_policy : std::uint8_t {
  /// Every put goes to every tier. Lower tiers always hold what upper ones do.
  write_through,
  /// A put goes to the top tier; a tier that reports evictions
  /// (`eviction_reporting_tier`) and has a conditional put
  /// (`conditional_put_tier`, as `memory_tier`) hands each value it evicts
  /// to the tier below. A value also goes straight down past any other tier,
  /// or one that refused it (too large); a refused value leaves the older
  /// one in the tier until the new one is below, so no lookup meanwhile
  /// finds a value older still in a lower tier. A value that was promoted
  /// from a lower tier and is evicted unchanged is not written down again
  /// (its bytes are already there): reading does not grow a disk tier.
  /// The hand-over happens before the upper tier releases the victim's lock
  /// (see `eviction_listener`), so a lookup never misses a value on its way
  /// down, and an older value handed down never overwrites a newer put.
  write_back,
};

/// A stack of cache tiers, fastest first, satisfying `cache_tier` itself.
///
/// `get` asks the tiers top-down; a hit in a lower tier is copied ("promoted")
/// into every tier above it. `get_many` issues one `get_many` per tier for the
/// keys still missing and promotes each hit into every upper tier. `put`
/// follows the `write_policy`. `erase` erases from every tier; `contains` asks
/// each in turn.
///
/// Promotion never undoes a write: a value read below lands in an upper tier
/// only if no `put`, `put_many` or `erase` of its key began since the lookup
/// started and none was in progress then; otherwise it is returned but not
/// copied up. The check is made where it cannot race: under the upper tier's
/// lock for a `conditional_put_tier` (`memory_tier::put_if`), else under a
/// promotion mutex per stripe of keys that writers pass through before they
/// touch a tier (docs/cache-memory.md gives the argument). Only writes made
/// through this `tiered` are ordered so: a tier shared with other writers
/// (another process on the same shm segment or Redis server, another
/// `tiered`, direct calls) must hold one value per key, or lookups may return
/// any value any writer put (docs/cache-memory.md, "Writers a tiered does not
/// see").
///
/// Ownership: each template argument says how its tier is held. A plain type
/// is held by value (moved in); an lvalue reference type is held by reference,
/// and the referenced tier must outlive the `tiered`. Class template argument
/// deduction picks this from the arguments: `tiered(memory_tier<>(1 << 30),
/// disk)` owns the memory tier and refers to `disk`. In write-back mode the
/// `tiered` installs itself as the eviction listener of its tiers that hand
/// down (reporting ones with `put_if`, above the bottom), replacing theirs,
/// and removes itself when destroyed; it leaves other tiers' listeners alone.
///
/// Allocation: the tiers live in one heap block so that a `tiered` moves
/// cheaply and the listeners' pointer stays valid, with the guard's 1024 write
/// generations and 64 promotion mutexes; batched calls allocate scratch
/// arrays for the keys that lower tiers are asked about. Thread-safety:
/// as thread-safe as its tiers (all conveyor tiers are); construction, move
/// and destruction are not, and a moved-from `tiered` may only be destroyed or
/// assigned to. Errors: none of its own; tiers answer failures as
/// misses, and an exception from a tier propagates.
template <class... Tiers>
requires(sizeof...(Tiers) >= 1 &&
         (cache_tier<std::remove_reference_t<Tiers>> && ...)) class tiered {
 public:
  static constexpr std::size_t tier_count = sizeof...(Tiers);

  /// Write-through stack of `tiers` (forwarded into the stored tiers).
  template <class... Args>
  requires(sizeof...(Args) == tier_count &&
           (cache_tier<std::remove_cvref_t<Args>> && ...)) explicit tiered(Args&&... tiers)
      : tiered(write_policy::write_through, std::forward<Args>(tiers)...) {}

  template <class... Args>
  requires(sizeof...(Args) == tier_count && (cache_tier<std::remove_cvref_t<Args>> && ...))
      tiered(write_policy policy, Args&&... tiers)
      : state_(std::make_unique<state>(policy, std::forward<Args>(tiers)...)) {
    build_name();
    if (policy == write_policy::write_back) install_listeners(std::true_type{});
  }

  tiered(tiered&&) noexcept = default;
  tiered& operator=(tiered&& other) noexcept {
    if (this != &other) {
      remove_listeners();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ~tiered() { remove_listeners(); }

  /// Tier `I` of the stack (0 is the top).
  template <std::size_t I>
  [[nodiscard]] auto& tier() noexcept {
    return std::get<I>(state_->tiers);
  }
  template <std::size_t I>
  [[nodiscard]] const auto& tier() const noexcept {
    return std::get<I>(state_->tiers);
  }

  [[nodiscard]] write_policy policy() const noexcept { return state_->policy; }

  /// A `verifying_tier` when each of its tiers is in-process or verifying:
  /// every value it hands out comes from one of its tiers' `get_many` or
  /// `visit_many` (a value promoted into an upper tier was handed out, so
  /// checked, by the lower one on its way up).
  static constexpr bool values_verified = ((in_process_tier<std::remove_reference_t<Tiers>> ||
                                            verifying_tier<std::remove_reference_t<Tiers>>)&&...);

  /// Looks `key` up top-down; on a hit below the top, copies the value into
  /// every tier above the one that had it, unless a put or erase of the key
  /// began since the lookup started (see "Promotion" in tiered's comment).
  /// On a miss `out` is empty (each tier clears it).
  bool get(const cache_key& key, byte_buffer& out) {
    auto started = std::chrono::steady_clock::now();
    bool hit = get_from<0>(key, out, tier_count > 1 ? state_->writes.read(key) : 0);
    count_lookups(hit ? 1 : 0, hit ? 0 : 1, hit ? out.size() : 0);
    state_->get_latency.record(std::chrono::steady_clock::now() - started);
    return hit;
  }

  /// Stores `value` according to the write policy; true when some tier stored it.
  bool put(const cache_key& key, std::span<const std::byte> value) {
    auto started = std::chrono::steady_clock::now();
    bool stored = false;
    {
      write_scope writing(*state_, std::span(&key, 1));
      stored = state_->policy == write_policy::write_through ? put_through<0>(key, value)
                                                             : put_back_from<0>(key, value);
    }
    count_put(stored, value.size());
    state_->put_latency.record(std::chrono::steady_clock::now() - started);
    return stored;
  }

  /// Erases `key` from every tier, top first; true when some tier held it.
  /// Top first matters in write-back: an eviction of `key` being handed down
  /// finishes before the top tier's erase, so the lower erase removes it too.
  /// Write-back first erases the tiers below the top, bottom first: a lower
  /// tier may hold an older value than the one above it, and a lookup that
  /// missed the top once the top was erased would find that older value,
  /// which was not current at any time during the erase. (One more erase per
  /// lower tier; the values handed down meanwhile are newer, and the top-first
  /// pass removes them.)
  bool erase(const cache_key& key) {
    write_scope writing(*state_, std::span(&key, 1));
    for (auto& marks : state_->clean) marks.forget(key);
    bool held = false;
    if constexpr (tier_count > 1) {
      if (state_->policy == write_policy::write_back) {
        [&]<std::size_t... Below>(std::index_sequence<Below...>) {
          ((held = std::get<tier_count - 1 - Below>(state_->tiers).erase(key) || held), ...);
        }
        (std::make_index_sequence<tier_count - 1>{});
      }
    }
    std::apply([&](auto&... tiers) { ((held = tiers.erase(key) || held), ...); }, state_->tiers);
    return held;
  }

  /// Flushes every tier that writes behind (`flushable_tier`), top first:
  /// the writes queued before the call are done when it returns. Present when
  /// some tier has `flush()`.
  void flush() requires(flushable_tier<std::remove_reference_t<Tiers>> || ...) {
    std::apply(
        [](auto&... tiers) {
          auto one = [](auto& tier) {
            if constexpr (flushable_tier<std::remove_reference_t<decltype(tier)>>) tier.flush();
          };
          (one(tiers), ...);
        },
        state_->tiers);
  }

  /// True when some tier holds `key`.
  [[nodiscard]] bool contains(const cache_key& key) {
    return std::apply([&](auto&... tiers) { return (tiers.contains(key) || ...); }, state_->tiers);
  }

  /// Batched `get`: tier 0 is asked for all keys, each lower tier once for the
  /// keys still missing; each hit is promoted into every upper tier, one
  /// conditional put per value (see "Promotion never undoes a write" above).
  /// Returns the number of hits; found[i] says which.
  std::size_t get_many(std::span<const cache_key> keys, std::span<byte_buffer> values,
                       std::span<std::uint8_t> found) {
    auto started = std::chrono::steady_clock::now();
    std::size_t count = std::min({keys.size(), values.size(), found.size()});
    keys = keys.first(count);
    values = values.first(count);
    found = found.first(count);
    const auto snapshots = read_generations(keys);
    std::size_t hits = std::get<0>(state_->tiers).get_many(keys, values, found);
    if (hits < count) hits += get_many_below<1>(keys, values, found, snapshots);
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < count; ++i)
      if (found[i] != 0) bytes += values[i].size();
    count_lookups(hits, count - hits, bytes);
    state_->get_latency.record(std::chrono::steady_clock::now() - started);
    return hits;
  }

  /// `get_many` with the hits shown in place (`visiting_tier`), present when
  /// the top tier is a `visiting_tier`: the top tier's hits are visited in
  /// place, under its locks; the keys it misses go down as in `get_many`
  /// (each lower tier asked once, hits promoted above) and are visited from
  /// buffers reused per thread. Calls visit(i, value) once per key found, in
  /// any order, and returns the hits; counts as `get_many`. `visit` must not
  /// call into the stack; an exception from it propagates.
  template <class Visit>
  std::size_t visit_many(std::span<const cache_key> keys, Visit&& visit) requires
      visiting_tier<std::remove_reference_t<std::tuple_element_t<0, std::tuple<Tiers...>>>> {
    auto started = std::chrono::steady_clock::now();
    const std::size_t count = keys.size();
    thread_local std::vector<std::uint8_t> found;
    thread_local std::vector<byte_buffer> values;
    found.assign(count, 0);
    std::uint64_t bytes = 0;
    const auto snapshots = read_generations(keys);
    std::size_t hits = std::get<0>(state_->tiers)
                           .visit_many(keys, [&](std::size_t i, std::span<const std::byte> value) {
                             found[i] = 1;
                             bytes += value.size();
                             visit(i, value);
                           });
    if constexpr (tier_count > 1) {
      if (hits < count) {
        if (values.size() < count) values.resize(count);
        std::span<byte_buffer> below_values(values.data(), count);
        // found[] marks the top's hits, so lower tiers are asked only for the rest.
        std::vector<std::uint8_t> top_hit(found.begin(), found.end());
        std::size_t below =
            get_many_below<1>(keys, below_values, std::span<std::uint8_t>(found), snapshots);
        hits += below;
        for (std::size_t i = 0; i < count && below != 0; ++i) {
          if (found[i] == 0 || top_hit[i] != 0) continue;
          bytes += values[i].size();
          visit(i, std::span<const std::byte>(values[i]));
        }
      }
    }
    count_lookups(hits, count - hits, bytes);
    state_->get_latency.record(std::chrono::steady_clock::now() - started);
    return hits;
  }

  /// Batched `put`, per value as `put` does it. Write-through: one `put_many`
  /// per tier. Write-back: one `put_many` to the top tier; each lower tier gets
  /// all the values when the tier above does not hand its evictions down,
  /// else the values the tier above refused. A tier that hands down takes
  /// the batch with `put_many_if` (else one `put_if` per value), so that a
  /// refused value leaves the key's older value there; the refused values
  /// are put below, erased from that tier, and put below again (as `put`).
  /// Any other tier that refuses a value has that key erased. Returns how
  /// many values some tier stored. A tier that is not a `put_reporting_tier`
  /// (cannot say which values of a batch it stored) gets one `put` per value.
  /// A key given more than once keeps its last value (only that one is put;
  /// the earlier ones are neither stored nor counted as refused).
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values) {
    std::vector<std::uint8_t> stored(std::min(keys.size(), values.size()));
    return put_many(keys, values, stored);
  }
  /// `put_many` that also sets stored[i] to whether some tier stored
  /// values[i]. Spans of unequal length are cut to the shortest.
  std::size_t put_many(std::span<const cache_key> keys,
                       std::span<const std::span<const std::byte>> values,
                       std::span<std::uint8_t> stored) {
    auto started = std::chrono::steady_clock::now();
    std::size_t count = std::min({keys.size(), values.size(), stored.size()});
    keys = keys.first(count);
    values = values.first(count);
    stored = stored.first(count);
    std::fill(stored.begin(), stored.end(), std::uint8_t{0});
    // A key given more than once: only its last value is put, which is what
    // a run of single puts leaves behind. (Put together, a refused earlier
    // value would go down and erase the later one from the tier above, so the
    // older value would win.) The superseded values are neither stored nor
    // refused: stored[i] 0, counted in neither `puts` nor `rejected_puts`.
    std::size_t superseded = 0;
    if (count != 0) {
      write_scope writing(*state_, keys);
      const std::vector<std::size_t> last = last_of_each_key(keys);
      if (last.empty()) {
        put_many_from<0>(keys, values, {}, stored);
      } else {
        std::vector<cache_key> unique_keys;
        std::vector<std::span<const std::byte>> unique_values;
        unique_keys.reserve(last.size());
        unique_values.reserve(last.size());
        for (std::size_t i : last) {
          unique_keys.push_back(keys[i]);
          unique_values.push_back(values[i]);
        }
        put_many_from<0>(unique_keys, unique_values, last, stored);
        superseded = count - last.size();
      }
    }
    std::size_t stored_count = 0;
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (stored[i] == 0) continue;
      ++stored_count;
      bytes += values[i].size();
    }
    state_->puts.fetch_add(stored_count, std::memory_order_relaxed);
    state_->rejected_puts.fetch_add(count - superseded - stored_count, std::memory_order_relaxed);
    state_->bytes_written.fetch_add(bytes, std::memory_order_relaxed);
    state_->put_latency.record(std::chrono::steady_clock::now() - started);
    return stored_count;
  }

  /// Sum over the tiers.
  [[nodiscard]] std::uint64_t size_bytes() const {
    return std::apply(
        [](const auto&... tiers) { return (std::uint64_t{0} + ... + tiers.size_bytes()); },
        state_->tiers);
  }
  [[nodiscard]] std::uint64_t capacity_bytes() const {
    return std::apply(
        [](const auto&... tiers) { return (std::uint64_t{0} + ... + tiers.capacity_bytes()); },
        state_->tiers);
  }

  /// The stack seen as one tier: hits, misses, puts, bytes and latencies of
  /// calls on the `tiered` itself; evictions, failures, size and capacity
  /// summed over the tiers (ask `tier<I>().stats()` for one tier's view).
  [[nodiscard]] tier_stats stats() const {
    tier_stats out;
    out.hits = state_->hits.load(std::memory_order_relaxed);
    out.misses = state_->misses.load(std::memory_order_relaxed);
    out.puts = state_->puts.load(std::memory_order_relaxed);
    out.rejected_puts = state_->rejected_puts.load(std::memory_order_relaxed);
    out.bytes_read = state_->bytes_read.load(std::memory_order_relaxed);
    out.bytes_written = state_->bytes_written.load(std::memory_order_relaxed);
    std::apply(
        [&](const auto&... tiers) {
          auto add = [&](const tier_stats& one) {
            out.evictions += one.evictions;
            out.failures += one.failures;
          };
          (add(tiers.stats()), ...);
        },
        state_->tiers);
    out.size_bytes = size_bytes();
    out.capacity_bytes = capacity_bytes();
    out.get_latency = state_->get_latency;
    out.put_latency = state_->put_latency;
    return out;
  }

  /// "tiered(<top> > ... > <bottom>)".
  [[nodiscard]] std::string_view name() const noexcept { return state_->name; }

 private:
  // Promotion's guard (docs/cache-memory.md, "Promotion never undoes a write").
  // Per stripe of keys one counter: its low bits count the puts and erases in
  // progress, its high bits those finished. A writer adds one_started before
  // touching any tier and one_finished - one_started after the last one, so
  // the counter never takes the same value twice while writers come and go.
  // A reader reads it before its first lookup (the snapshot); a promotion
  // lands only if the snapshot had no writer in progress and the counter
  // still equals it where the upper tier orders the key's puts and erases:
  // under the tier's lock (`conditional_put_tier`), or else under a stripe
  // mutex that every writer passes through after its start and before it
  // touches a tier. Either way a writer either started before the check (the
  // promotion is dropped) or reaches the upper tier after the promotion (and
  // overwrites or erases it).
  class write_generations {
   public:
    static constexpr std::uint64_t one_started = 1;
    static constexpr std::uint64_t in_progress_mask = (std::uint64_t{1} << 24) - 1;
    static constexpr std::uint64_t one_finished = std::uint64_t{1} << 24;

    [[nodiscard]] std::uint64_t read(const cache_key& key) const noexcept {
      return stripe(key).load(std::memory_order_acquire);
    }
    [[nodiscard]] static bool settled(std::uint64_t snapshot) noexcept {
      return (snapshot & in_progress_mask) == 0;
    }
    void start(const cache_key& key) noexcept {
      stripe(key).fetch_add(one_started, std::memory_order_acq_rel);
    }
    void finish(const cache_key& key) noexcept {
      stripe(key).fetch_add(one_finished - one_started, std::memory_order_release);
    }
    std::mutex& promotion_mutex(const cache_key& key) noexcept {
      return promotion_mutexes_[stripe_of(key) % promotion_mutexes_.size()];
    }

   private:
    // One multiply instead of cache_key::hash's three mixing rounds: every
    // lookup pays this for each of its keys, and a stripe shared by two keys
    // only costs a dropped promotion. The top bits of the product spread
    // consecutive records over all stripes.
    static std::size_t stripe_of(const cache_key& key) noexcept {
      std::uint64_t mixed =
          (key.record ^ (key.chain << 1) ^ (key.dataset << 2)) * std::uint64_t{0x9e3779b97f4a7c15};
      return static_cast<std::size_t>(mixed >> (64 - stripe_bits));
    }
    std::atomic<std::uint64_t>& stripe(const cache_key& key) const noexcept {
      return stripes_[stripe_of(key)];
    }
    static constexpr int stripe_bits = 10;
    mutable std::array<std::atomic<std::uint64_t>, std::size_t{1} << stripe_bits> stripes_{};
    std::array<std::mutex, 64> promotion_mutexes_;
  };

  // Why a digest and not a flag: a put of a newer value may replace a promoted
  // one in the upper tier at any moment; comparing the evicted bytes' digest
  // with the promoted ones' needs no ordering between the two. The digest is
  // CRC32C and length (the strength of the checksums every value carries).
  class clean_values {
   public:
    static std::uint64_t digest(std::span<const std::byte> value) noexcept {
      return (std::uint64_t{value.size()} << 32) ^
             detail::crc32c_update(0, value.data(), value.size());
    }
    // `generation`: the promoting reader's snapshot of the key's write
    // generation. The mark holds only while no put or erase of the key began
    // since (a put of the same bytes and then of others below would make a
    // digest alone lie).
    void mark(const cache_key& key, std::uint64_t value_digest, std::uint64_t generation) {
      auto& part = part_of(key);
      std::lock_guard lock(part.mutex);
      part.digests[key] = promoted{value_digest, generation};
    }
    // True (and forgotten) when `value` is what was promoted under `key` and
    // the key's generation is still `generation_now`'s.
    bool take_if_same(const cache_key& key, std::span<const std::byte> value,
                      std::uint64_t generation_now) {
      auto& part = part_of(key);
      promoted mark;
      {
        std::lock_guard lock(part.mutex);
        auto found = part.digests.find(key);
        if (found == part.digests.end()) return false;
        mark = found->second;
        part.digests.erase(found);
      }
      return mark.generation == generation_now && mark.digest == digest(value);
    }
    void forget(const cache_key& key) {
      auto& part = part_of(key);
      std::lock_guard lock(part.mutex);
      part.digests.erase(key);
    }

   private:
    struct promoted {
      std::uint64_t digest = 0;
      std::uint64_t generation = 0;
    };
    struct part {
      std::mutex mutex;
      std::unordered_map<cache_key, promoted, cache_key_hash> digests;
    };
    part& part_of(const cache_key& key) noexcept { return parts_[key.hash() % parts_.size()]; }
    std::array<part, 16> parts_;
  };

  struct state {
    template <class... Args>
    explicit state(write_policy chosen, Args&&... args)
        : tiers(std::forward<Args>(args)...), policy(chosen) {}
    std::tuple<Tiers...> tiers;
    write_policy policy;
    std::string name;
    std::atomic<std::uint64_t> hits{0}, misses{0}, puts{0}, rejected_puts{0}, bytes_read{0},
        bytes_written{0};
    latency_histogram get_latency, put_latency;
    // clean[I]: values promoted into tier I from below, by key, with a digest
    // of their bytes (write-back only). An eviction from tier I whose bytes
    // match is dropped instead of written down again.
    std::array<clean_values, tier_count> clean;
    write_generations writes;
  };

  // Which upper tiers take promotions without a conditional put: writers
  // then pass through the promotion mutex of each key they write.
  static constexpr bool promotions_need_mutex = [] {
    return []<std::size_t... Upper>(std::index_sequence<Upper...>) {
      return (!conditional_put_tier<
                  std::remove_reference_t<std::tuple_element_t<Upper, std::tuple<Tiers...>>>> ||
              ...);
    }
    (std::make_index_sequence<tier_count - 1>{});
  }();

  // A put, put_many or erase of `keys`: started on construction, before any
  // tier is touched, finished on destruction, after the last one (also when
  // a tier throws). A stack of one tier never promotes: nothing to do.
  class write_scope {
   public:
    write_scope(state& shared, std::span<const cache_key> keys) : shared_(shared), keys_(keys) {
      if constexpr (tier_count > 1) {
        for (const auto& key : keys_) shared_.writes.start(key);
        if constexpr (promotions_need_mutex)
          for (const auto& key : keys_) std::lock_guard wait(shared_.writes.promotion_mutex(key));
      }
    }
    ~write_scope() {
      if constexpr (tier_count > 1)
        for (const auto& key : keys_) shared_.writes.finish(key);
    }
    write_scope(const write_scope&) = delete;
    write_scope& operator=(const write_scope&) = delete;

   private:
    state& shared_;
    std::span<const cache_key> keys_;
  };

  // Each key's write generation, read before the first lookup of a batch;
  // per thread, valid until this thread's next batched lookup on this type.
  std::span<const std::uint64_t> read_generations(std::span<const cache_key> keys) const {
    thread_local std::vector<std::uint64_t> snapshots;
    if constexpr (tier_count > 1) {
      snapshots.resize(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) snapshots[i] = state_->writes.read(keys[i]);
    }
    return {snapshots.data(), tier_count > 1 ? keys.size() : 0};
  }

  template <std::size_t I>
  using tier_type = std::remove_reference_t<std::tuple_element_t<I, std::tuple<Tiers...>>>;
  // Whether write-back hands tier I's evictions to the tier below: tier I
  // reports them and has a conditional put, so that a value it refuses leaves
  // its older one in place until the new one is below (put_back_from,
  // put_many_from). A reporting tier without put_if is written through like
  // one that cannot report: a refusal there may drop the older value at once,
  // and a lookup would then find a value older still below it.
  template <std::size_t I>
  static constexpr bool hands_down =
      eviction_reporting_tier<tier_type<I>>&& conditional_put_tier<tier_type<I>>;

  void build_name() {
    std::apply(
        [&](const auto&... tiers) {
          std::string name;
          ((name += (name.empty() ? "" : " > "), name += tiers.name()), ...);
          state_->name = "tiered(" + name + ")";
        },
        state_->tiers);
  }

  // Each reporting tier but the last hands its evictions to the tier below it.
  // The listener runs under tier I's lock for the victim (eviction_listener.hpp),
  // which closes the window in which a lookup missed both tiers: it calls only
  // single put/erase of tiers I+1.. (never tier I, never a batch call), takes
  // no lock of tier I and only clean[I]'s own mutex, so the lock order is
  // always tier I before tier I+1 and nothing waits the other way round.
  template <std::size_t I = 0>
  void install_listeners(std::true_type) {
    if constexpr (I + 1 < tier_count) {
      if constexpr (hands_down<I>) {
        state* shared = state_.get();
        std::get<I>(state_->tiers)
            .set_eviction_listener(
                [shared](const cache_key& key, std::span<const std::byte> value) {
                  if (shared->clean[I].take_if_same(key, value, shared->writes.read(key)))
                    return;  // already below
                  put_back_from<I + 1>(*shared, key, value);
                });
      }
      install_listeners<I + 1>(std::true_type{});
    }
  }

  void remove_listeners() noexcept {
    if (!state_ || state_->policy != write_policy::write_back) return;
    remove_listener<0>();
  }
  template <std::size_t I>
  void remove_listener() noexcept {
    if constexpr (I + 1 < tier_count) {
      if constexpr (hands_down<I>) std::get<I>(state_->tiers).set_eviction_listener({});
      remove_listener<I + 1>();
    }
  }

  template <std::size_t I>
  bool get_from(const cache_key& key, byte_buffer& out, std::uint64_t snapshot) {
    if (std::get<I>(state_->tiers).get(key, out)) {
      promote_above<I>(key, std::span<const std::byte>(out.data(), out.size()), snapshot);
      return true;
    }
    if constexpr (I + 1 < tier_count)
      return get_from<I + 1>(key, out, snapshot);
    else
      return false;
  }

  // Copies a value found in tier I into every tier above it, top first,
  // unless a writer of the key was in progress at `snapshot` or started since.
  template <std::size_t I>
  void promote_above(const cache_key& key, std::span<const std::byte> value,
                     std::uint64_t snapshot) {
    if constexpr (I > 0) {
      if (!write_generations::settled(snapshot)) return;
      if (state_->policy == write_policy::write_back) mark_clean_above<I>(key, value, snapshot);
      [&]<std::size_t... Upper>(std::index_sequence<Upper...>) {
        (promote_into<Upper>(key, value, snapshot), ...);
      }
      (std::make_index_sequence<I>{});
    }
  }

  template <std::size_t J>
  void promote_into(const cache_key& key, std::span<const std::byte> value,
                    std::uint64_t snapshot) {
    auto& tier = std::get<J>(state_->tiers);
    auto unchanged = [&] { return state_->writes.read(key) == snapshot; };
    if constexpr (conditional_put_tier<tier_type<J>>) {
      tier.put_if(key, value, unchanged);
    } else {
      std::lock_guard lock(state_->writes.promotion_mutex(key));
      if (unchanged()) tier.put(key, value);
    }
  }

  // Marks a value about to be promoted from tier I as clean in each reporting
  // tier above it (before the put, so that an eviction caused by the put
  // itself already sees the mark).
  template <std::size_t I>
  void mark_clean_above(const cache_key& key, std::span<const std::byte> value,
                        std::uint64_t snapshot) {
    [&]<std::size_t... Upper>(std::index_sequence<Upper...>) {
      (
          [&] {
            if constexpr (hands_down<Upper>)
              state_->clean[Upper].mark(key, clean_values::digest(value), snapshot);
          }(),
          ...);
    }
    (std::make_index_sequence<I>{});
  }

  // A tier that refuses a value must not keep serving an older one.
  template <std::size_t I>
  static bool put_or_erase(state& shared, const cache_key& key, std::span<const std::byte> value) {
    auto& tier = std::get<I>(shared.tiers);
    if (tier.put(key, value)) return true;
    tier.erase(key);
    return false;
  }

  template <std::size_t I>
  bool put_through(const cache_key& key, std::span<const std::byte> value) {
    bool stored = put_or_erase<I>(*state_, key, value);
    if constexpr (I + 1 < tier_count) stored = put_through<I + 1>(key, value) || stored;
    return stored;
  }

  template <std::size_t I>
  bool put_back_from(const cache_key& key, std::span<const std::byte> value) {
    return put_back_from<I>(*state_, key, value);
  }
  template <std::size_t I>
  static bool put_back_from(state& shared, const cache_key& key, std::span<const std::byte> value) {
    if constexpr (I + 1 < tier_count && hands_down<I>) {
      // A refused put_if leaves the tier's older value in place: the new one
      // goes below first, so no lookup meets the value below it (maybe older
      // still) while the tier lacks the key. Then the tier's value is
      // erased, and the new one put below again: an eviction may have handed
      // the tier's value down over it meanwhile. (Refusals only: a value too
      // large for the tier costs two writes below.)
      auto& tier = std::get<I>(shared.tiers);
      if (tier.put_if(key, value, [] { return true; })) return true;
      bool stored = put_back_from<I + 1>(shared, key, value);
      tier.erase(key);
      return put_back_from<I + 1>(shared, key, value) || stored;
    }
    bool stored = put_or_erase<I>(shared, key, value);
    if constexpr (I + 1 < tier_count) {
      if (!stored || !hands_down<I>) stored = put_back_from<I + 1>(shared, key, value) || stored;
    }
    return stored;
  }

  // The positions of the last value of each key, in order, when some key
  // comes more than once; empty when none does (the usual batch: one pass of
  // its hashes through a small table, no sort).
  static std::vector<std::size_t> last_of_each_key(std::span<const cache_key> keys) {
    thread_local std::vector<std::uint64_t> seen;  // hashes; 0 stands for empty
    std::size_t slots = 16;
    while (slots < 2 * keys.size()) slots *= 2;
    seen.assign(slots, 0);
    bool repeats = false;
    for (const cache_key& key : keys) {
      const std::uint64_t hash = key.hash() | 1;  // never 0
      std::size_t at = hash & (slots - 1);
      while (seen[at] != 0 && seen[at] != hash) at = (at + 1) & (slots - 1);
      if (seen[at] == hash) {
        repeats = true;  // the same hash: maybe the same key, checked below
        break;
      }
      seen[at] = hash;
    }
    if (!repeats) return {};
    // Rare: the last position of each key, then the positions that are last.
    std::unordered_map<cache_key, std::size_t, cache_key_hash> last_at;
    for (std::size_t i = 0; i < keys.size(); ++i) last_at[keys[i]] = i;
    std::vector<std::size_t> last;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (last_at[keys[i]] == i) last.push_back(i);
    return last;
  }

  // Puts the values into a tier that hands down (a conditional_put_tier),
  // leaving the older value of each key it refuses in place: one put_many_if
  // where the tier has it, else one put_if per value.
  template <class Tier>
  static std::size_t put_many_unless_refused(Tier& tier, std::span<const cache_key> keys,
                                             std::span<const std::span<const std::byte>> values,
                                             std::span<std::uint8_t> stored) {
    if constexpr (conditional_put_many_tier<Tier>) {
      return tier.put_many_if(keys, values, keep_every_value{}, stored);
    } else {
      std::size_t count = 0;
      for (std::size_t j = 0; j < keys.size(); ++j) {
        stored[j] = tier.put_if(keys[j], values[j], [] { return true; }) ? 1 : 0;
        count += stored[j];
      }
      return count;
    }
  }

  // Puts `keys` and `values` (non-empty) into tier I and on down, erasing each
  // refused key from the tier that refused it (as put_or_erase does), and marks
  // stored_any[positions[j]] (positions empty: j itself) for each value stored.
  template <std::size_t I>
  void put_many_from(std::span<const cache_key> keys,
                     std::span<const std::span<const std::byte>> values,
                     std::span<const std::size_t> positions, std::span<std::uint8_t> stored_any) {
    auto& tier = std::get<I>(state_->tiers);
    std::vector<std::uint8_t> stored(keys.size(), 0);
    if constexpr (I + 1 < tier_count && hands_down<I>) {
      if (state_->policy == write_policy::write_back) {
        // As put_back_from, per value: the tier keeps the older value of a
        // key whose new value it refused; the refused values go below, then
        // are erased from the tier, then go below again (an eviction may have
        // handed the tier's older value down over them meanwhile).
        put_many_unless_refused(tier, keys, values, std::span(stored));
        std::vector<cache_key> refused_keys;
        std::vector<std::span<const std::byte>> refused_values;
        std::vector<std::size_t> refused_positions;
        for (std::size_t j = 0; j < keys.size(); ++j) {
          if (stored[j] != 0) {
            stored_any[positions.empty() ? j : positions[j]] = 1;
            continue;
          }
          refused_keys.push_back(keys[j]);
          refused_values.push_back(values[j]);
          refused_positions.push_back(positions.empty() ? j : positions[j]);
        }
        if (refused_keys.empty()) return;
        put_many_from<I + 1>(refused_keys, refused_values, refused_positions, stored_any);
        for (const auto& key : refused_keys) tier.erase(key);
        put_many_from<I + 1>(refused_keys, refused_values, refused_positions, stored_any);
        return;
      }
    }
    // Write-through, or a tier that does not hand down: every value goes on
    // down (a write-back tier that hands down returned above).
    put_many_reporting(tier, keys, values, std::span(stored));
    for (std::size_t j = 0; j < keys.size(); ++j) {
      if (stored[j] != 0)
        stored_any[positions.empty() ? j : positions[j]] = 1;
      else
        tier.erase(keys[j]);
    }
    if constexpr (I + 1 < tier_count) put_many_from<I + 1>(keys, values, positions, stored_any);
  }

  // Asks tier I (and below) for the keys not found yet. The caller's buffers
  // are swapped into the scratch array and back so their capacity is reused.
  template <std::size_t I>
  std::size_t get_many_below(std::span<const cache_key> keys, std::span<byte_buffer> values,
                             std::span<std::uint8_t> found,
                             std::span<const std::uint64_t> snapshots) {
    if constexpr (I >= tier_count) {
      return 0;
    } else {
      std::vector<std::size_t> missing;
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (found[i] == 0) missing.push_back(i);
      if (missing.empty()) return 0;
      std::vector<cache_key> missing_keys(missing.size());
      std::vector<byte_buffer> missing_values(missing.size());
      std::vector<std::uint8_t> missing_found(missing.size(), 0);
      for (std::size_t j = 0; j < missing.size(); ++j) {
        missing_keys[j] = keys[missing[j]];
        std::swap(missing_values[j], values[missing[j]]);
      }
      std::size_t hits =
          std::get<I>(state_->tiers).get_many(missing_keys, missing_values, missing_found);
      for (std::size_t j = 0; j < missing.size(); ++j) {
        std::swap(missing_values[j], values[missing[j]]);
        found[missing[j]] = missing_found[j] != 0 ? 1 : 0;
      }
      // One conditional put per promoted value and upper tier: each is checked
      // against its own key's snapshot where it lands (see write_generations).
      for (std::size_t j = 0; j < missing.size(); ++j) {
        if (missing_found[j] == 0) continue;
        const byte_buffer& value = values[missing[j]];
        promote_above<I>(missing_keys[j], std::span<const std::byte>(value.data(), value.size()),
                         snapshots[missing[j]]);
      }
      if (hits < missing.size()) hits += get_many_below<I + 1>(keys, values, found, snapshots);
      return hits;
    }
  }

  void count_lookups(std::uint64_t hits, std::uint64_t misses, std::uint64_t bytes) noexcept {
    state_->hits.fetch_add(hits, std::memory_order_relaxed);
    state_->misses.fetch_add(misses, std::memory_order_relaxed);
    state_->bytes_read.fetch_add(bytes, std::memory_order_relaxed);
  }
  void count_put(bool stored, std::uint64_t bytes) noexcept {
    (stored ? state_->puts : state_->rejected_puts).fetch_add(1, std::memory_order_relaxed);
    if (stored) state_->bytes_written.fetch_add(bytes, std::memory_order_relaxed);
  }

  std::unique_ptr<state> state_;
};

/// Lvalue arguments are held by reference, rvalues by value.
template <class... Args>
tiered(Args&&...) -> tiered<Args...>;
template <class... Args>
tiered(write_policy, Args&&...) -> tiered<Args...>;

}  // namespace conveyor
