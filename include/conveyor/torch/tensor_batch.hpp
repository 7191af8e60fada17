// conveyor/torch/tensor_batch.hpp: a batch whose columns are torch::Tensors.
//
// What `to_torch()` delivers (see to_torch.hpp): one tensor per dense column,
// in column order, each of shape {rows, width} and of the column's dtype
// (float -> kFloat, double -> kDouble, conveyor::float16 -> kHalf,
// conveyor::bfloat16 -> kBFloat16, uint8/int8/int16/int32/int64 -> kByte, kChar,
// kShort, kInt, kLong), plus the record index of each row as an int64 tensor
// of shape {rows} on the CPU. On the CPU a tensor wraps the column's pooled
// buffer (torch::from_blob) and its deleter gives the buffer back to the pool:
// no copy, and the memory is not reused while any tensor (or view) of it lives.
//
// Unpacks with structured bindings in column order
// (`auto&& [x, y] = batch;`), and gives columns by name (`batch.get<"x">()`,
// `batch[cy::column<"x">]`, `batch.at("x")`), by position (`get<0>()`), the
// index column (`indices()`, `indices_tensor()`) and the batch's place in its
// epoch (`info()`). Move-only like record_batch; thread-compatible.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "conveyor/core/batch.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/fixed_string.hpp"
#include "conveyor/core/half.hpp"
#include "conveyor/core/pipeline.hpp"

namespace conveyor {

namespace detail {

/// The LibTorch dtype of a column value type; `known` is false for a type
/// LibTorch has no tensors of (the unsigned types wider than a byte in
/// LibTorch 1.13, std::byte, bool, structs).
template <class T>
struct torch_dtype {
  static constexpr bool known = false;
  static constexpr c10::ScalarType value = c10::ScalarType::Byte;  // unused: keeps errors to one
};
#define CONVEYOR_TORCH_DTYPE(type, scalar)                            \
  template <>                                                         \
  struct torch_dtype<type> {                                          \
    static constexpr bool known = true;                               \
    static constexpr c10::ScalarType value = c10::ScalarType::scalar; \
  };
CONVEYOR_TORCH_DTYPE(float, Float)
CONVEYOR_TORCH_DTYPE(double, Double)
CONVEYOR_TORCH_DTYPE(conveyor::float16, Half)
CONVEYOR_TORCH_DTYPE(conveyor::bfloat16, BFloat16)
CONVEYOR_TORCH_DTYPE(std::uint8_t, Byte)
CONVEYOR_TORCH_DTYPE(std::int8_t, Char)
CONVEYOR_TORCH_DTYPE(std::int16_t, Short)
CONVEYOR_TORCH_DTYPE(std::int32_t, Int)
CONVEYOR_TORCH_DTYPE(std::int64_t, Long)
#undef CONVEYOR_TORCH_DTYPE

template <class Storage>
inline constexpr bool is_dense_storage = false;
template <class T, memory_space Space>
inline constexpr bool is_dense_storage<dense_column<T, Space>> = true;

template <class Column>
consteval bool column_is_dense() {
  return is_dense_storage<typename Column::storage>;
}
template <class Column>
consteval bool column_has_torch_dtype() {
  if constexpr (column_is_dense<Column>()) {
    return torch_dtype<typename Column::value_type>::known;
  } else {
    return false;
  }
}
template <class Column>
consteval bool torch_can_wrap() {
  return column_is_dense<Column>() && column_has_torch_dtype<Column>();
}

// READ THIS IF YOUR COMPILE BREAKS HERE: the column named by `Column` in the
// instantiation above cannot become a tensor; the message says what to do.
template <bool Ok, class Column>
struct check_torch_dense {
  static_assert(
      Ok,
      "conveyor: to_torch() delivers dense columns as tensors, and upstream delivers a bytes or "
      "text column (Column above); decode it into a dense column before to_torch(), or leave it "
      "out.");
};
template <bool Ok, class Column>
struct check_torch_dtype {
  static_assert(
      Ok,
      "conveyor: to_torch() has no LibTorch dtype for the value type of a column upstream delivers "
      "(Column above); LibTorch takes float, double, conveyor::float16, conveyor::bfloat16, "
      "uint8_t, int8_t, int16_t, int32_t and int64_t: decode the column to one of these.");
};

// READ THIS IF YOUR COMPILE BREAKS HERE: `Name` in the instantiation above is
// the column you asked for; `Batch` lists the columns the pipeline delivers.
template <class Name, class Batch>
struct tensor_column_is_missing {
  static_assert(
      dependent_false<Batch>,
      "conveyor: the tensor batch has no column with this name (see Name in the "
      "instantiation above); fix the name, or produce the column upstream of to_torch().");
};

/// The first column of Batch that to_torch() cannot wrap, or void.
template <class Batch>
struct first_unwrappable_column {
  using type = void;
};
template <class First, class... Rest>
struct first_unwrappable_column<record_batch<First, Rest...>> {
  using type = std::conditional_t<!torch_can_wrap<First>(), First,
                                  typename first_unwrappable_column<record_batch<Rest...>>::type>;
};

/// Reports the first column of Batch that cannot become a tensor; true if none.
template <class Batch>
consteval bool check_torch_columns() {
  using bad = typename first_unwrappable_column<Batch>::type;
  if constexpr (std::is_void_v<bad>) {
    return true;
  } else if constexpr (!column_is_dense<bad>()) {
    (void)sizeof(check_torch_dense<false, bad>);
    return false;
  } else {
    (void)sizeof(check_torch_dtype<false, bad>);
    return false;
  }
}

/// Wraps a pooled buffer as a tensor of `sizes` on `device` (the CPU, or the
/// GPU a device column's buffer is on) without a copy; the tensor's deleter
/// returns the buffer to its pool (a device_pool reuses it in stream order).
/// If LibTorch refuses, the buffer goes back at once and the error propagates.
inline torch::Tensor wrap_buffer(pooled_buffer buffer, c10::IntArrayRef sizes,
                                 c10::ScalarType dtype, const torch::Device& device = torch::kCPU) {
  void* data = buffer.data();
  buffer_release release = buffer.detach();
  try {
    return torch::from_blob(
        data, sizes, [release](void* memory) { release(memory); },
        torch::TensorOptions().dtype(dtype).device(device));
  } catch (...) {
    release(data);
    throw;
  }
}

}  // namespace detail

template <class Batch>
class tensor_batch;

/// The columns of a record_batch<Columns...> as tensors (see the top of this header).
template <class... Columns>
class tensor_batch<record_batch<Columns...>> {
 public:
  /// The record_batch this was made from (its column specs and names).
  using source_batch = record_batch<Columns...>;
  /// Delivers its source batch's columns: stages upstream allocate them from
  /// the sink's pool (with_pool, ctx.pool_for), and the tensors take them over.
  using delivered_batch = source_batch;
  static constexpr std::size_t column_count = sizeof...(Columns);

