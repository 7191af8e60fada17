conveyor_add_test(core_pipeline_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pipeline.cpp ${CMAKE_CURRENT_LIST_DIR}/plan.cpp
          ${CMAKE_CURRENT_LIST_DIR}/stage.cpp
  LABELS threaded)
