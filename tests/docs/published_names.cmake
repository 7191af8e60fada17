# A public header that publishes a function with a namespace-scope
# `using detail::f;` must also give Doxygen a declaration of f under
# `#ifdef CONVEYOR_DOXYGEN` (docs/README.md, "API reference"), or f is missing
# from the reference. Run by ctest (docs_published_names):
#   cmake -DSOURCE_DIR=<repo> -P published_names.cmake
file(GLOB_RECURSE headers ${SOURCE_DIR}/include/conveyor/*.hpp ${SOURCE_DIR}/include/conveyor/*.cuh)
set(failures "")
foreach(header IN LISTS headers)
  if(header MATCHES "/detail/")
    continue()
  endif()
  file(READ ${header} text)
  string(REPLACE ";" "<semicolon>" text "${text}")  # ';' separates CMake list items
  # A name published into a public namespace: `using detail::f;` at the start
  # of a line (namespace scope, not in a function; a nested detail namespace
  # that borrows the core's machinery writes `using conveyor::detail::...`).
  string(REGEX MATCHALL "\nusing detail::[A-Za-z_0-9]+<semicolon>" published "${text}")
  foreach(line IN LISTS published)
    string(REGEX REPLACE ".*detail::([A-Za-z_0-9]+)<semicolon>" "\\1" name "${line}")
    string(FIND "${text}" "#ifdef CONVEYOR_DOXYGEN" doxygen_at)
    set(declared FALSE)
    if(doxygen_at GREATER -1)
      string(SUBSTRING "${text}" ${doxygen_at} -1 doxygen_part)
      string(FIND "${doxygen_part}" "#else" else_at)
      string(SUBSTRING "${doxygen_part}" 0 ${else_at} doxygen_part)
      if(doxygen_part MATCHES "[ \n\\*&]${name}\\(")
        set(declared TRUE)
      endif()
    endif()
    if(NOT declared)
      file(RELATIVE_PATH rel ${SOURCE_DIR} ${header})
      string(APPEND failures "  ${rel}: using detail::${name}; has no declaration under #ifdef CONVEYOR_DOXYGEN\n")
    endif()
  endforeach()
endforeach()
if(failures)
  message(FATAL_ERROR "functions published by a using-declaration that the API reference would not list:\n${failures}")
endif()
message(STATUS "docs_published_names: every function published by a using-declaration has a declaration for Doxygen")
