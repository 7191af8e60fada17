// conveyor/decode/decode.hpp: the decode stage, from named columns to named
// dense columns.
//
//   | decode(bits<float>("bloomfilter", 1024) >> column<"x">,
//            two_grams({"GivenName", "Surname", "Birthday"}) >> column<"y">)
//   | decode(packed_bits<float>(column<"bits">, 1024) >> column<"x">)
//
// Call forms: `decode(pipe, decoders...)` and `pipe | decode(decoders...)`.
// Columns in: each decoder's input: text decoders (bits, two_grams, int_set)
// read fields of the batch's text column (text<...>, from tsv_file or
// csv_file); column decoders (packed_bits) read the dense column they name.
// `decode` checks at compile time that those columns exist with a usable type.
// Columns out: one dense column per decoder, named with `>> column<"name">`,
// of the decoder's dtype and width, first; then every input column that no
// decoder read and that is not text, moved through unchanged (so labels read
// from a .npy pass beside features decoded from packed bits). The columns a
// decoder read are not passed on.
// Binding: text decoders resolve their field names against the text column's
// schema once per epoch, when the epoch starts (so a missing field, or a file
// with no header, is an error before the first batch, naming the file).
// Allocates: the output columns (from the sink's pool when the pipeline
// delivers them, else pageable), nothing per record; the index column is moved
// from the input batch. Thread: whichever runs its part of the chain (a
// parallel worker when upstream of parallel).
// Errors: a bad field (a bit string of the wrong length or with a character
// other than 0/1, invalid UTF-8, a malformed integer set) is a data_error
// naming the file, the record and the byte offset of the bad character; a bad
// row of a dense input (nonzero padding bits) names the column and record.
// Under on_error::skip the record is dropped from the batch and counted.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/closure.hpp"
#include "conveyor/core/context.hpp"
#include "conveyor/core/detail/hash.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/core/stage.hpp"
#include "conveyor/core/text.hpp"
#include "conveyor/decode/bits.hpp"
#include "conveyor/decode/decoder.hpp"
#include "conveyor/decode/field.hpp"
#include "conveyor/decode/int_set.hpp"
#include "conveyor/decode/packed_bits.hpp"
#include "conveyor/decode/two_gram.hpp"

