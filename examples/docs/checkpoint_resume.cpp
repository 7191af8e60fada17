// docs/pipeline.md, "Checkpoint and resume".
#include <conveyor/conveyor.hpp>
#include <fstream>
#include <string>
#include <vector>

namespace cy = conveyor;

namespace {
auto make_pipeline() {
  return cy::generate<cy::dense<"x", float>>(1'000, 1, [](std::uint64_t i, std::span<float> row) {
           row[0] = static_cast<float>(i);
         }) |
         cy::shuffle(7) | cy::batch(32) | cy::parallel(2);
}
}  // namespace

int main() {
  std::vector<std::uint64_t> seen;
  std::string checkpoint;
  {
    auto pipe = make_pipeline();
    auto run = pipe.epoch(3);
    for (auto& batch : run) {
      seen.insert(seen.end(), batch.indices().begin(), batch.indices().end());
      if (seen.size() >= 320) {           // time to save: store the position with the model
        checkpoint = run.state().serialize();
        break;                            // leaving the loop stops the workers
      }
    }
  }
  // Later, possibly in a new process: the same pipeline, restored.
  auto pipe = make_pipeline();
  for (auto& batch : pipe.resume(cy::pipeline_state::parse(checkpoint)))
    seen.insert(seen.end(), batch.indices().begin(), batch.indices().end());
  return seen.size() == 1'000 ? 0 : 1;   // every record of epoch 3 exactly once
}
