# Every example quoted in docs/ is a file here, so CI compiles (and runs) it.
foreach(example pipeline_basics checkpoint_resume dea_pipeline cache_pipeline binary_readers)
  add_executable(docs_${example} ${CMAKE_CURRENT_LIST_DIR}/${example}.cpp)
  target_link_libraries(docs_${example} PRIVATE conveyor::core)
  if(CONVEYOR_BUILD_TESTS)
    add_test(NAME docs_example_${example} COMMAND docs_${example} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  endif()
endforeach()
