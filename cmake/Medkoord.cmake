# Helpers shared by every target.

# Adds every immediate subdirectory of DIR that has a CMakeLists.txt, so that
# parallel work on separate services never edits the same list.
function(medkoord_add_subdirectories dir)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${dir} ${dir}/*)
  list(SORT children)
  foreach(child ${children})
    if(IS_DIRECTORY ${dir}/${child} AND EXISTS ${dir}/${child}/CMakeLists.txt)
      add_subdirectory(${dir}/${child})
    endif()
  endforeach()
endfunction()

# medkoord_embed_migrations(TARGET <lib> DIR <dir> NAMESPACE <ns>)
# Compiles services/<name>/migrations/NNNN_*.sql into the binary so that a
# deployed service needs no files beside it. Defines
#   const std::vector<medkoord::db::Migration>& <ns>::Migrations();
function(medkoord_embed_migrations)
  cmake_parse_arguments(ARG "" "TARGET;DIR;NAMESPACE" "" ${ARGN})
  file(GLOB sql_files CONFIGURE_DEPENDS ${ARG_DIR}/*.sql)
  list(SORT sql_files)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}_migrations.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${ARG_NAMESPACE}
            "-DFILES=${sql_files}" -P ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    DEPENDS ${sql_files} ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    COMMENT "Embedding migrations for ${ARG_TARGET}"
    VERBATIM)
  target_sources(${ARG_TARGET} PRIVATE ${out})
endfunction()

# medkoord_test(NAME <name> LABEL unit|integration|e2e SOURCES ... LIBS ...)
# Integration and e2e tests link the PostgreSQL harness (tests/support) and
# require the `postgres` ctest fixture, which starts one private cluster for
# the whole run.
function(medkoord_test)
  cmake_parse_arguments(ARG "" "NAME;LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  set(extra_properties)
  if(ARG_LABEL STREQUAL "integration" OR ARG_LABEL STREQUAL "e2e")
    target_link_libraries(${ARG_NAME} PRIVATE medkoord_test_support)
    set(extra_properties FIXTURES_REQUIRED postgres)
  endif()
  gtest_discover_tests(${ARG_NAME}
    PROPERTIES LABELS ${ARG_LABEL} ${extra_properties}
    DISCOVERY_TIMEOUT 60)
endfunction()
