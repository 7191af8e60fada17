// conveyor/gpu/device_decode.cuh: device-side decoding as pipeline stages
// after the stager (nvcc only): compact columns cross PCIe, full-width columns
// are built on the GPU.
//
//   auto pipe = ... | cy::to_cuda(0, 3)
//             | cy::gpu::expand_bits<"x", float>(1024)       // uint8 x 128 -> float x 1024
//             | cy::gpu::expand_labels<"y", float>(1036)     // int32 index lists -> multi-hot
//             | cy::cuda_sink();
//
// Call forms: `gpu::expand_bits<"x", T>(count, order)` and
// `gpu::expand_labels<"y", T>(width)` as closures after `to_device`/`to_cuda`
// (or after one another); `gpu::expand_bits<"x", T>(pipe, count, order)`.
// Columns: expand_bits replaces dense<"x", uint8_t, device> of width
// ceil(count / 8) (numpy.packbits rows) with dense<"x", T, device> of width
// count; expand_labels replaces dense<"y", int32_t, device> index lists
// (no_index padding, e.g. from two_gram_indices) with dense<"y", T, device> of
// width `width`. T: float, float16, bfloat16, uint8. Other columns pass
// through. A missing column or another dtype is a compile error.
// Memory: the output column from the stager's device pool; the input column
// goes back to it in stream order (after the kernel that read it).
// Thread and stream: the consumer's thread; the kernel (gpu::unpack_bits /
// gpu::expand_multi_hot, decode_kernels.cuh) runs on the consumer stream,
// which already waits for the batch's copies; a new ready event is recorded
// after it, so cuda_sink's ready_event() covers the expanded column.
// Errors: a width that does not match is a stage_error naming the stage (before
// any launch); a failed launch is a cuda_error inside a stage_error. Early
// exit: the stager's (it synchronizes its copy stream; kernels on the consumer
// stream are ordered before any reuse of the buffers they read).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "conveyor/core/closure.hpp"
#include "conveyor/core/detail/nodes.hpp"
#include "conveyor/core/pipeline.hpp"
#include "conveyor/gpu/decode_kernels.cuh"
#include "conveyor/gpu/to_device.hpp"

namespace conveyor::gpu {

namespace detail {

using conveyor::detail::build_env;
using conveyor::detail::clock;
using conveyor::detail::shared_event;

// Batch with the column named Out::name replaced by Out. Keyed by the new
// spec's name rather than a fixed_string parameter: nvcc 13 does not deduce a
// fixed_string in a partial specialization.
template <class Out, class Batch>
struct replace_column;
template <class Out, class... Columns>
struct replace_column<Out, record_batch<Columns...>> {
  using type = record_batch<std::conditional_t<Columns::name == Out::name, Out, Columns>...>;
};

// READ THIS IF YOUR COMPILE BREAKS HERE: the column named in the instantiation
// is missing or has another dtype or memory space.
template <bool Ok>
struct check_packed_bits_column {
  static_assert(
      Ok,
      "conveyor: gpu::expand_bits<\"name\", T>(count) reads dense<\"name\", std::uint8_t, "
      "memory_space::device> (packed bits copied by to_device); put it after to_device(...) and "
      "give it "
      "a packed uint8 column of that name.");
};
template <bool Ok>
struct check_index_list_column {
  static_assert(
      Ok,
      "conveyor: gpu::expand_labels<\"name\", T>(width) reads dense<\"name\", std::int32_t, "
      "memory_space::device> (index lists, e.g. two_gram_indices, copied by to_device); put it "
      "after "
      "to_device(...) and give it an int32 column of that name.");
};

template <class Batch, fixed_string Name, class Value>
consteval bool has_device_column() {
  if constexpr (!Batch::template has_column<Name>) {
    return false;
  } else {
    using spec = typename Batch::template column_spec<Name>;
    return std::is_same_v<typename spec::storage, dense_column<Value, memory_space::device>>;
  }
}

/// The per-batch work of the two stages.
template <fixed_string Name, bit_element T>
struct bits_expansion {
  using input = std::uint8_t;
  using output_spec = dense<Name, T, memory_space::device>;
  template <bool Ok>
  using check = check_packed_bits_column<Ok>;
  std::size_t count;
  bit_order order;
  static constexpr const char* label = "gpu::expand_bits";
  [[nodiscard]] std::size_t out_width() const noexcept { return count; }
  [[nodiscard]] std::size_t in_width() const noexcept { return (count + 7) / 8; }
  void launch(const std::uint8_t* in, std::size_t rows, std::size_t, T* out,
              cudaStream_t stream) const {
    unpack_bits(in, rows, count, out, order, stream);
  }
};
template <fixed_string Name, bit_element T>
struct label_expansion {
  using input = std::int32_t;
  using output_spec = dense<Name, T, memory_space::device>;
  template <bool Ok>
  using check = check_index_list_column<Ok>;
  std::size_t width;
  static constexpr const char* label = "gpu::expand_labels";
  [[nodiscard]] std::size_t out_width() const noexcept { return width; }
  [[nodiscard]] std::size_t in_width() const noexcept {
    return 0;
  }  // any number of indices per row
  void launch(const std::int32_t* in, std::size_t rows, std::size_t per_row, T* out,
              cudaStream_t stream) const {
    expand_multi_hot(in, rows, per_row, out, width, stream);
  }
};

template <fixed_string Name, class Expansion, class Up>
class expansion_stream {
 public:
  using batch_type =
      typename replace_column<typename Expansion::output_spec, typename Up::batch_type>::type;
  using value_type = typename Expansion::output_spec::value_type;

