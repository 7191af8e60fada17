// conveyor/torch.hpp: the LibTorch component (CMake: conveyor::torch, found
// with find_package(conveyor COMPONENTS torch)). Batches as torch::Tensors
// without a copy (to_torch, tensor_batch) and a torch::data-style loader over a
// pipeline (make_data_loader). See docs/torch.md.
#pragma once

#include "conveyor/torch/data_loader.hpp"
#include "conveyor/torch/tensor_batch.hpp"
#include "conveyor/torch/to_torch.hpp"
