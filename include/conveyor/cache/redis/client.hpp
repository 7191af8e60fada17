// conveyor/cache/redis/client.hpp: runs batches of single-key commands against
// one Redis server or a Redis Cluster, with deadlines, reconnects and redirects.
//
// The client owns one io_context and one connection per node and drives them
// synchronously on the caller's thread. A batch is split per node; the
// per-node pipelines run concurrently under one deadline. In cluster mode the
// client learns the slot map with CLUSTER SLOTS, follows MOVED (patching the
// slot, then refreshing the whole map) and ASK (ASKING + the command, once).
// A node that fails is closed and put in exponential backoff; while it backs
// off, commands routed to it fail at once instead of waiting for a deadline.
#pragma once

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/cache/redis/command.hpp"
#include "conveyor/cache/redis/connection.hpp"
#include "conveyor/cache/redis/crc16.hpp"
#include "conveyor/cache/redis/endpoint.hpp"
#include "conveyor/cache/redis/slot_map.hpp"

namespace conveyor::redis {

struct client_options {
  std::vector<endpoint> servers{endpoint{}};  ///< the server, or cluster seed nodes
  bool cluster = false;
  connection_options connection;
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  unsigned max_redirects = 3;  ///< redirect rounds per batch before giving up
};

/// Event counters (not per key): how often each failure path ran.
struct client_counters {
  std::uint64_t connects = 0;  ///< successful connects (first and reconnects)
  std::uint64_t connect_failures = 0;
  std::uint64_t request_failures = 0;  ///< exchanges that failed (timeout, reset, protocol)
  std::uint64_t protocol_errors = 0;   ///< of which the server broke RESP
  std::uint64_t fast_failures = 0;     ///< commands refused at once during backoff
  std::uint64_t moved_redirects = 0;
  std::uint64_t ask_redirects = 0;
  std::uint64_t slot_map_refreshes = 0;
};

/// The single-key commands a cache tier needs.
enum class command_kind : std::uint8_t { get, set, del, exists };

/// One command's outcome: `ok` false means no answer (network, protocol,
/// backoff or too many redirects); otherwise `reply` is the server's reply,
/// which may itself be a Redis error.
struct command_result {
  bool ok = false;
  resp_value reply;
};

/// Allocation: connections, request buffers and replies per batch.
/// Thread-safety: none; the caller serializes (redis_tier holds a mutex).
/// Errors: `run` does not throw for server trouble; only std::bad_alloc escapes.
class client {
 public:
  using clock = std::chrono::steady_clock;

  explicit client(client_options options) : options_(std::move(options)) {
    if (!options_.cluster && !options_.servers.empty()) node_index(options_.servers.front());
  }

  /// Runs `kind` for each key (with values[i] and a TTL in ms > 0 for set).
  std::vector<command_result> run(command_kind kind, std::span<const std::string> keys,
                                  std::span<const std::span<const std::byte>> values = {},
                                  std::int64_t ttl_ms = 0) {
    std::vector<command_result> results(keys.size());
    std::vector<item> pending(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) pending[i].index = i;
    if (options_.cluster && (slots_.empty() || slots_stale_)) refresh_slot_map();
    for (unsigned round = 0; round <= options_.max_redirects && !pending.empty(); ++round) {
      std::vector<std::vector<item>> per_node(nodes_.size());
      for (auto& entry : pending) {
        auto node = entry.ask_node != no_node ? entry.ask_node : route(keys[entry.index]);
        if (node == no_node) continue;  // no owner known: stays failed
        if (node >= per_node.size()) per_node.resize(nodes_.size());
        per_node[node].push_back(entry);
      }
      pending.clear();
      bool moved = false;
      run_round(kind, keys, values, ttl_ms, per_node, results, pending, moved);
      if (moved) refresh_slot_map();
    }
    return results;
  }

  [[nodiscard]] const client_counters& counters() const noexcept { return counters_; }

  /// Forces CLUSTER SLOTS now; returns whether a node answered.
  bool refresh_slot_map() {
    ++counters_.slot_map_refreshes;
    std::vector<endpoint> candidates = slots_.nodes();
    for (const auto& seed : options_.servers)
      if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end())
        candidates.push_back(seed);
    for (const auto& candidate : candidates) {
      auto node = node_index(candidate);
      if (!ready(node)) continue;
      try {
        std::string request;
        command_writer(request).command({"CLUSTER", "SLOTS"});
        auto replies = nodes_[node].link->exchange(std::move(request), 1);
        auto map = slot_map::from_cluster_slots(replies.at(0), candidate,
                                                "redis " + candidate.to_string());
        if (map.empty()) continue;
        slots_ = std::move(map);
        slots_stale_ = false;
        for (const auto& known : slots_.nodes()) node_index(known);
        nodes_[node].healthy();
        return true;
      } catch (const data_error&) {
        ++counters_.protocol_errors;
        mark_down(node);
      } catch (const io_error&) {
        mark_down(node);
      }
    }
    return false;
  }

 private:
  static constexpr std::size_t no_node = slot_map::no_node;

  struct item {
    std::size_t index = 0;
    std::size_t ask_node = no_node;  // set after an ASK redirect
  };

  struct node_state {
    std::unique_ptr<connection> link;
    clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
    void healthy() noexcept { backoff = std::chrono::milliseconds{0}; }
  };

