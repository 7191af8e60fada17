# Every example quoted in docs/ is a file here, so CI compiles (and runs) it.
function(conveyor_docs_example name)
  add_executable(docs_${name} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${name}.cpp)
  target_link_libraries(docs_${name} PRIVATE conveyor::core ${ARGN})
  if(CONVEYOR_BUILD_TESTS)
    add_test(NAME docs_example_${name} COMMAND docs_${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  endif()
endfunction()

foreach(example readme pipeline_basics checkpoint_resume dea_pipeline cache_pipeline cache_packed binary_readers cache_tiers
                text_and_decoders extending_source extending_decoder
                getting_started migrate_pytorch decoder_kernels reader_apis cache_memory cache_disk_shm)
  conveyor_docs_example(${example})
endforeach()
# An example this configuration cannot build is listed with the reason, for the
# docs_snippets check (tests/docs): its snippets pass with a note.
function(conveyor_docs_example_skipped name reason)
  set_property(GLOBAL APPEND PROPERTY CONVEYOR_DOCS_EXAMPLES_SKIPPED
               "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${name}.cpp ${reason}")
endfunction()

if(CONVEYOR_WITH_HDF5 AND (TARGET hdf5::hdf5 OR HDF5_FOUND))
  conveyor_docs_example(hdf5_reader conveyor::hdf5)
  conveyor_docs_example(hdf5_readers conveyor::hdf5)
else()
  conveyor_docs_example_skipped(hdf5_reader "HDF5 not found or CONVEYOR_WITH_HDF5=OFF")
  conveyor_docs_example_skipped(hdf5_readers "HDF5 not found or CONVEYOR_WITH_HDF5=OFF")
endif()
# Starts its own redis-server (tests/cache/redis_process.hpp); skipped without one.
if(CONVEYOR_WITH_REDIS)
  conveyor_docs_example(cache_redis conveyor::redis)
  target_include_directories(docs_cache_redis PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  if(CONVEYOR_BUILD_TESTS)
    set_tests_properties(docs_example_cache_redis PROPERTIES SKIP_REGULAR_EXPRESSION "skipped: redis-server")
  endif()
else()
  conveyor_docs_example_skipped(cache_redis "CONVEYOR_WITH_REDIS=OFF")
endif()
if(CONVEYOR_WITH_TORCH AND TARGET torch)
  conveyor_docs_example(torch_basics conveyor::torch)
  conveyor_docs_example(migrate_torch_data conveyor::torch)
else()
  conveyor_docs_example_skipped(torch_basics "LibTorch not found or CONVEYOR_WITH_TORCH=OFF")
  conveyor_docs_example_skipped(migrate_torch_data "LibTorch not found or CONVEYOR_WITH_TORCH=OFF")
endif()
