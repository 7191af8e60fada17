// conveyor/core/state.hpp: a pipeline's position, for checkpoints.
//
// Order is a pure function of the plan, so a position is small: the epoch, the
// next batch to deliver, and fingerprints that refuse a restore into a
// pipeline whose plan or data differ. It serializes to one line of text that
// survives a new process.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "conveyor/core/error.hpp"

namespace conveyor {

struct pipeline_state {
  std::uint64_t epoch = 0;
  std::uint64_t next_batch = 0;        ///< batches of the epoch already delivered
  std::uint64_t plan_fingerprint = 0;  ///< plan_spec::fingerprint()
  std::uint64_t record_count = 0;      ///< source size when the state was taken

  friend constexpr bool operator==(const pipeline_state&, const pipeline_state&) = default;

  /// "conveyor-state 1 epoch=E batch=B plan=HEX records=N"
  [[nodiscard]] std::string serialize() const {
    char text[160];
    std::snprintf(text, sizeof text, "conveyor-state 1 epoch=%llu batch=%llu plan=%016llx records=%llu",
                  static_cast<unsigned long long>(epoch), static_cast<unsigned long long>(next_batch),
                  static_cast<unsigned long long>(plan_fingerprint), static_cast<unsigned long long>(record_count));
    return text;
  }

  /// Parses serialize()'s output; throws data_error on anything else.
  static pipeline_state parse(std::string_view text) {
    pipeline_state s;
    unsigned long long e = 0, b = 0, p = 0, r = 0;
    int consumed = 0;
    std::string copy(text);
    if (std::sscanf(copy.c_str(), "conveyor-state 1 epoch=%llu batch=%llu plan=%16llx records=%llu%n", &e, &b, &p, &r,
                    &consumed) != 4 ||
        static_cast<std::size_t>(consumed) != copy.size())
      throw data_error("not a conveyor pipeline state: '" + copy + "'", "pipeline state");
    s.epoch = e;
    s.next_batch = b;
    s.plan_fingerprint = p;
    s.record_count = r;
    return s;
  }
};

}  // namespace conveyor
