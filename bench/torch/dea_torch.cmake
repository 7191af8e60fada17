# The DEA pipeline ending in to_torch() vs torch::data::make_data_loader with a
# straightforward Dataset, in one run (only when CMake found LibTorch).
if(CONVEYOR_WITH_TORCH AND TARGET torch)
  conveyor_add_benchmark(dea_torch_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/dea_torch.cpp LIBS conveyor::torch)
  target_compile_definitions(dea_torch_bench PRIVATE CONVEYOR_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data")
endif()
