// conveyor/decode/decode.hpp: the decode stage, from text records to columns.
//
//   | decode(bits<float>("bloomfilter", 1024) >> column<"x">,
//            two_grams({"GivenName", "Surname", "Birthday"}) >> column<"y">)
//
// Call forms: `decode(pipe, decoders...)` and `pipe | decode(decoders...)`.
// Columns in: `text_records<"record">` (from tsv_file / csv_file). Columns
// out: one dense column per decoder, named with `>> column<"name">`, of the
// decoder's dtype and width; the text column is not passed on (decode makes a
// new batch, as tf.data's map makes a new element). Allocates: the output
// columns from the pipeline's pool, nothing per record. Thread: whichever runs
// its part of the chain (a parallel worker when upstream of parallel).
// Errors: a bad field (a bit string of the wrong length or with a character
// other than 0/1, invalid UTF-8, a malformed integer set) is a data_error
// naming the file, the record and the byte offset of the bad character; under
// on_error::skip the record is dropped from the batch and counted.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/int_set.hpp"
#include "conveyor/decode/two_gram.hpp"
#include "conveyor/source/tsv.hpp"

namespace conveyor {

/// Names a field of a record: by header name, or by position (negative
/// positions count from the end: -1 is the last field).
class field_ref {
 public:
  field_ref(const char* name) : name_(name) {}         // NOLINT: implicit, reads like a name
  field_ref(std::string name) : name_(std::move(name)) {}  // NOLINT
  static field_ref at(int position) {
    field_ref ref{std::string()};
    ref.position_ = position;
    ref.by_name_ = false;
    return ref;
  }
  /// The field's column in `file`; throws data_error naming the file and field.
  [[nodiscard]] std::size_t resolve(const delimited_file& file) const {
    if (by_name_) return file.column_index(name_);
    auto count = static_cast<int>(file.header().size());
    int index = position_ < 0 ? count + position_ : position_;
    if (index < 0 || index >= count)
      throw data_error("no field at position " + std::to_string(position_) + " (the header has " +
                           std::to_string(count) + " fields)",
                       file.path());
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
  [[nodiscard]] std::vector<std::size_t> resolve(const delimited_file& file) const {
    std::vector<std::size_t> columns;
    if (leading_) {
      for (std::size_t c = 0; c + drop_last_ < file.header().size(); ++c) columns.push_back(c);
    } else {
      for (const auto& ref : refs_) columns.push_back(ref.resolve(file));
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

/// bits<T>(field, width): a string of '0'/'1' -> width values of T (0 or 1).
/// T: float, float16, bfloat16 or std::uint8_t. AVX2 when the CPU has it.
template <bit_element T>
struct bits_decoder {
  using value_type = T;
  field_ref field;
  std::size_t bit_count;

  [[nodiscard]] std::size_t width() const noexcept { return bit_count; }
  [[nodiscard]] std::size_t bind(const delimited_file& file) const { return field.resolve(file); }
  void decode(const record_column& records, std::size_t row, std::size_t column, std::span<T> out) const {
    auto text = records.field(row, column);
    decode_bit_string(text, out, records.location(row, text));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::mix64(field.fingerprint() ^ bit_count ^ (sizeof(T) << 40) ^ 0xb175);
  }
};
template <bit_element T = float>
bits_decoder<T> bits(field_ref field, std::size_t width) {
  return {std::move(field), width};
}

/// two_grams<T>(fields, alphabet): the multi-hot two-gram label of the
/// concatenated fields, exactly as the dataset extension attack builds it
/// (see decoders.md); width alphabet.size() (1036 for the DEA alphabet).
template <bit_element T>
struct two_gram_decoder {
  using value_type = T;
  field_set fields;
  const gram_alphabet* alphabet;

  [[nodiscard]] std::size_t width() const noexcept { return alphabet->size(); }
  [[nodiscard]] std::vector<std::size_t> bind(const delimited_file& file) const { return fields.resolve(file); }
  void decode(const record_column& records, std::size_t row, const std::vector<std::size_t>& columns,
              std::span<T> out) const {
    constexpr std::size_t inline_fields = 16;
    std::array<std::string_view, inline_fields> small;
    std::array<std::uint64_t, inline_fields> small_offsets;
    std::vector<std::string_view> large;
    std::vector<std::uint64_t> large_offsets;
    std::span<std::string_view> views;
    std::span<std::uint64_t> offsets;
    if (columns.size() <= inline_fields) {
      views = std::span(small.data(), columns.size());
      offsets = std::span(small_offsets.data(), columns.size());
    } else {
      large.resize(columns.size());
      large_offsets.resize(columns.size());
      views = large;
      offsets = large_offsets;
    }
    for (std::size_t i = 0; i < columns.size(); ++i) views[i] = records.field(row, columns[i]);
    auto status = try_encode_two_grams(std::span<const std::string_view>(views.data(), views.size()), out, *alphabet);
    if (status) return;
    for (std::size_t i = 0; i < columns.size(); ++i) offsets[i] = records.offset_of(row, views[i]);
    encode_two_grams(std::span<const std::string_view>(views.data(), views.size()), out,
                     error_location{records.file().path(), records.record_index(row), records.byte_offset(row)},
                     *alphabet, std::span<const std::uint64_t>(offsets.data(), offsets.size()));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = detail::mix64(fields.fingerprint() ^ alphabet->size() ^ (sizeof(T) << 40) ^ 0x2963);
    for (std::size_t g = 0; g < alphabet->size(); ++g) h = detail::mix64(h ^ detail::hash_name(alphabet->gram(g)));
    return h;
  }
};
template <bit_element T = float>
two_gram_decoder<T> two_grams(field_set fields, const gram_alphabet& alphabet = gram_alphabet::dea()) {
  return {std::move(fields), &alphabet};
}

/// int_set<T>(field, width): a set of integers written `{628739, 459782}` ->
/// a multi-hot row of `width` values; a value >= width is a data_error.
template <bit_element T>
struct int_set_decoder {
  using value_type = T;
  field_ref field;
  std::size_t row_width;

  [[nodiscard]] std::size_t width() const noexcept { return row_width; }
  [[nodiscard]] std::size_t bind(const delimited_file& file) const { return field.resolve(file); }
  void decode(const record_column& records, std::size_t row, std::size_t column, std::span<T> out) const {
    auto text = records.field(row, column);
    parse_int_set_multi_hot(text, out, records.location(row, text));
  }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    return detail::mix64(field.fingerprint() ^ row_width ^ (sizeof(T) << 40) ^ 0x1575e7);
  }
};
template <bit_element T = float>
int_set_decoder<T> int_set(field_ref field, std::size_t width) {
  return {std::move(field), width};
}

/// A field decoder: binds to a file's header once per batch, then decodes a
/// record's fields into one row of width() values.
template <class D>
concept field_decoder = requires(const D& d, const delimited_file& file, const record_column& records) {
  typename D::value_type;
  { d.width() } -> std::convertible_to<std::size_t>;
  d.bind(file);
  d.decode(records, std::size_t{0}, d.bind(file), std::span<typename D::value_type>{});
  { d.fingerprint() } -> std::convertible_to<std::uint64_t>;
};

/// A decoder with the name of the column it writes: `decoder >> column<"x">`.
template <field_decoder D, fixed_string Name>
struct named_decoder {
  using column_spec = dense<Name, typename D::value_type>;
  D decoder;
};

template <field_decoder D, fixed_string Name>
named_decoder<D, Name> operator>>(D decoder, column_name<Name>) {
  return {std::move(decoder)};
}

namespace detail {

template <class T>
inline constexpr bool is_named_decoder = false;
template <class D, fixed_string Name>
inline constexpr bool is_named_decoder<named_decoder<D, Name>> = true;

template <class... Named>
struct decode_stage {
  static constexpr stage_kind kind = stage_kind::map;
  std::tuple<Named...> decoders;

  [[nodiscard]] std::string_view name() const noexcept { return "decode"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = 0xdec0de;
    std::apply(
        [&](const auto&... d) {
          ((h = mix64(h ^ d.decoder.fingerprint() ^ hash_name(std::remove_cvref_t<decltype(d)>::column_spec::name.view()))),
           ...);
        },
        decoders);
    return h;
  }

  template <class In>
  auto operator()(In&& in, const stage_context& ctx) const {
    static_assert(std::remove_cvref_t<In>::template has_column<"record">,
                  "conveyor: decode(...) reads text records (the column \"record\" that tsv_file and csv_file "
                  "produce), and upstream has none; read from a delimited file, or use map(...) for other columns.");
    using out_type = record_batch<typename Named::column_spec...>;
    const auto& records = in.template get<"record">();
    const std::size_t rows = in.rows();
    out_type out(ctx.pool, in.info(), in.indices());
    auto bound = std::apply([&](const auto&... d) { return std::make_tuple(d.decoder.bind(records.file())...); },
                            decoders);
    std::apply(
        [&](const auto&... d) {
          ((out.template get<std::remove_cvref_t<decltype(d)>::column_spec::name>() =
                dense_column<typename std::remove_cvref_t<decltype(d)>::column_spec::value_type>(ctx.pool, rows,
                                                                                                   d.decoder.width())),
           ...);
        },
        decoders);
    std::vector<std::uint8_t> keep;
    for (std::size_t r = 0; r < rows; ++r) {
      try {
        decode_row(records, r, out, bound, std::index_sequence_for<Named...>{});
      } catch (const data_error& bad) {
        ctx.reject(bad);  // rethrows unless the policy is skip
        if (keep.empty()) keep.assign(rows, 1);
        keep[r] = 0;
      }
    }
    if (!keep.empty()) out.keep_rows(keep);
    return out;
  }

 private:
  template <class Out, class Bound, std::size_t... I>
  void decode_row(const record_column& records, std::size_t r, Out& out, const Bound& bound,
                  std::index_sequence<I...>) const {
    (std::get<I>(decoders).decoder.decode(
         records, r, std::get<I>(bound),
         out.template get<std::tuple_element_t<I, std::tuple<Named...>>::column_spec::name>().row(r)),
     ...);
  }
};

}  // namespace detail

struct decode_fn {
  template <pipeline_or_source Upstream, class... Named>
    requires(sizeof...(Named) > 0 && (detail::is_named_decoder<Named> && ...))
  auto operator()(Upstream&& upstream, Named... decoders) const {
    auto p = as_pipeline(std::forward<Upstream>(upstream));
    static_assert(decltype(p)::batched, "conveyor: decode works on batches; add | batch(n) before it.");
    static_assert(std::remove_cvref_t<typename decltype(p)::batch_type>::template has_column<"record">,
                  "conveyor: decode(...) reads text records (the column \"record\" that tsv_file and csv_file "
                  "produce), and upstream has none; read from a delimited file, or use map(...) for other columns.");
    return std::move(p).then(detail::decode_stage<Named...>{std::make_tuple(std::move(decoders)...)});
  }
  template <class... Named>
    requires(sizeof...(Named) > 0 && (detail::is_named_decoder<Named> && ...))
  auto operator()(Named... decoders) const {
    return bound_closure<decode_fn, Named...>(std::move(decoders)...);
  }
};
/// decode(decoders >> column<"name">...): see the top of this header.
inline constexpr decode_fn decode{};

}  // namespace conveyor
