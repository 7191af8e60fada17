# HDF5 source (opt-in component): only when CMake found HDF5 for conveyor::hdf5.
if(CONVEYOR_WITH_HDF5 AND (TARGET hdf5::hdf5 OR TARGET HDF5::HDF5 OR HDF5_FOUND))
  conveyor_add_test(source_hdf5_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/hdf5.cpp
    LIBS conveyor::hdf5 LABELS threaded)
endif()