  expansion_stream(Up up, Expansion expansion, stage_counters& counters)
      : up_(std::move(up)), expansion_(expansion), counters_(&counters) {}

  void start(const epoch_plan& plan, std::uint64_t first) { up_.start(plan, first); }
  void stop() noexcept { up_.stop(); }

  std::optional<batch_type> next() {
    auto in = up_.next();
    if (!in) return std::nullopt;
    auto begin = clock::now();
    auto out = conveyor::detail::run_stage(Expansion::label, in->info(),
                                           [&] { return expand(std::move(*in)); });
    counters_->add_batch(out.rows(), out.size_bytes(), clock::now() - begin);
    return std::optional<batch_type>(std::move(out));
  }

  [[nodiscard]] const shared_event& ready_event() const noexcept { return ready_; }
  [[nodiscard]] const device_options& options() const noexcept { return up_.options(); }
  [[nodiscard]] const std::shared_ptr<buffer_pool>& pool() const noexcept { return up_.pool(); }

 private:
  batch_type expand(typename Up::batch_type&& in) {
    const cudaStream_t stream = options().consumer_stream;
    conveyor::detail::device_scope on(options().device);
    auto& packed = in.template get<Name>();
    if (expansion_.in_width() != 0 && packed.width() != expansion_.in_width())
      throw std::invalid_argument(std::string(Expansion::label) + "<\"" + std::string(Name.view()) +
                                  "\">: rows of " + std::to_string(packed.width()) +
                                  " values, expected " + std::to_string(expansion_.in_width()));
    dense_column<value_type, memory_space::device> expanded(pool(), packed.rows(),
                                                            expansion_.out_width());
    expansion_.launch(packed.data(), packed.rows(), packed.width(), expanded.data(), stream);
    shared_event ready = conveyor::detail::make_event();
    check_cuda(cudaEventRecord(ready.get(), stream), "cudaEventRecord");
    ready_ = std::move(ready);
    // Build the output batch: every column moves, Name is replaced.
    batch_type out(std::move(in).take_rows());
    move_columns(in, out, expanded, std::make_index_sequence<batch_type::column_count>{});
    return out;  // `in` (and its packed column) is released after the kernel, in stream order
  }
  template <class In, std::size_t... I>
  static void move_columns(In& in, batch_type& out,
                           dense_column<value_type, memory_space::device>& expanded,
                           std::index_sequence<I...>) {
    ((move_column<I>(in, out, expanded)), ...);
  }
  template <std::size_t I, class In>
  static void move_column(In& in, batch_type& out,
                          dense_column<value_type, memory_space::device>& expanded) {
    using spec = std::tuple_element_t<I, typename batch_type::column_types>;
    if constexpr (spec::name == Name) {
      std::get<I>(out.columns()) = std::move(expanded);
    } else {
      std::get<I>(out.columns()) = std::move(in.template get<spec::name>());
    }
  }

