// libFuzzer target for conveyor::redis::resp_parser.
//
// The first input byte picks a chunk size; the rest is fed to two parsers, one
// all at once and one in chunks. Both must agree: the same replies (compared
// by re-encoding them) and the same outcome (error or not). Small limits let
// the fuzzer reach every bound; a crash, a hang, an over-limit allocation or a
// disagreement is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "conveyor/cache/redis/resp_parser.hpp"

namespace {
using conveyor::redis::resp_value;

void describe(const resp_value& value, std::string& out) {
  out += std::to_string(static_cast<int>(value.kind));
  out += ':';
  switch (value.kind) {
    case resp_value::type::integer:
      out += std::to_string(value.integer);
      break;
    case resp_value::type::array:
      out += std::to_string(value.elements.size()) + "[";
      for (const auto& element : value.elements) describe(element, out);
      out += "]";
      break;
    case resp_value::type::null:
      break;
    default:
      out += std::to_string(value.text.size()) + "=" + value.text;
  }
  out += ';';
}

conveyor::redis::resp_limits fuzz_limits() {
  conveyor::redis::resp_limits limits;
  limits.max_bulk_bytes = 1024;
  limits.max_array_elements = 64;
  limits.max_depth = 4;
  limits.max_line_bytes = 32;
  return limits;
}

// Returns the description of all replies, and whether parsing failed.
std::string parse(std::string_view input, std::size_t chunk, bool& failed) {
  conveyor::redis::resp_parser parser("fuzz", fuzz_limits());
  std::string out;
  failed = false;
  try {
    for (std::size_t at = 0; at < input.size(); at += chunk) {
      parser.feed(input.substr(at, chunk));
      resp_value reply;
      while (parser.next(reply)) {
        describe(reply, out);
        if (reply.kind == resp_value::type::bulk_string && reply.text.size() > 1024) std::abort();
      }
    }
  } catch (const conveyor::data_error&) {
    failed = true;
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t chunk = 1 + data[0] % 16;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool whole_failed = false;
  bool chunked_failed = false;
  auto whole = parse(input, input.size() + 1, whole_failed);
  auto chunked = parse(input, chunk, chunked_failed);
  // The chunked parser may stop at an error before or after the whole parser
  // has delivered the same replies; replies before the error must agree.
  if (whole_failed != chunked_failed) std::abort();
  if (whole != chunked) std::abort();
  return 0;
}