namespace conveyor {

namespace detail {

// By named_decoder's member type, not a specialization for named_decoder<D,
// Name>: nvcc 13.0 cannot deduce Name (see column_name_type).
template <class T>
concept is_named_decoder = std::same_as<typename T::named_decoder_type, T>;

/// The batch's one text column, or none.
template <class Batch>
struct text_column_of {
  static constexpr std::size_t count = 0;
};
template <class... Columns>
struct text_column_of<record_batch<Columns...>> {
  static constexpr std::size_t count = (std::size_t{is_text_column_v<Columns>} + ... + 0);
  static constexpr std::size_t index = [] {
    std::size_t i = 0, found = 0;
    ((is_text_column_v<Columns> ? (found = i, ++i) : ++i), ...);
    return found;
  }();
};

// READ THIS IF YOUR COMPILE BREAKS HERE: `Decoder` above reads fields of a text
// column, and the batch (`Batch` above: its columns) has none, or several.
template <class Decoder, class Batch, bool HasOneTextColumn>
struct text_input_check {
  static_assert(HasOneTextColumn,
                "conveyor: decode(...): this decoder reads fields of a text column (text<...>, from tsv_file or "
                "csv_file), and the batch upstream has none, or more than one; read a delimited file, or use a "
                "column decoder such as packed_bits(column<\"name\">, n).");
};

// READ THIS IF YOUR COMPILE BREAKS HERE: `Decoder` above reads the dense column
// named `Input` above, and the batch (`Batch` above: its columns) lacks it, or
// holds it with another value type or in device memory.
template <class Input, class Decoder, class Batch, bool Present, bool Usable>
struct column_input_check {
  static_assert(Present,
                "conveyor: decode(...): the batch upstream has no column with the name this decoder reads "
                "(Input above); produce it upstream (a source column) or fix the name.");
  static_assert(!Present || Usable,
                "conveyor: decode(...): the column this decoder reads (Input above) must be a host dense "
                "column of Decoder::input_value; declare the source column with that type.");
};

template <class Decoder, class Batch>
consteval bool column_input_usable() {
  if constexpr (Batch::template has_column<Decoder::input>) {
    using spec = typename Batch::template column_spec<Decoder::input>;
    return std::is_same_v<typename spec::storage, dense_column<typename Decoder::input_value>>;
  } else {
    return false;
  }
}

/// The check of decoder `Named`'s input against a Batch: a class whose
/// static_assert fires, naming the decoder, its input and the batch's
/// columns, when it is instantiated and the input is unusable.
template <class Named, class Batch>
struct input_check_of {
  static constexpr bool ok = text_column_of<Batch>::count == 1;
  using type = text_input_check<typename Named::decoder_type, readable_batch<Batch>, ok>;
};
template <class Named, class Batch>
  requires column_decoder<typename Named::decoder_type>
struct input_check_of<Named, Batch> {
  using D = typename Named::decoder_type;
  static constexpr bool ok = column_input_usable<D, Batch>();
  using type = column_input_check<readable_name<D::input>, D, readable_batch<Batch>,
                                  Batch::template has_column<D::input>, ok>;
};

/// Is column spec C read by one of the decoders (a text column, or a named input)?
template <class C, class... Named>
consteval bool consumed_by() {
  if constexpr (is_text_column_v<C>) {
    return true;
  } else {
    return ((column_decoder<typename Named::decoder_type> &&
             [] {
               if constexpr (column_decoder<typename Named::decoder_type>)
                 return Named::decoder_type::input == C::name;
               else
                 return false;
             }()) ||
            ...);
  }
}

/// The input columns decode passes through: those no decoder read.
template <class Batch, class... Named>
struct passthrough;
template <class... Columns, class... Named>
struct passthrough<record_batch<Columns...>, Named...> {
  using type = decltype(std::tuple_cat(
      std::declval<std::conditional_t<consumed_by<Columns, Named...>(), std::tuple<>, std::tuple<Columns>>>()...));
};

template <class Outputs, class Passed>
struct decode_batch_type;
template <class... Out, class... Passed>
struct decode_batch_type<std::tuple<Out...>, std::tuple<Passed...>> {
  using type = record_batch<Out..., Passed...>;
};

/// What a decoder's bind() returns (text decoders), or a placeholder.
template <class Named>
struct bound_fields {
  using type = int;
};
template <class Named>
  requires text_decoder<typename Named::decoder_type>
struct bound_fields<Named> {
  using type = decltype(std::declval<const typename Named::decoder_type&>().bind(std::declval<const text_schema&>()));
};

/// A decode stage bound to one epoch for input batches of type In.
template <class In, class... Named>
struct bound_decode {
  using out_type = typename decode_batch_type<std::tuple<typename Named::column_spec...>,
                                              typename passthrough<In, Named...>::type>::type;

  std::tuple<Named...> decoders;
  /// Each text decoder's bound fields (from the published schema), if any.
  std::optional<std::tuple<typename bound_fields<Named>::type...>> bound;

  out_type operator()(In&& in, const stage_context& ctx) const
    requires(text_column_of<In>::count == 1)
  {
    const auto& records = std::get<text_column_of<In>::index>(in.columns());
    if (bound) return run(std::move(in), ctx, &records, *bound);
    // The source published no schema: bind to the column's own, per batch.
    return run(std::move(in), ctx, &records, bind_all(records.schema()));
  }
  out_type operator()(In&& in, const stage_context& ctx) const
    requires(text_column_of<In>::count == 0)
  {
    return run(std::move(in), ctx, nullptr, std::tuple<typename bound_fields<Named>::type...>{});
  }

  auto bind_all(const text_schema& schema) const {
    return std::apply([&](const auto&... d) { return std::make_tuple(bind_one(d.decoder, schema)...); }, decoders);
  }

 private:
  template <class D>
  static auto bind_one(const D& d, const text_schema& schema) {
    if constexpr (text_decoder<D>) {
      return d.bind(schema);
    } else {
      return 0;
    }
  }

  template <class Bound>
  out_type run(In&& in, const stage_context& ctx, const text_column* records, const Bound& fields) const {
    const std::size_t rows = in.rows();
    out_type out(std::move(in).take_rows());
    // Output columns, from the sink's pool when delivered.
    std::apply(
        [&](const auto&... d) {
          ((out.template get<std::remove_cvref_t<decltype(d)>::column_spec::name>() =
                typename std::remove_cvref_t<decltype(d)>::column_spec::storage(
                    ctx.pool_for(std::remove_cvref_t<decltype(d)>::column_spec::name.view()), rows, d.decoder.width())),
           ...);
        },
        decoders);
    decode_columns(in, out, ctx, std::index_sequence_for<Named...>{});
    if (records != nullptr) decode_text(*records, out, ctx, fields, rows, std::index_sequence_for<Named...>{});
    move_passthrough(in, out, std::type_identity<typename passthrough<In, Named...>::type>{});
    return out;
  }

