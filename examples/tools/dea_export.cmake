add_executable(dea_export ${CMAKE_CURRENT_LIST_DIR}/dea_export.cpp)
target_link_libraries(dea_export PRIVATE conveyor::core)
