// conveyor/cache/redis/command.hpp: encodes Redis commands as RESP2 arrays of
// bulk strings, appended to one buffer so that a pipeline of commands goes out
// in a single write.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace conveyor::redis {

/// Appends commands to a request buffer.
///
/// Usage: `command_writer w(buffer); w.begin(3); w.arg("SET"); w.arg(key); w.arg(value);`
/// The caller announces the argument count with `begin` and then supplies
/// exactly that many arguments. Allocation: grows the target string.
/// Thread-safety: none. Binary-safe: arguments may hold any bytes.
class command_writer {
 public:
  explicit command_writer(std::string& target) noexcept : target_(&target) {}

  /// Starts a command of `argument_count` arguments (the command name included).
  void begin(std::size_t argument_count) { append_header('*', argument_count); }

  void arg(std::string_view text) {
    append_header('$', text.size());
    target_->append(text);
    target_->append("\r\n");
  }
  void arg(std::span<const std::byte> bytes) {
    arg(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  void arg(std::int64_t number) {
    char digits[24];
    auto result = std::to_chars(digits, digits + sizeof digits, number);
    arg(std::string_view(digits, static_cast<std::size_t>(result.ptr - digits)));
  }

  /// Appends a whole command whose arguments are all text.
  void command(std::initializer_list<std::string_view> arguments) {
    begin(arguments.size());
    for (auto argument : arguments) arg(argument);
  }

 private:
  void append_header(char marker, std::size_t count) {
    char digits[24];
    auto result = std::to_chars(digits, digits + sizeof digits, count);
    target_->push_back(marker);
    target_->append(digits, static_cast<std::size_t>(result.ptr - digits));
    target_->append("\r\n");
  }
  std::string* target_;
};

}  // namespace conveyor::redis
