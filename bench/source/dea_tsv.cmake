# The DEA workload end to end (TSV -> decoded batches) against a naive C++
# baseline and the original's Python method, run by the same program.
conveyor_add_benchmark(dea_tsv_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/dea_tsv.cpp)
target_compile_definitions(dea_tsv_bench PRIVATE
  CONVEYOR_SHARED_DATA_DIR="${PROJECT_SOURCE_DIR}/../shared/data"
  DEA_PYTHON_BASELINE="${CMAKE_CURRENT_LIST_DIR}/dea_python_baseline.py")
