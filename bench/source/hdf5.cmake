# HDF5 batched reads vs one H5Dread per record; only when CMake found HDF5.
if(CONVEYOR_WITH_HDF5 AND (TARGET hdf5::hdf5 OR TARGET HDF5::HDF5 OR HDF5_FOUND))
  conveyor_add_benchmark(source_hdf5_bench SOURCES ${CMAKE_CURRENT_LIST_DIR}/hdf5.cpp
    LIBS conveyor::hdf5)
endif()
