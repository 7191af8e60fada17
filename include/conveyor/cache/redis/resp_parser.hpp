// conveyor/cache/redis/resp_parser.hpp: an incremental, bounded RESP2 reply parser.
//
// Bytes arrive from the socket in arbitrary pieces; `resp_parser` keeps what it
// has not consumed yet, and `next()` yields each complete reply in order. The
// parser resumes where it stopped (a half-received bulk string or array is not
// re-scanned), so a multi-megabyte MGET reply costs one pass over its bytes.
//
// Every length the peer sends is checked against `resp_limits` before anything
// is allocated: a bulk string longer than `max_bulk_bytes`, an array with more
// than `max_array_elements` elements, nesting deeper than `max_depth`, or a
// header line longer than `max_line_bytes` is a protocol error, never a huge
// allocation. Array storage grows with the elements actually received.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/core/error.hpp"

namespace conveyor::redis {

/// One RESP2 reply. `text` holds simple strings, errors and bulk strings;
/// `integer` holds integers; `elements` holds arrays. Null bulk strings and
/// null arrays are `type::null`.
struct resp_value {
  enum class type : std::uint8_t { simple_string, error, integer, bulk_string, array, null };

  type kind = type::null;
  std::string text;
  std::int64_t integer = 0;
  std::vector<resp_value> elements;

  [[nodiscard]] bool is_error() const noexcept { return kind == type::error; }
  [[nodiscard]] bool is_null() const noexcept { return kind == type::null; }
  /// True for a simple string or bulk string equal to `expected`.
  [[nodiscard]] bool is_string(std::string_view expected) const noexcept {
    return (kind == type::simple_string || kind == type::bulk_string) && text == expected;
  }
};

/// Bounds on what a peer may send. The defaults match Redis's own limits for
/// bulk strings (proto-max-bulk-len, 512 MiB) and are generous elsewhere.
struct resp_limits {
  std::uint64_t max_bulk_bytes = 512ull << 20;
  std::uint64_t max_array_elements = 1ull << 24;
  std::size_t max_depth = 8;
  std::size_t max_line_bytes = 64 * 1024;
};

/// Incremental RESP2 parser.
///
/// Allocation: keeps unconsumed input (compacted as replies are consumed) and
/// the partially built reply. Thread-safety: none; one parser per connection.
/// Errors: `next()` throws `data_error` naming `source`, the reply's index on
/// this stream and the stream byte offset of the offending byte. After an error
/// the stream is unusable; call `reset()` (drop the connection) before reuse.
class resp_parser {
 public:
  explicit resp_parser(std::string source = "redis", resp_limits limits = {})
      : source_(std::move(source)), limits_(limits) {}

  /// Appends received bytes. Allocates when the buffer must grow.
  void feed(std::string_view bytes) {
    compact();
    buffer_.append(bytes.data(), bytes.size());
  }

  /// Tries to complete the next reply. Returns true and moves it into `out`,
  /// or false when more bytes are needed. Throws `data_error` on bad input.
  bool next(resp_value& out) {
    for (;;) {
      resp_value value;
      if (pending_bulk_ >= 0) {
        auto need = static_cast<std::size_t>(pending_bulk_) + 2;
        if (available() < need) return false;
        const char* at = buffer_.data() + read_;
        if (at[need - 2] != '\r' || at[need - 1] != '\n')
          fail("bulk string not terminated by CRLF", read_ + need - 2);
        value.kind = resp_value::type::bulk_string;
        value.text.assign(at, need - 2);
        read_ += need;
        pending_bulk_ = -1;
      } else {
        switch (read_header(value)) {
          case header::need_more:
            return false;
          case header::opened_array:
          case header::opened_bulk:
            continue;
          case header::complete:
            break;
        }
      }
      if (deliver(std::move(value), out)) return true;
    }
  }

  /// Forgets all buffered input and partial state (after a dropped connection).
  void reset() noexcept {
    buffer_.clear();
    read_ = 0;
    stream_offset_ = 0;
    replies_ = 0;
    pending_bulk_ = -1;
    stack_.clear();
  }

  /// Bytes received but not yet consumed by a complete reply or header.
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return available(); }
  /// Complete top-level replies returned so far.
  [[nodiscard]] std::uint64_t replies_parsed() const noexcept { return replies_; }
  [[nodiscard]] const resp_limits& limits() const noexcept { return limits_; }

 private:
  struct frame {
    resp_value array;
    std::uint64_t remaining;
  };
  enum class header : std::uint8_t { need_more, complete, opened_array, opened_bulk };

  [[nodiscard]] std::size_t available() const noexcept { return buffer_.size() - read_; }

