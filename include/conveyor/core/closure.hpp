// conveyor/core/closure.hpp: how stages compose with operator|.
//
// Every stage `s` is an inline constexpr function object with two call forms:
// `s(upstream, args...)` applies it, `s(args...)` returns a closure, and
// `upstream | closure` applies the closure. Closures compose before they meet a
// pipeline: `auto decode_and_batch = batch(256) | decode(...)`, then
// `source | decode_and_batch`. The operators are hidden friends of the closure
// base, found only by argument-dependent lookup.
#pragma once

#include <concepts>
#include <tuple>
#include <type_traits>
#include <utility>

namespace conveyor {

template <class Derived>
struct stage_closure;

/// A pipeable closure: what `stage(args...)` returns.
template <class C>
concept closure = std::derived_from<std::remove_cvref_t<C>, stage_closure<std::remove_cvref_t<C>>>;

/// A closure that applies `First`, then `Second`.
template <class First, class Second>
struct composed_closure : stage_closure<composed_closure<First, Second>> {
  First first;
  Second second;
  composed_closure(First f, Second s) : first(std::move(f)), second(std::move(s)) {}

  template <class Upstream>
  auto operator()(Upstream&& upstream) && {
    return std::move(second)(std::move(first)(std::forward<Upstream>(upstream)));
  }
  template <class Upstream>
  auto operator()(Upstream&& upstream) const& {
    return second(first(std::forward<Upstream>(upstream)));
  }
};

/// CRTP base of every closure. `Derived` must be callable with the upstream.
template <class Derived>
struct stage_closure {
  /// upstream | closure: applies the closure to anything that is not a closure.
  // Not constrained on invocability: checking it would instantiate the stage
  // to deduce its type, burying a placement error under a page of notes.
  template <class Upstream, class Self>
    requires(!closure<Upstream>) && std::same_as<std::remove_cvref_t<Self>, Derived>
  friend auto operator|(Upstream&& upstream, Self&& self) {
    return std::forward<Self>(self)(std::forward<Upstream>(upstream));
  }

  /// closure | closure: composes them, applied left to right.
  template <class Self, class Next>
    requires std::same_as<std::remove_cvref_t<Self>, Derived> && closure<Next>
  friend auto operator|(Self&& self, Next&& next) {
    return composed_closure<Derived, std::remove_cvref_t<Next>>(std::forward<Self>(self), std::forward<Next>(next));
  }
};

/// A closure holding a stage function object and bound arguments; calling it
/// with an upstream calls `Stage{}(upstream, args...)`.
template <class Stage, class... Args>
struct bound_closure : stage_closure<bound_closure<Stage, Args...>> {
  std::tuple<Args...> args;
  explicit bound_closure(Args... a) : args(std::move(a)...) {}

  template <class Upstream>
  auto operator()(Upstream&& upstream) const& {
    return std::apply([&](const Args&... a) { return Stage{}(std::forward<Upstream>(upstream), a...); }, args);
  }
  template <class Upstream>
  auto operator()(Upstream&& upstream) && {
    return std::apply([&](Args&... a) { return Stage{}(std::forward<Upstream>(upstream), std::move(a)...); }, args);
  }
};

}  // namespace conveyor
