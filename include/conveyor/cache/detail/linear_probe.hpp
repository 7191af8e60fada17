// Growth of, and deletion from, a linear-probing hash table without
// tombstones, shared by the memory tier's entry index, S3-FIFO's ghost and
// the disk tier's key index.
#pragma once

#include <cstddef>
#include <vector>

namespace conveyor::detail {

/// Doubles `slots` (a power-of-two table probed forward; an empty one becomes
/// `initial` slots, a power of two) and reinserts every used slot at the
/// first free slot from its home; `mask` becomes the new size - 1.
/// `occupied` and `home` as for backward_shift_erase. std::bad_alloc leaves
/// the table as it was.
template <class Slot, class Occupied, class Home>
void grow_table(std::vector<Slot>& slots, std::size_t& mask, std::size_t initial,
                Occupied&& occupied, Home&& home) {
  std::vector<Slot> bigger(slots.empty() ? initial : slots.size() * 2);
  const std::size_t bigger_mask = bigger.size() - 1;
  for (const Slot& s : slots)
    if (occupied(s)) {
      std::size_t at = home(s) & bigger_mask;
      while (occupied(bigger[at])) at = (at + 1) & bigger_mask;
      bigger[at] = s;
    }
  slots.swap(bigger);
  mask = bigger_mask;
}

/// Empties slot `at` of `slots` (a power-of-two table probed forward, `mask`
/// its size - 1) by backward shift: each later slot of the same run moves into
/// the hole unless its home slot lies between the hole and itself, so every
/// remaining key stays reachable from its home and no tombstone is left.
/// `occupied(slot)` tells a used slot from an empty one, `home(slot)` gives a
/// used slot's home index; an empty slot is `Slot{}`.
template <class Slot, class Occupied, class Home>
void backward_shift_erase(std::vector<Slot>& slots, std::size_t mask, std::size_t at,
                          Occupied&& occupied, Home&& home) noexcept {
  std::size_t hole = at;
  for (std::size_t next = (hole + 1) & mask; occupied(slots[next]); next = (next + 1) & mask) {
    const std::size_t from = home(slots[next]) & mask;
    const bool stays = hole <= next ? (hole < from && from <= next) : (hole < from || from <= next);
    if (stays) continue;
    slots[hole] = slots[next];
    hole = next;
  }
  slots[hole] = Slot{};
}

}  // namespace conveyor::detail