  tensor_batch() = default;
  tensor_batch(batch_info info, torch::Tensor indices,
               std::array<torch::Tensor, column_count> tensors) noexcept
      : info_(info), indices_(std::move(indices)), tensors_(std::move(tensors)) {}
  tensor_batch(tensor_batch&&) noexcept = default;
  tensor_batch& operator=(tensor_batch&&) noexcept = default;
  tensor_batch(const tensor_batch&) = delete;
  tensor_batch& operator=(const tensor_batch&) = delete;

  /// Takes every column's buffer into a tensor without a copy: host columns
  /// into CPU tensors, moved to `device` (a copy, on the calling thread)
  /// unless it is the CPU; device columns (after to_cuda) into CUDA tensors on
  /// `device`, which must be the GPU they are on.
  static tensor_batch from(source_batch&& batch, const torch::Device& device) {
    std::array<torch::Tensor, column_count> tensors;
    take_columns(batch, tensors, device, std::index_sequence_for<Columns...>{});
    batch_rows rows = std::move(batch).take_rows();
    const auto count = static_cast<std::int64_t>(rows.indices.rows());
    torch::Tensor indices =
        detail::wrap_buffer(std::move(rows.indices).take_buffer(), {count}, c10::ScalarType::Long);
    return tensor_batch(rows.info, std::move(indices), std::move(tensors));
  }

  [[nodiscard]] std::size_t rows() const noexcept {
    return indices_.defined() ? static_cast<std::size_t>(indices_.numel()) : 0;
  }
  [[nodiscard]] const batch_info& info() const noexcept { return info_; }
  [[nodiscard]] std::uint64_t epoch() const noexcept { return info_.epoch; }
  [[nodiscard]] std::uint64_t number() const noexcept { return info_.number; }
  /// The source record index of each row (a view of indices_tensor()).
  [[nodiscard]] std::span<const std::uint64_t> indices() const noexcept {
    if (rows() == 0) return {};
    return {static_cast<const std::uint64_t*>(indices_.data_ptr()), rows()};
  }
  /// The record index of each row: int64, shape {rows}, on the CPU, no copy.
  [[nodiscard]] const torch::Tensor& indices_tensor() const noexcept { return indices_; }

  /// The names of the columns, in order.
  [[nodiscard]] static constexpr std::span<const std::string_view> names() noexcept {
    return detail::column_names<source_batch>::span;
  }

