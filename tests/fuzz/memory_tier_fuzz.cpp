// Model-checks memory_tier and a two-level tiered<...> against a map of the
// latest value put per key. The input picks the eviction policy, the write
// policy, the shard count and the budget, then a sequence of 3-byte
// operations (opcode, key, size). After every operation: the budget holds,
// size_bytes() is exactly the sum of the charges of the keys held, a held or
// returned value is always the latest one put, a successful put is held, and
// every evicted value handed to the listener is the latest one of its key.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "conveyor/cache/memory_tier.hpp"
#include "conveyor/cache/tiered.hpp"

namespace cy = conveyor;

namespace {

constexpr std::size_t key_count = 32;

struct version {
  std::uint32_t number;
  std::size_t size;
};
using model = std::array<std::optional<version>, key_count>;

void require(bool condition) {
  if (!condition) std::abort();
}

cy::cache_key key_of(std::size_t record) {
  return cy::cache_key{5, 6, record};
}

cy::byte_buffer value_of(std::size_t record, const version& v) {
  cy::byte_buffer value(v.size);
  for (std::size_t i = 0; i < v.size; ++i)
    value[i] = static_cast<std::byte>((record * 7 + std::size_t{v.number} * 13 + i) & 0xff);
  return value;
}

bool is_latest(const model& latest, std::size_t record, std::span<const std::byte> value) {
  if (record >= key_count || !latest[record]) return false;
  auto expected = value_of(record, *latest[record]);
  return std::equal(value.begin(), value.end(), expected.begin(), expected.end());
}

struct operation {
  std::uint8_t code, key, size;
};

template <class Policy>
void check_memory_tier(std::span<const operation> operations, std::uint64_t capacity,
                       std::size_t shards) {
  model latest{};
  bool listener_ok = true;
  cy::memory_tier_options options;
  options.capacity_bytes = capacity;
  options.shard_count = shards;
  options.latency_sample_period = 1;
  options.on_evict = [&](const cy::cache_key& key, std::span<const std::byte> value) {
    listener_ok = listener_ok && is_latest(latest, key.record, value);
  };
  cy::memory_tier<Policy> tier(std::move(options));
  std::uint32_t next_version = 0;
  cy::byte_buffer out;
  for (const operation& op : operations) {
    std::size_t record = op.key % key_count;
    switch (op.code % 5) {
      case 0:
      case 1: {
        version v{next_version++, std::size_t{op.size} * 8};
        auto value = value_of(record, v);
        latest[record] = v;  // the listener may see this key only with its latest value
        bool stored = tier.put(key_of(record), value);
        if (!stored) latest[record].reset();
        require(!stored || tier.contains(key_of(record)));
        break;
      }
      case 2:
        if (tier.get(key_of(record), out)) require(is_latest(latest, record, out));
        break;
      case 3: {
        bool was_held = tier.contains(key_of(record));
        require(tier.erase(key_of(record)) == was_held);
        require(!tier.contains(key_of(record)));
        latest[record].reset();
        break;
      }
      case 4: {
        std::array<cy::cache_key, 4> keys;
        std::array<cy::byte_buffer, 4> values;
        std::array<std::uint8_t, 4> found{};
        for (std::size_t i = 0; i < 4; ++i) keys[i] = key_of((record + i) % key_count);
        std::size_t hits = tier.get_many(keys, values, found);
        std::size_t counted = 0;
        for (std::size_t i = 0; i < 4; ++i)
          if (found[i] != 0) {
            ++counted;
            require(is_latest(latest, keys[i].record, values[i]));
          }
        require(counted == hits);
        break;
      }
    }
    require(listener_ok);
    require(tier.size_bytes() <= tier.capacity_bytes());
    std::uint64_t held = 0;
    for (std::size_t r = 0; r < key_count; ++r)
      if (tier.contains(key_of(r))) {
        require(latest[r].has_value());
        held += tier.charged_bytes(latest[r]->size);
      }
    require(held == tier.size_bytes());
  }
}

template <class Policy>
void check_tiered(std::span<const operation> operations, std::uint64_t capacity,
                  cy::write_policy policy) {
  model latest{};
  auto options = [](std::uint64_t bytes) {
    cy::memory_tier_options out;
    out.capacity_bytes = bytes;
    out.shard_count = 1;
    return out;
  };
  cy::tiered stack(policy, cy::memory_tier<>(options(capacity / 2)),
                   cy::memory_tier<Policy>(options(capacity)));
  auto& top = stack.template tier<0>();
  auto& bottom = stack.template tier<1>();
  std::uint32_t next_version = 0;
  cy::byte_buffer out;
  for (const operation& op : operations) {
    std::size_t record = op.key % key_count;
    switch (op.code % 4) {
      case 0:
      case 1: {
        version v{next_version++, std::size_t{op.size} * 8};
        bool stored = stack.put(key_of(record), value_of(record, v));
        latest[record] = stored ? std::optional<version>(v) : std::nullopt;
        break;
      }
      case 2:
        if (stack.get(key_of(record), out)) require(is_latest(latest, record, out));
        break;
      case 3:
        stack.erase(key_of(record));
        latest[record].reset();
        break;
    }
    for (std::size_t r = 0; r < key_count; ++r) {
      if (top.contains(key_of(r)) || bottom.contains(key_of(r))) require(latest[r].has_value());
    }
    require(top.size_bytes() <= top.capacity_bytes());
    require(bottom.size_bytes() <= bottom.capacity_bytes());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::uint8_t setup = data[0];
  std::uint64_t capacity = 256 + std::uint64_t{data[1]} * 64;
  std::vector<operation> operations;
  for (std::size_t i = 2; i + 3 <= size && operations.size() < 4096; i += 3)
    operations.push_back({data[i], data[i + 1], data[i + 2]});
  std::size_t shards = (setup & 4) != 0 ? 2 : 1;
  auto write = (setup & 8) != 0 ? cy::write_policy::write_back : cy::write_policy::write_through;
  switch (setup % 3) {
    case 0:
      check_memory_tier<cy::eviction::s3fifo>(operations, capacity, shards);
      check_tiered<cy::eviction::s3fifo>(operations, capacity, write);
      break;
    case 1:
      check_memory_tier<cy::eviction::lru>(operations, capacity, shards);
      check_tiered<cy::eviction::lru>(operations, capacity, write);
      break;
    default:
      check_memory_tier<cy::eviction::sieve>(operations, capacity, shards);
      check_tiered<cy::eviction::sieve>(operations, capacity, write);
      break;
  }
  return 0;
}
