// tests/support/error_text.hpp: checking error messages in doctest tests.
#pragma once

#include <doctest/doctest.h>

#include <exception>
#include <functional>
#include <string>

namespace conveyor::test {

/// The what() of the exception `action` throws; fails the test if it throws none.
inline std::string error_text(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& error) {
    return error.what();
  }
  FAIL("expected an exception");
  return {};
}

/// Does `text` contain `part`? Says what it looked in when not.
inline bool contains(const std::string& text, const std::string& part) {
  const bool found = text.find(part) != std::string::npos;
  if (!found) MESSAGE("'" << part << "' is not in: " << text);
  return found;
}

}  // namespace conveyor::test
