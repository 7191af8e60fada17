// conveyor/decode/field.hpp: naming the fields of a text column.
//
// A decoder over text names the fields it reads by header name or by
// position; it resolves them against the column's text_schema once per epoch
// (decode binds when the epoch's chain is built), so a missing field is an
// error before the first batch, naming the file and the fields it has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/error.hpp"
#include "conveyor/core/text.hpp"

namespace conveyor {

/// Names a field of a record: by header name, or by position (negative
/// positions count from the end: -1 is the last field).
class field_ref {
 public:
  field_ref(const char* name) : name_(name) {}             // NOLINT: implicit, reads like a name
  field_ref(std::string name) : name_(std::move(name)) {}  // NOLINT
  static field_ref at(int position) {
    field_ref ref{std::string()};
    ref.position_ = position;
    ref.by_name_ = false;
    return ref;
  }
  /// The field's position in `schema`; throws data_error naming the origin
  /// and the fields it has.
  [[nodiscard]] std::size_t resolve(const text_schema& schema) const {
    if (by_name_) return schema.require(name_);
    auto count = static_cast<int>(schema.fields.size());
    int index = position_ < 0 ? count + position_ : position_;
    if (index < 0 || index >= count)
      throw data_error("no field at position " + std::to_string(position_) + " (the header has " +
                           std::to_string(count) + " fields)",
                       schema.origin);
    return static_cast<std::size_t>(index);
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::mix64(detail::hash_name(name_) ^ static_cast<std::uint64_t>(position_) ^ (by_name_ ? 1 : 2));
  }

 private:
  std::string name_;
  int position_ = 0;
  bool by_name_ = true;
};

/// A set of fields: a list of refs, or every field but the last `k`.
class field_set {
 public:
  field_set(std::initializer_list<field_ref> refs) : refs_(refs) {}
  explicit field_set(std::vector<field_ref> refs) : refs_(std::move(refs)) {}
  static field_set all_but_last(std::size_t k) {
    field_set set{std::vector<field_ref>{}};
    set.drop_last_ = k;
    set.leading_ = true;
    return set;
  }
  [[nodiscard]] std::vector<std::size_t> resolve(const text_schema& schema) const {
    std::vector<std::size_t> columns;
    if (leading_) {
      for (std::size_t c = 0; c + drop_last_ < schema.fields.size(); ++c) columns.push_back(c);
    } else {
      for (const auto& ref : refs_) columns.push_back(ref.resolve(schema));
    }
    return columns;
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = leading_ ? detail::mix64(drop_last_ + 77) : 0x51;
    for (const auto& ref : refs_) h = detail::mix64(h ^ ref.fingerprint());
    return h;
  }

 private:
  std::vector<field_ref> refs_;
  std::size_t drop_last_ = 0;
  bool leading_ = false;
};

}  // namespace conveyor
