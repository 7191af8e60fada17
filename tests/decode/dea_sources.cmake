# The DEA preprocessing from TSV, packed .npy and HDF5 sources: identical batches.
if(CONVEYOR_WITH_HDF5 AND (TARGET hdf5::hdf5 OR TARGET HDF5::HDF5 OR HDF5_FOUND))
  conveyor_add_test(decode_dea_sources_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/dea_sources.cpp
    LIBS conveyor::hdf5 LABELS threaded)
endif()
