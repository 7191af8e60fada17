// conveyor/cache/redis/slot_map.hpp: which Redis Cluster node serves which hash slot.
//
// Built from a CLUSTER SLOTS reply (only the masters are used: the tier reads
// and writes its own data, so replicas would only return stale misses). A MOVED
// redirect patches one slot immediately; the tier also refreshes the whole map.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conveyor/cache/redis/crc16.hpp"
#include "conveyor/cache/redis/endpoint.hpp"
#include "conveyor/cache/redis/resp_parser.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor::redis {

/// Slot -> master node table. Allocation: 32 KiB of slot owners plus the node
/// list. Thread-safety: none (the tier guards it). Pure data, no I/O.
class slot_map {
 public:
  static constexpr std::size_t no_node = static_cast<std::size_t>(-1);

  slot_map() : owner_(cluster_slot_count, unassigned) {}

  /// Parses a CLUSTER SLOTS reply received from `asked` (whose host stands in
  /// for an empty or "?" host in the reply). Throws `data_error` naming `source`
  /// when the reply does not have the documented shape.
  static slot_map from_cluster_slots(const resp_value& reply, const endpoint& asked,
                                     const std::string& source) {
    auto bad = [&](const std::string& why) {
      return data_error("malformed CLUSTER SLOTS reply: " + why, source);
    };
    if (reply.is_error()) throw bad("server answered " + reply.text);
    if (reply.kind != resp_value::type::array) throw bad("not an array");
    slot_map map;
    for (const auto& range : reply.elements) {
      if (range.kind != resp_value::type::array || range.elements.size() < 3)
        throw bad("range entry too short");
      const auto& first = range.elements[0];
      const auto& last = range.elements[1];
      const auto& master = range.elements[2];
      if (first.kind != resp_value::type::integer || last.kind != resp_value::type::integer ||
          first.integer < 0 || last.integer < first.integer || last.integer >= cluster_slot_count)
        throw bad("slot range out of bounds");
      if (master.kind != resp_value::type::array || master.elements.size() < 2 ||
          master.elements[1].kind != resp_value::type::integer || master.elements[1].integer <= 0 ||
          master.elements[1].integer > 65535)
        throw bad("node entry has no valid port");
      endpoint node;
      node.host = master.elements[0].text;
      if (node.host.empty() || node.host == "?") node.host = asked.host;
      node.port = static_cast<std::uint16_t>(master.elements[1].integer);
      map.assign_range(static_cast<std::uint16_t>(first.integer),
                       static_cast<std::uint16_t>(last.integer), node);
    }
    return map;
  }

  /// Makes `node` the owner of slots first..last (inclusive).
  void assign_range(std::uint16_t first, std::uint16_t last, const endpoint& node) {
    auto index = index_of(node);
    for (std::size_t slot = first; slot <= last && slot < cluster_slot_count; ++slot)
      owner_[slot] = static_cast<std::uint16_t>(index);
  }

  /// Index into nodes() of the slot's owner, or no_node when the slot is unassigned.
  [[nodiscard]] std::size_t node_for_slot(std::uint16_t slot) const noexcept {
    auto owner = slot < cluster_slot_count ? owner_[slot] : unassigned;
    return owner == unassigned ? no_node : owner;
  }

  [[nodiscard]] const std::vector<endpoint>& nodes() const noexcept { return nodes_; }
  [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }

  /// Number of slots that have an owner (16384 in a healthy cluster).
  [[nodiscard]] std::size_t assigned_slots() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(owner_.begin(), owner_.end(), [](auto o) { return o != unassigned; }));
  }

 private:
  static constexpr std::uint16_t unassigned = 0xffff;

  std::size_t index_of(const endpoint& node) {
    auto found = std::find(nodes_.begin(), nodes_.end(), node);
    if (found != nodes_.end()) return static_cast<std::size_t>(found - nodes_.begin());
    nodes_.push_back(node);
    return nodes_.size() - 1;
  }

  std::vector<std::uint16_t> owner_;
  std::vector<endpoint> nodes_;
};

}  // namespace conveyor::redis