  std::size_t node_index(const endpoint& where) {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].link->where() == where) return i;
    nodes_.push_back(node_state{std::make_unique<connection>(io_, where, options_.connection)});
    return nodes_.size() - 1;
  }

  std::size_t route(const std::string& key) {
    if (!options_.cluster) return nodes_.empty() ? no_node : 0;
    auto owner = slots_.node_for_slot(key_slot(key));
    return owner == no_node ? no_node : node_index(slots_.nodes()[owner]);
  }

  // Connected, or connectable now. A node in backoff answers false at once.
  bool ready(std::size_t node) {
    auto& state = nodes_[node];
    if (state.link->is_open()) return true;
    if (clock::now() < state.retry_at) return false;
    try {
      state.link->connect();
      ++counters_.connects;
      return true;
    } catch (const data_error&) {
      ++counters_.protocol_errors;
    } catch (const io_error&) {
    }
    ++counters_.connect_failures;
    mark_down(node);
    return false;
  }

  void mark_down(std::size_t node) {
    auto& state = nodes_[node];
    state.link->close();
    state.backoff = state.backoff.count() == 0 ? options_.backoff_initial
                                               : std::min(state.backoff * 2, options_.backoff_max);
    state.retry_at = clock::now() + state.backoff;
    if (options_.cluster) slots_stale_ = true;
  }

  static void encode(command_writer& writer, command_kind kind, const std::string& key,
                     std::span<const std::byte> value, std::int64_t ttl_ms) {
    switch (kind) {
      case command_kind::get:
        writer.command({"GET", key});
        break;
      case command_kind::del:
        writer.command({"DEL", key});
        break;
      case command_kind::exists:
        writer.command({"EXISTS", key});
        break;
      case command_kind::set:
        writer.begin(ttl_ms > 0 ? 5 : 3);
        writer.arg(std::string_view("SET"));
        writer.arg(std::string_view(key));
        writer.arg(value);
        if (ttl_ms > 0) {
          writer.arg(std::string_view("PX"));
          writer.arg(ttl_ms);
        }
        break;
    }
  }

  void run_round(command_kind kind, std::span<const std::string> keys,
                 std::span<const std::span<const std::byte>> values, std::int64_t ttl_ms,
                 std::vector<std::vector<item>>& per_node, std::vector<command_result>& results,
                 std::vector<item>& retry, bool& moved) {
    std::vector<connection*> started;
    std::vector<std::size_t> started_nodes;
    for (std::size_t node = 0; node < per_node.size(); ++node) {
      if (per_node[node].empty()) continue;
      if (!ready(node)) {
        counters_.fast_failures += per_node[node].size();
        continue;
      }
      std::string request;
      command_writer writer(request);
      std::size_t reply_count = 0;
      for (const auto& entry : per_node[node]) {
        if (entry.ask_node != no_node) {
          writer.command({"ASKING"});
          ++reply_count;
        }
        auto value = kind == command_kind::set ? values[entry.index] : std::span<const std::byte>{};
        encode(writer, kind, keys[entry.index], value, ttl_ms);
        ++reply_count;
      }
      nodes_[node].link->start_exchange(std::move(request), reply_count);
      started.push_back(nodes_[node].link.get());
      started_nodes.push_back(node);
    }
    if (started.empty()) return;
    connection::drive(io_, started, clock::now() + options_.connection.io_timeout);
    for (std::size_t s = 0; s < started.size(); ++s) {
      auto node = started_nodes[s];
      std::vector<resp_value> replies;
      try {
        replies = started[s]->take_replies();
      } catch (const data_error&) {
        ++counters_.protocol_errors;
        ++counters_.request_failures;
        mark_down(node);
        continue;
      } catch (const io_error&) {
        ++counters_.request_failures;
        mark_down(node);
        continue;
      }
      nodes_[node].healthy();
      std::size_t next_reply = 0;
      for (const auto& entry : per_node[node]) {
        if (entry.ask_node != no_node) ++next_reply;  // ASKING's +OK
        auto& reply = replies[next_reply++];
        if (reply.is_error() && redirect(reply.text, entry, retry, moved)) continue;
        results[entry.index] = command_result{true, std::move(reply)};
      }
    }
  }

  // Handles "MOVED <slot> <host:port>" and "ASK <slot> <host:port>".
  bool redirect(const std::string& error, item entry, std::vector<item>& retry, bool& moved) {
    bool is_moved = error.starts_with("MOVED ");
    bool is_ask = error.starts_with("ASK ");
    if (!options_.cluster || (!is_moved && !is_ask)) return false;
    auto slot_start = error.find(' ') + 1;
    auto slot_end = error.find(' ', slot_start);
    if (slot_end == std::string::npos) return false;
    unsigned slot = 0;
    auto [end, ec] = std::from_chars(error.data() + slot_start, error.data() + slot_end, slot);
    endpoint target;
    if (ec != std::errc{} || slot >= cluster_slot_count ||
        !endpoint::parse(std::string_view(error).substr(slot_end + 1), target))
      return false;
    if (is_moved) {
      ++counters_.moved_redirects;
      slots_.assign_range(static_cast<std::uint16_t>(slot), static_cast<std::uint16_t>(slot),
                          target);
      node_index(target);
      entry.ask_node = no_node;
      moved = true;
    } else {
      ++counters_.ask_redirects;
      entry.ask_node = node_index(target);
    }
    retry.push_back(entry);
    return true;
  }

  client_options options_;
  boost::asio::io_context io_;  // declared before nodes_: outlives connections
  std::vector<node_state> nodes_;
  slot_map slots_;
  bool slots_stale_ = false;
  client_counters counters_;
};

}  // namespace conveyor::redis
