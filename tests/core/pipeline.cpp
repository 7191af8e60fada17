#include <doctest/doctest.h>

#include <conveyor/conveyor.hpp>
#include <sstream>
#include <vector>

namespace cy = conveyor;

namespace {
auto squares(std::uint64_t n) {
  return cy::generate<cy::dense<"x", float>>(n, 2, [](std::uint64_t i, std::span<float> row) {
    row[0] = static_cast<float>(i);
    row[1] = static_cast<float>(i * i);
  });
}
}  // namespace

TEST_CASE("a sequential pipeline yields every record once, in order, in batches") {
  auto pipe = squares(10) | cy::batch(4);
  static_assert(std::is_same_v<decltype(pipe)::batch_type, cy::record_batch<cy::dense<"x", float>>>);
  std::vector<std::uint64_t> seen;
  std::vector<std::size_t> sizes;
  for (auto& b : pipe.epoch(0)) {
    sizes.push_back(b.rows());
    auto& x = b.get<"x">();
    CHECK(x.width() == 2);
    for (std::size_t r = 0; r < b.rows(); ++r) {
      CHECK(x(r, 0) == static_cast<float>(b.indices()[r]));
      CHECK(x(r, 1) == static_cast<float>(b.indices()[r] * b.indices()[r]));
      seen.push_back(b.indices()[r]);
    }
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(seen == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("both call forms and composed closures give the same pipeline") {
  auto a = cy::batch(cy::shuffle(squares(100), 7), 8);
  auto chain = cy::shuffle(7) | cy::batch(8);
  auto b = squares(100) | chain;
  static_assert(std::is_same_v<decltype(a), decltype(b)>);
  CHECK(a.plan() == b.plan());
  std::vector<std::uint64_t> ia, ib;
  for (auto& x : a.epoch(3)) ia.insert(ia.end(), x.indices().begin(), x.indices().end());
  for (auto& x : b.epoch(3)) ib.insert(ib.end(), x.indices().begin(), x.indices().end());
  CHECK(ia == ib);
  CHECK(ia.size() == 100);
}

TEST_CASE("map stages change the batch type and run in order") {
  auto pipe = squares(6) | cy::batch(3) |
              cy::map("sum", [](cy::record_batch<cy::dense<"x", float>>&& in, const cy::stage_context& ctx) {
                cy::record_batch<cy::dense<"s", double>> out(ctx.pool, in.info(), in.indices());
                auto& s = out.get<"s">();
                s = cy::dense_column<double>(ctx.pool, in.rows(), 1);
                for (std::size_t r = 0; r < in.rows(); ++r) s(r, 0) = in.get<"x">()(r, 0) + in.get<"x">()(r, 1);
                return out;
              });
  double total = 0;
  for (auto& b : pipe.epoch(0))
    for (std::size_t r = 0; r < b.rows(); ++r) total += b.get<"s">()(r, 0);
  CHECK(total == doctest::Approx(0 + 2 + 6 + 12 + 20 + 30));
  auto stats = pipe.stats();
  REQUIRE(stats.stages.size() == 2);
  CHECK(stats.stages[0].name == "generate");
  CHECK(stats.stages[1].name == "sum");
  CHECK(stats.stages[1].rows == 6);
  CHECK(stats.rows_delivered == 6);
  std::ostringstream table;
  table << stats;
  CHECK(table.str().find("sum") != std::string::npos);
}

TEST_CASE("any_pipeline holds pipelines of different types behind one type") {
  using batch_t = cy::record_batch<cy::dense<"x", float>>;
  std::vector<cy::any_pipeline<batch_t>> loaders;
  loaders.emplace_back(squares(10) | cy::batch(3));
  loaders.emplace_back(squares(10) | cy::shuffle(1) | cy::batch(5) | cy::parallel(2) | cy::prefetch(2));
  std::vector<std::size_t> rows;
  for (auto& loader : loaders) {
    std::size_t n = 0;
    for (auto& b : loader.epoch(0)) {
      for (std::size_t r = 0; r < b.rows(); ++r) CHECK(b.get<"x">()(r, 0) == static_cast<float>(b.indices()[r]));
      n += b.rows();
    }
    rows.push_back(n);
  }
  CHECK(rows == std::vector<std::size_t>{10, 10});
  CHECK(loaders[1].state().next_batch == 2);
}