  template <std::size_t... I>
  void decode_columns(const In& in, out_type& out, const stage_context& ctx, std::index_sequence<I...>) const {
    (
        [&] {
          using N = std::tuple_element_t<I, std::tuple<Named...>>;
          if constexpr (column_decoder<typename N::decoder_type>) {
            std::get<I>(decoders).decoder.decode_rows(in.template get<N::decoder_type::input>(),
                                                      out.template get<N::column_spec::name>(), out.indices(), ctx);
          }
        }(),
        ...);
  }

  template <class Bound, std::size_t... I>
  void decode_text(const text_column& records, out_type& out, const stage_context& ctx, const Bound& fields,
                   std::size_t rows, std::index_sequence<I...>) const {
    constexpr bool any_text = (text_decoder<typename Named::decoder_type> || ...);
    if constexpr (any_text) {
      for (std::size_t r = 0; r < rows; ++r) {
        try {
          (
              [&] {
                using N = std::tuple_element_t<I, std::tuple<Named...>>;
                if constexpr (text_decoder<typename N::decoder_type>) {
                  std::get<I>(decoders).decoder.decode(records, r, std::get<I>(fields),
                                                       out.template get<N::column_spec::name>().row(r));
                }
              }(),
              ...);
        } catch (const data_error& bad) {
          ctx.reject(bad, r);  // rethrows unless the policy is skip; the pipeline drops row r
        }
      }
    }
  }

  template <class... Passed>
  static void move_passthrough(In& in, out_type& out, std::type_identity<std::tuple<Passed...>>) {
    ((out.template get<Passed::name>() = std::move(in.template get<Passed::name>())), ...);
  }
};

template <class... Named>
struct decode_stage {
  static constexpr stage_kind kind = stage_kind::map;
  CONVEYOR_STAGE_MESSAGES("decode(...)")
  std::tuple<Named...> decoders;

  [[nodiscard]] std::string_view name() const noexcept { return "decode"; }
  [[nodiscard]] std::uint64_t fingerprint() const noexcept {
    std::uint64_t h = salt::decode;
    std::apply(
        [&](const auto&... d) {
          ((h = combine(h, d.decoder.fingerprint() ^
                               hash_name(std::remove_cvref_t<decltype(d)>::column_spec::name.view()))),
           ...);
        },
        decoders);
    return h;
  }

  /// Once per epoch: checks the inputs (at compile time) and binds the text
  /// decoders' fields to the schema the source published.
  template <class In>
  auto bind(const build_info& info) const {
    ((void)sizeof(typename input_check_of<Named, In>::type), ...);
    bound_decode<In, Named...> bound{decoders, std::nullopt};
    if constexpr (text_column_of<In>::count == 1) {
      using text_spec = std::tuple_element_t<text_column_of<In>::index, typename In::column_types>;
      if (const text_schema* schema = info.schema_of(text_spec::name.view())) bound.bound = bound.bind_all(*schema);
    }
    return bound;
  }
};

}  // namespace detail

struct decode_fn {
  template <pipeline_or_source Upstream, class... Named>
    requires(sizeof...(Named) > 0 && (detail::is_named_decoder<Named> && ...))
  auto operator()(Upstream&& upstream, Named... decoders) const {
    using P = decltype(as_pipeline(std::forward<Upstream>(upstream)));
    if constexpr (!std::same_as<P, invalid_pipeline> && P::batched) {
      using batch = typename P::batch_type;
      if constexpr (!(detail::input_check_of<Named, batch>::ok && ...)) {
        // Report each unusable input, then stop the chain: building the stage
        // would only report the same missing column again from deep inside.
        ((void)sizeof(typename detail::input_check_of<Named, batch>::type), ...);
        return invalid_pipeline{};
      } else {
        return append_stage(
            std::forward<Upstream>(upstream),
            detail::decode_stage<Named...>{std::make_tuple(std::move(decoders)...)});
      }
    } else {
      return append_stage(std::forward<Upstream>(upstream),
                          detail::decode_stage<Named...>{std::make_tuple(std::move(decoders)...)});
    }
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
