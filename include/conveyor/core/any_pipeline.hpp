// conveyor/core/any_pipeline.hpp: an opt-in type-erased pipeline.
//
// Every pipeline has its own static type. A program that must keep pipelines
// of different types in one variable (a trainer choosing its loader from a
// config file) wraps them: `any_pipeline<Batch> p = std::move(pipe);`. The
// cost is one virtual call and one heap allocation per epoch, and one virtual
// call per batch; the stages inside run exactly as before.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "conveyor/core/pipeline.hpp"

namespace conveyor {

/// The batches of one epoch of an any_pipeline. Move-only; stops its threads
/// when destroyed.
template <class Batch>
class any_epoch_run {
 public:
  struct model_base {
    virtual ~model_base() = default;
    virtual std::optional<Batch> next() = 0;
    [[nodiscard]] virtual pipeline_state state() const = 0;
  };

  explicit any_epoch_run(std::unique_ptr<model_base> run) : run_(std::move(run)) {}

  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(any_epoch_run* run) : run_(run) {}
    Batch& operator*() const { return *run_->current_; }
    Batch* operator->() const { return &*run_->current_; }
    iterator& operator++() {
      run_->current_ = run_->run_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    [[nodiscard]] bool at_end() const { return !run_->current_; }
    any_epoch_run* run_ = nullptr;
  };

  iterator begin() {
    if (!started_) {
      started_ = true;
      current_ = run_->next();
    }
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }
  [[nodiscard]] pipeline_state state() const { return run_->state(); }

 private:
  std::unique_ptr<model_base> run_;
  std::optional<Batch> current_;
  bool started_ = false;
};

/// A pipeline of any type whose batches are `Batch`. Move-only.
template <class Batch>
class any_pipeline {
 public:
  template <class Pipeline>
    requires(is_pipeline_v<Pipeline> && std::is_same_v<typename Pipeline::batch_type, Batch>)
  any_pipeline(Pipeline pipe)  // NOLINT: implicit on purpose, like std::function
      : model_(std::make_unique<model<Pipeline>>(std::move(pipe))) {}

  any_epoch_run<Batch> epoch(std::uint64_t e) { return model_->epoch(e); }
  void restore(const pipeline_state& state) { model_->restore(state); }
  any_epoch_run<Batch> resume(const pipeline_state& state) {
    restore(state);
    return epoch(state.epoch);
  }
  [[nodiscard]] pipeline_state state() const { return model_->state(); }
  [[nodiscard]] pipeline_stats stats() const { return model_->stats(); }

 private:
  struct model_base {
    virtual ~model_base() = default;
    virtual any_epoch_run<Batch> epoch(std::uint64_t e) = 0;
    virtual void restore(const pipeline_state& state) = 0;
    [[nodiscard]] virtual pipeline_state state() const = 0;
    [[nodiscard]] virtual pipeline_stats stats() const = 0;
  };

  template <class Pipeline>
  struct model final : model_base {
    explicit model(Pipeline p) : pipe(std::move(p)) {}
    using run_type = decltype(std::declval<Pipeline&>().epoch(0));

    struct run_model final : any_epoch_run<Batch>::model_base {
      explicit run_model(run_type r) : run(std::move(r)) {}
      std::optional<Batch> next() override {
        if (!started) {
          started = true;
          it = run.begin();
        } else {
          ++it;
        }
        if (it == run.end()) return std::nullopt;
        return std::optional<Batch>(std::move(*it));
      }
      [[nodiscard]] pipeline_state state() const override { return run.state(); }
      run_type run;
      typename run_type::iterator it;
      bool started = false;
    };

    any_epoch_run<Batch> epoch(std::uint64_t e) override {
      return any_epoch_run<Batch>(std::make_unique<run_model>(pipe.epoch(e)));
    }
    void restore(const pipeline_state& state) override { pipe.restore(state); }
    [[nodiscard]] pipeline_state state() const override { return pipe.state(); }
    [[nodiscard]] pipeline_stats stats() const override { return pipe.stats(); }
    Pipeline pipe;
  };

  std::unique_ptr<model_base> model_;
};

}  // namespace conveyor