  Up up_;
  Expansion expansion_;
  stage_counters* counters_;
  shared_event ready_;
};

template <fixed_string Name, class Expansion>
struct expansion_stage {
  static constexpr stage_kind kind = stage_kind::stream;
  static constexpr stage_placement placement{.needs_batches = true, .host_only = false};
  static constexpr bool delivers_ready_event = true;  // a new ready event after the kernel
  CONVEYOR_STAGE_MESSAGES("a gpu::expand stage")
  Expansion expansion;

  [[nodiscard]] std::string_view name() const noexcept { return Expansion::label; }
  template <class In>
  using output = typename replace_column<typename Expansion::output_spec, In>::type;

  template <class Up>
  auto attach(Up&& up, build_env& env) const {
    using Stream = std::remove_cvref_t<Up>;
    static_assert(
        requires(const Stream& s) {
          s.pool();
          s.options();
          s.ready_event();
        },
        "conveyor: gpu::expand_bits and gpu::expand_labels follow to_device(...) or to_cuda(...) "
        "(or one "
        "another) directly.");
    return expansion_stream<Name, Expansion, Stream>(std::forward<Up>(up), expansion,
                                                     env.counters_for(Expansion::label));
  }
};

template <fixed_string Name, class Expansion, class Upstream>
auto append_expansion(Upstream&& upstream, Expansion expansion) {
  using P = decltype(as_pipeline(std::forward<Upstream>(upstream)));
  if constexpr (std::is_same_v<P, invalid_pipeline>) {
    return as_pipeline(std::forward<Upstream>(upstream));
  } else {
    constexpr bool ok =
        has_device_column<typename P::batch_type, Name, typename Expansion::input>();
    if constexpr (!ok) {
      (void)sizeof(typename Expansion::template check<false>);
      return invalid_pipeline{};
    } else {
      return append_stage(std::forward<Upstream>(upstream),
                          expansion_stage<Name, Expansion>{expansion});
    }
  }
}

}  // namespace detail

template <fixed_string Name, bit_element T = float>
struct expand_bits_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::size_t count, bit_order order = bit_order::big) const {
    if (count == 0) throw std::invalid_argument("gpu::expand_bits: count must be at least 1");
    return detail::append_expansion<Name>(std::forward<Upstream>(upstream),
                                          detail::bits_expansion<Name, T>{count, order});
  }
  auto operator()(std::size_t count, bit_order order = bit_order::big) const {
    return bound_closure<expand_bits_fn, std::size_t, bit_order>(count, order);
  }
};
/// gpu::expand_bits<"x", T>(count, order): see the top of this header.
template <fixed_string Name, bit_element T = float>
inline constexpr expand_bits_fn<Name, T> expand_bits{};

template <fixed_string Name, bit_element T = float>
struct expand_labels_fn {
  template <pipeline_or_source Upstream>
  auto operator()(Upstream&& upstream, std::size_t width) const {
    if (width == 0) throw std::invalid_argument("gpu::expand_labels: width must be at least 1");
    return detail::append_expansion<Name>(std::forward<Upstream>(upstream),
                                          detail::label_expansion<Name, T>{width});
  }
  auto operator()(std::size_t width) const {
    return bound_closure<expand_labels_fn, std::size_t>(width);
  }
};
/// gpu::expand_labels<"y", T>(width): see the top of this header.
template <fixed_string Name, bit_element T = float>
inline constexpr expand_labels_fn<Name, T> expand_labels{};

}  // namespace conveyor::gpu