  /// Column `Name`'s tensor; a name the batch lacks is a compile error.
  template <fixed_string Name>
  [[nodiscard]] torch::Tensor& get() noexcept {
    constexpr auto index = detail::column_index<Name, Columns...>();
    if constexpr (index == detail::no_column) {
      static_assert(sizeof(detail::tensor_column_is_missing<column_name<Name>, source_batch>) > 0);
      return indices_;  // never reached: the assertion above stops the build
    } else {
      return tensors_[index];
    }
  }
  template <fixed_string Name>
  [[nodiscard]] const torch::Tensor& get() const noexcept {
    return const_cast<tensor_batch*>(this)->template get<Name>();
  }
  /// `batch[column<"x">]`: column "x"'s tensor, as get<"x">().
  template <column_name_type Column>  // not column_name<Name>: see column_name_type
  [[nodiscard]] torch::Tensor& operator[](Column) noexcept {
    return get<Column::name>();
  }
  /// Column `name`'s tensor, found at run time; throws std::out_of_range.
  [[nodiscard]] const torch::Tensor& at(std::string_view name) const {
    for (std::size_t i = 0; i < column_count; ++i)
      if (names()[i] == name) return tensors_[i];
    throw std::out_of_range("tensor_batch: no column named '" + std::string(name) + "'");
  }

  /// The I-th column's tensor (what structured bindings use).
  template <std::size_t I>
  [[nodiscard]] torch::Tensor& get() & noexcept {
    static_assert(I < column_count, "conveyor: tensor_batch::get<I>(): I is past the last column.");
    return tensors_[I];
  }
  template <std::size_t I>
  [[nodiscard]] const torch::Tensor& get() const& noexcept {
    static_assert(I < column_count, "conveyor: tensor_batch::get<I>(): I is past the last column.");
    return tensors_[I];
  }
  template <std::size_t I>
  [[nodiscard]] torch::Tensor get() && noexcept {
    static_assert(I < column_count, "conveyor: tensor_batch::get<I>(): I is past the last column.");
    return std::move(tensors_[I]);
  }

  /// All tensors, in column order.
  [[nodiscard]] std::array<torch::Tensor, column_count>& tensors() noexcept { return tensors_; }
  [[nodiscard]] const std::array<torch::Tensor, column_count>& tensors() const noexcept {
    return tensors_;
  }

  /// Bytes held by the tensors and the index column.
  [[nodiscard]] std::size_t size_bytes() const noexcept {
    std::size_t bytes = indices_.defined() ? indices_.nbytes() : 0;
    for (const auto& tensor : tensors_)
      if (tensor.defined()) bytes += tensor.nbytes();
    return bytes;
  }

 private:
  template <std::size_t... I>
  static void take_columns(source_batch& batch, std::array<torch::Tensor, column_count>& tensors,
                           const torch::Device& device, std::index_sequence<I...>) {
    ((tensors[I] = take_column(std::get<I>(batch.columns()), device)), ...);
  }
  template <class T, memory_space Space>
  static torch::Tensor take_column(dense_column<T, Space>& column, const torch::Device& device) {
    const auto rows = static_cast<std::int64_t>(column.rows());
    const auto width = static_cast<std::int64_t>(column.width());
    if constexpr (Space == memory_space::device) {
      return detail::wrap_buffer(std::move(column).take_buffer(), {rows, width},
                                 detail::torch_dtype<T>::value, device);
    } else {
      torch::Tensor tensor = detail::wrap_buffer(std::move(column).take_buffer(), {rows, width},
                                                 detail::torch_dtype<T>::value);
      if (!device.is_cpu())
        tensor = tensor.to(device);  // synchronous: the buffer is free to go afterwards
      return tensor;
    }
  }

  batch_info info_;
  torch::Tensor indices_;
  std::array<torch::Tensor, column_count> tensors_;
};

/// Is B a tensor_batch<...>?
template <class B>
inline constexpr bool is_tensor_batch_v = false;
template <class B>
inline constexpr bool is_tensor_batch_v<tensor_batch<B>> = true;

}  // namespace conveyor

/// Structured bindings: `auto&& [x, y] = batch;` gives the tensors in column order.
/// (Not in the API reference: Doxygen 1.9.4 cannot place specializations of std's templates.)
/// \cond
template <class Batch>
struct std::tuple_size<conveyor::tensor_batch<Batch>>
    : std::integral_constant<std::size_t, conveyor::tensor_batch<Batch>::column_count> {};
template <std::size_t I, class Batch>
struct std::tuple_element<I, conveyor::tensor_batch<Batch>> {
  using type = torch::Tensor;
};
/// \endcond
