// A strict JSON reader for tests (RFC 8259): parse() throws
// std::runtime_error naming the byte offset of the first thing that is not
// JSON, else returns the document as a tree the test can walk. It exists so
// that the trace and stats tests check what a trace viewer or a dashboard will
// read without the build needing Python or a JSON library.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace conveyor::test {

struct json_value;
using json_array = std::vector<json_value>;
using json_object = std::map<std::string, json_value, std::less<>>;

struct json_value {
  std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<json_array>,
               std::shared_ptr<json_object>>
      value;

  [[nodiscard]] bool is_null() const { return std::holds_alternative<std::nullptr_t>(value); }
  [[nodiscard]] bool is_number() const { return std::holds_alternative<double>(value); }
  [[nodiscard]] bool is_string() const { return std::holds_alternative<std::string>(value); }
  [[nodiscard]] bool is_array() const {
    return std::holds_alternative<std::shared_ptr<json_array>>(value);
  }
  [[nodiscard]] bool is_object() const {
    return std::holds_alternative<std::shared_ptr<json_object>>(value);
  }
  [[nodiscard]] double number() const { return std::get<double>(value); }
  [[nodiscard]] const std::string& string() const { return std::get<std::string>(value); }
  [[nodiscard]] const json_array& array() const {
    return *std::get<std::shared_ptr<json_array>>(value);
  }
  [[nodiscard]] const json_object& object() const {
    return *std::get<std::shared_ptr<json_object>>(value);
  }
  [[nodiscard]] bool has(std::string_view key) const {
    return is_object() && object().find(key) != object().end();
  }
  /// The member `key` of an object; throws if this is not an object or has no such member.
  [[nodiscard]] const json_value& operator[](std::string_view key) const {
    auto it = object().find(key);
    if (it == object().end())
      throw std::runtime_error("json: no member \"" + std::string(key) + "\"");
    return it->second;
  }
};

class json_reader {
 public:
  explicit json_reader(std::string_view text) : text_(text) {}

  json_value document() {
    json_value v = value(0);
    space();
    if (at_ != text_.size()) fail("text after the document");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("json: " + what + " at byte " + std::to_string(at_));
  }
  void space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  char peek() {
    space();
    if (at_ >= text_.size()) fail("unexpected end");
    return text_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  void word(std::string_view w) {
    if (text_.substr(at_, w.size()) != w) fail("expected " + std::string(w));
    at_ += w.size();
  }

  json_value value(int depth) {
    if (depth > 64) fail("nesting too deep");
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return {string()};
      case 't':
        word("true");
        return {true};
      case 'f':
        word("false");
        return {false};
      case 'n':
        word("null");
        return {nullptr};
      default:
        return {number()};
    }
  }

  json_value object(int depth) {
    expect('{');
    auto members = std::make_shared<json_object>();
    if (peek() == '}') {
      ++at_;
      return {members};
    }
    for (;;) {
      if (peek() != '"') fail("expected a member name");
      std::string key = string();
      expect(':');
      if (members->count(key) != 0) fail("duplicate member \"" + key + "\"");
      members->emplace(std::move(key), value(depth + 1));
      if (peek() == ',') {
        ++at_;
        continue;
      }
      expect('}');
      return {members};
    }
  }

  json_value array(int depth) {
    expect('[');
    auto items = std::make_shared<json_array>();
    if (peek() == ']') {
      ++at_;
      return {items};
    }
    for (;;) {
      items->push_back(value(depth + 1));
      if (peek() == ',') {
        ++at_;
        continue;
      }
      expect(']');
      return {items};
    }
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_ >= text_.size()) fail("unterminated string");
      char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("unescaped control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated escape");
      char e = text_[at_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned code = 0;
          for (int i = 0; i < 4; ++i) {
            int d = at_ < text_.size() ? hex_digit(text_[at_]) : -1;
            if (d < 0) fail("bad \\u escape");
            code = code * 16 + static_cast<unsigned>(d);
            ++at_;
          }
          if (code >= 0x80)
            fail("\\u escape above 0x7f (not produced by conveyor, not decoded here)");
          out += static_cast<char>(code);
          break;
        }
        default:
          fail(std::string("bad escape \\") + e);
      }
    }
  }

  double number() {
    std::size_t begin = at_;
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    auto digits = [&] {
      std::size_t from = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      return at_ - from;
    };
    std::size_t integer_start = at_;
    if (digits() == 0) fail("expected a value");
    if (text_[integer_start] == '0' && at_ - integer_start > 1) fail("leading zero");
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (digits() == 0) fail("expected an exponent");
    }
    return std::strtod(std::string(text_.substr(begin, at_ - begin)).c_str(), nullptr);
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

/// Parses `text` as one JSON document; throws std::runtime_error if it is not.
inline json_value parse_json(std::string_view text) {
  return json_reader(text).document();
}

}  // namespace conveyor::test