  // Drops consumed bytes once they dominate the buffer, so memory follows the
  // unconsumed input and each byte is moved at most a constant number of times.
  void compact() {
    if (read_ == 0 || read_ < buffer_.size() / 2) return;
    stream_offset_ += read_;
    buffer_.erase(0, read_);
    read_ = 0;
  }

  [[noreturn]] void fail(const std::string& message, std::size_t buffer_position) const {
    throw data_error("RESP protocol error: " + message, source_, replies_,
                     stream_offset_ + buffer_position);
  }

  std::int64_t parse_number(std::string_view digits, std::size_t position) const {
    std::int64_t number = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty())
      fail("malformed number '" + std::string(digits.substr(0, 32)) + "'", position);
    return number;
  }

  // Reads one "<type><payload>\r\n" header. Scalars complete `value`; '$' sets
  // pending_bulk_; '*' pushes a frame (or completes an empty/null array).
  header read_header(resp_value& value) {
    const char* begin = buffer_.data() + read_;
    auto window = std::min(available(), limits_.max_line_bytes + 2);
    const void* lf = std::memchr(begin, '\n', window);
    if (lf == nullptr) {
      if (available() >= limits_.max_line_bytes + 2) fail("header line too long", read_);
      return header::need_more;
    }
    auto line_length = static_cast<std::size_t>(static_cast<const char*>(lf) - begin);
    if (line_length < 2 || begin[line_length - 1] != '\r')
      fail("header line not terminated by CRLF or empty", read_ + line_length);
    std::string_view payload(begin + 1, line_length - 2);
    auto header_position = read_;
    char marker = begin[0];
    read_ += line_length + 1;
    switch (marker) {
      case '+':
        value.kind = resp_value::type::simple_string;
        value.text.assign(payload);
        return header::complete;
      case '-':
        value.kind = resp_value::type::error;
        value.text.assign(payload);
        return header::complete;
      case ':':
        value.kind = resp_value::type::integer;
        value.integer = parse_number(payload, header_position + 1);
        return header::complete;
      case '$': {
        auto length = parse_number(payload, header_position + 1);
        if (length == -1) {
          value.kind = resp_value::type::null;
          return header::complete;
        }
        if (length < 0) fail("negative bulk length", header_position + 1);
        if (static_cast<std::uint64_t>(length) > limits_.max_bulk_bytes)
          fail("bulk length " + std::to_string(length) + " exceeds limit", header_position + 1);
        pending_bulk_ = length;
        return header::opened_bulk;
      }
      case '*': {
        auto count = parse_number(payload, header_position + 1);
        value.kind = resp_value::type::array;
        if (count == -1) {
          value.kind = resp_value::type::null;
          return header::complete;
        }
        if (count < 0) fail("negative array length", header_position + 1);
        if (static_cast<std::uint64_t>(count) > limits_.max_array_elements)
          fail("array length " + std::to_string(count) + " exceeds limit", header_position + 1);
        if (count == 0) return header::complete;
        if (stack_.size() + 1 > limits_.max_depth)
          fail("arrays nested too deeply", header_position);
        // Reserve what the bytes already received could hold at most (each element
        // takes at least 3 bytes), never what the peer merely announced.
        value.elements.reserve(
            std::min<std::size_t>(static_cast<std::size_t>(count), available() / 3 + 1));
        stack_.push_back(frame{std::move(value), static_cast<std::uint64_t>(count)});
        return header::opened_array;
      }
      default:
        fail("unknown type byte 0x" + hex(static_cast<unsigned char>(marker)), header_position);
    }
  }

  // Places a completed value into the innermost open array, closing arrays that
  // become full; returns true when a top-level reply is complete.
  bool deliver(resp_value value, resp_value& out) {
    while (!stack_.empty()) {
      auto& top = stack_.back();
      top.array.elements.push_back(std::move(value));
      if (--top.remaining != 0) return false;
      value = std::move(top.array);
      stack_.pop_back();
    }
    out = std::move(value);
    ++replies_;
    return true;
  }

  static std::string hex(unsigned char byte) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[byte >> 4], digits[byte & 15]};
  }

  std::string source_;
  resp_limits limits_;
  std::string buffer_;
  std::size_t read_ = 0;             // first unconsumed byte in buffer_
  std::uint64_t stream_offset_ = 0;  // stream offset of buffer_[0]
  std::uint64_t replies_ = 0;
  std::int64_t pending_bulk_ = -1;  // body length of a bulk whose header was read
  std::vector<frame> stack_;
};

}  // namespace conveyor::redis
