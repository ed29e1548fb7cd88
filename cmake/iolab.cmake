# Shared build settings for every iolab target.

# Warnings live in one INTERFACE target so every target gets the same set.
add_library(iolab_warnings INTERFACE)
target_compile_options(iolab_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  -Wformat=2)
if(IOLAB_WERROR)
  target_compile_options(iolab_warnings INTERFACE -Werror)
endif()

# Sanitizers apply to everything we build (the servers, the tests, the tools),
# so a report anywhere fails the test that triggered it.
if(IOLAB_SANITIZE)
  string(REPLACE ";" "," iolab_san "${IOLAB_SANITIZE}")
  add_compile_options(-fsanitize=${iolab_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${iolab_san})
endif()

# iolab_stage(NAME [THREADED] [SERIAL] ...) builds NAME/main.cpp into the
# executable NAME and registers the conformance suite against it. Options
# after the name are the per-stage expectations, passed to the suite as data:
#   SERIAL                the model serves one client at a time (stage01)
#   THREADED              the stage runs threads: its tests also run under TSan (label tsan)
#   CONFORMANCE_ARGS ...  extra arguments for the conformance program
#   SERVER_ARGS ...       extra arguments for the server (e.g. --trigger edge)
function(iolab_stage name)
  add_executable(${name} main.cpp)
  target_link_libraries(${name} PRIVATE iolab_common iolab_warnings)
  cmake_parse_arguments(PARSE_ARGV 1 stage "THREADED" "" "")
  if(stage_THREADED)
    set_property(GLOBAL APPEND PROPERTY iolab_threaded_stages ${name})
  endif()
  iolab_conformance(${name} ${name} ${ARGN})
endfunction()

# Labels the tests of threaded stages `tsan`, which the tsan preset runs.
function(iolab_label_threaded test_name target)
  get_property(threaded GLOBAL PROPERTY iolab_threaded_stages)
  if(target IN_LIST threaded)
    set_property(TEST ${test_name} APPEND PROPERTY LABELS tsan)
  endif()
endfunction()

# iolab_conformance(TEST_NAME TARGET [SERIAL] [CONFORMANCE_ARGS ...] [SERVER_ARGS ...])
# adds one CTest entry running tests/conformance against TARGET. Called more than
# once for a target to run the suite with different server flags.
function(iolab_conformance test_name target)
  cmake_parse_arguments(PARSE_ARGV 2 arg "SERIAL;THREADED" "" "CONFORMANCE_ARGS;SERVER_ARGS")
  if(NOT IOLAB_BUILD_TESTS)
    return()
  endif()
  set(expect)
  if(arg_SERIAL)
    list(APPEND expect --serial)
  endif()
  set(server_args)
  foreach(a IN LISTS arg_SERVER_ARGS)
    list(APPEND server_args --server-arg=${a})
  endforeach()
  add_test(NAME conformance.${test_name}
           COMMAND iolab_conformance --server $<TARGET_FILE:${target}> ${expect} ${arg_CONFORMANCE_ARGS} ${server_args})
  set_tests_properties(conformance.${test_name} PROPERTIES TIMEOUT 300 LABELS conformance)
  iolab_label_threaded(conformance.${test_name} ${target})
endfunction()
