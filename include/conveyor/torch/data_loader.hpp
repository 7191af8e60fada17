// conveyor/torch/data_loader.hpp: a conveyor pipeline where a training loop
// written against torch::data expects a data loader.
//
// A loop written for LibTorch's loader,
//
//   auto loader = torch::data::make_data_loader(dataset.map(Stack<>()), options);
//   for (auto& batch : *loader) step(batch.data, batch.target);
//
// takes a pipeline by changing its first line only:
//
//   auto loader = conveyor::make_data_loader(pipe);
//
// `make_data_loader(pipe, first_epoch = 0)` takes the pipeline by value (copy
// or move it in; `loader->pipeline()` is the loader's own, for stats() and
// checkpoints) and returns a std::unique_ptr<data_loader<...>>, as LibTorch's
// does. A pipeline that does not end in to_torch() gets `| to_torch()`. Each
// range-for over `*loader` (each begin()) runs the next epoch: first_epoch,
// then first_epoch + 1, ... The loop variable is a torch::data::Example<>
// {data, target} holding the tensors of the pipeline's two columns in order
// (a one-column pipeline gives torch::data::TensorExample {data}); any other
// column count is a compile error. Batch size, shuffling and worker threads
// are the pipeline's (batch(n), shuffle(seed), parallel(n), prefetch(n)), not
// options of the loader. Costs what to_torch() costs, plus one reference count
// per tensor per batch. Thread: the consumer's. Errors: as the pipeline's, at
// begin() or ++. Early exit: leaving the loop leaves the epoch's threads
// running until the next begin() or the loader's destruction (as the epoch run
// they belong to); call `loader->finish()` to stop them at once.
#pragma once

#include <torch/data/example.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "conveyor/core/pipeline.hpp"
#include "conveyor/torch/tensor_batch.hpp"
#include "conveyor/torch/to_torch.hpp"

namespace conveyor {

/// A torch::data-style loader over a pipeline ending in to_torch() (see the top of this header).
template <class Pipeline>
class data_loader {
  using batch_type = typename Pipeline::batch_type;
  static_assert(is_tensor_batch_v<batch_type>,
                "conveyor: data_loader takes a pipeline that ends in to_torch(); "
                "make_data_loader(pipe) adds it.");
  static_assert(batch_type::column_count == 1 || batch_type::column_count == 2,
                "conveyor: data_loader gives torch::data::Example<>{data, target}: the pipeline "
                "must deliver two columns (data, then target) or one (data only); decode exactly "
                "those columns.");
  using run_type = decltype(std::declval<Pipeline&>().epoch(0));

 public:
  /// What the loop gets: Example<> {data, target}, or TensorExample {data}.
  using example_type = std::conditional_t<batch_type::column_count == 2, torch::data::Example<>,
                                          torch::data::TensorExample>;

  class iterator {
   public:
    using value_type = example_type;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(data_loader* loader) : loader_(loader) {}
    example_type& operator*() const { return *loader_->example_; }
    example_type* operator->() const { return &*loader_->example_; }
    iterator& operator++() {
      loader_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    [[nodiscard]] bool at_end() const { return !loader_->example_; }
    data_loader* loader_ = nullptr;
  };

  explicit data_loader(Pipeline pipeline, std::uint64_t first_epoch = 0)
      : pipeline_(std::move(pipeline)), next_epoch_(first_epoch) {}
  data_loader(const data_loader&) = delete;
  data_loader& operator=(const data_loader&) = delete;
  ~data_loader() { finish(); }

  /// Stops the running epoch (if any) and starts the next one.
  iterator begin() {
    finish();
    epoch_ = next_epoch_++;
    run_.emplace(pipeline_.epoch(epoch_));
    position_ = run_->begin();
    load();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

  /// The epoch the latest begin() started.
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  /// The loader's pipeline: its stats(), state() and restore().
  [[nodiscard]] Pipeline& pipeline() noexcept { return pipeline_; }
  [[nodiscard]] const Pipeline& pipeline() const noexcept { return pipeline_; }
  /// Stops the running epoch's threads now.
  void finish() noexcept {
    example_.reset();
    run_.reset();
  }

 private:
  void advance() {
    ++position_;
    load();
  }
  void load() {
    example_.reset();
    if (position_ == std::default_sentinel) return;
    auto& batch = *position_;
    if constexpr (batch_type::column_count == 2) {
      example_.emplace(batch.template get<0>(), batch.template get<1>());
    } else {
      example_.emplace(batch.template get<0>());
    }
  }

  Pipeline pipeline_;
  std::uint64_t next_epoch_;
  std::uint64_t epoch_ = 0;
  std::optional<run_type> run_;
  typename run_type::iterator position_;
  std::optional<example_type> example_;
};

/// make_data_loader(pipe, first_epoch = 0): see the top of this header.
template <class Pipeline>
requires is_pipeline_v<std::remove_cvref_t<Pipeline>>
auto make_data_loader(Pipeline&& pipe, std::uint64_t first_epoch = 0) {
  using P = std::remove_cvref_t<Pipeline>;
  if constexpr (is_tensor_batch_v<typename P::batch_type>) {
    return std::make_unique<data_loader<P>>(P(std::forward<Pipeline>(pipe)), first_epoch);
  } else {
    auto sunk = to_torch(std::forward<Pipeline>(pipe));
    return std::make_unique<data_loader<decltype(sunk)>>(std::move(sunk), first_epoch);
  }
}

}  // namespace conveyor
