# Shared build settings for every iolab target.

# Warnings live in one INTERFACE target so every target gets the same set.
add_library(iolab_warnings INTERFACE)
target_compile_options(iolab_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  -Wformat=2)
if(IOLAB_WERROR)
  target_compile_options(iolab_warnings INTERFACE -Werror)
  # GCC 12's -Wnull-dereference misfires on libstdc++ code inlined at -O2
  # and above (vector::insert at begin() of a vector that might be empty):
  # in optimised builds it stays a warning, not an error.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(iolab_warnings INTERFACE
      $<$<NOT:$<CONFIG:Debug>>:-Wno-error=null-dereference>)
  endif()
endif()

# Sanitizers apply to everything we build (the servers, the tests, the tools),
# so a report anywhere fails the test that triggered it.
if(IOLAB_SANITIZE)
  string(REPLACE ";" "," iolab_san "${IOLAB_SANITIZE}")
  add_compile_options(-fsanitize=${iolab_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${iolab_san})
  # UBSan's vptr check cannot work in a process out of descriptors, which
  # the tests provoke on purpose (a descriptor storm): before it trusts an
  # object's type it probes the object's memory through a pipe(2), which then
  # fails with EMFILE, and it reports a false "invalid vptr" and ends the process.
  if(IOLAB_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize=vptr)
  endif()
endif()

# iolab_stage(NAME [THREADED] [SERIAL] ...) builds NAME/main.cpp into the
# executable NAME and registers the conformance and adversarial suites against
# it. Options after the name are the per-stage expectations, passed to the
# suites as data:
#   SERIAL                the model serves one client at a time (stage01)
#   BLOCKING              blocking I/O: a thread or process per client, or
#                         one at a time (stages 01-03); see tests/adversarial
#   BUSY_POLLS            the model burns a core even when idle (stage04)
#   THREADED              the stage runs threads: its tests also run under TSan (label tsan)
#   CONFORMANCE_ARGS ...  extra arguments for the conformance program
#   ADVERSARIAL_ARGS ...  extra arguments for the adversarial program (e.g. a
#                         Catch2 test spec leaving out a case covered elsewhere)
#   SERVER_ARGS ...       extra arguments for the server (e.g. --trigger edge)
#
# scripts/lab builds a student's copy of one stage in its own tree (build/lab),
# with -DIOLAB_LAB_STAGE=NAME -DIOLAB_LAB_DIR=DIR: that stage's target is then
# made from the .cpp files at the top of DIR instead of the stage's own, and
# everything else (its tests, their flags) stays as registered here.
function(iolab_stage name)
  if(IOLAB_LAB_STAGE STREQUAL name)
    file(GLOB lab_sources CONFIGURE_DEPENDS ${IOLAB_LAB_DIR}/*.cpp)
    add_executable(${name} ${lab_sources})
    # Work in progress (a stub leaves a helper unused) shows its warnings but builds.
    set_source_files_properties(${lab_sources} PROPERTIES COMPILE_OPTIONS -Wno-error)
  else()
    add_executable(${name} main.cpp)
  endif()
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

# iolab_conformance(TEST_NAME TARGET [SERIAL] [BLOCKING] [BUSY_POLLS] [CONFORMANCE_ARGS ...]
#                   [ADVERSARIAL_ARGS ...] [SERVER_ARGS ...])
# adds the CTest entries conformance.TEST_NAME and adversarial.TEST_NAME, the
# two suites run against TARGET. Called more than once for a target to run
# the suites with different server flags. Each server is also recorded, for
# tests/faults to rerun the suites under fault injection: global properties
# iolab_servers (the names), iolab_server_target_NAME, and the arguments of
# each suite, iolab_server_conformance_args_NAME and _adversarial_args_NAME.
function(iolab_conformance test_name target)
  cmake_parse_arguments(PARSE_ARGV 2 arg "SERIAL;BLOCKING;BUSY_POLLS;THREADED" ""
                        "CONFORMANCE_ARGS;ADVERSARIAL_ARGS;SERVER_ARGS")
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

  # The adversarial suite knows more expectations than the conformance suite.
  set(adversarial_expect ${expect})
  if(arg_BLOCKING)
    list(APPEND adversarial_expect --blocking)
  endif()
  if(arg_BUSY_POLLS)
    list(APPEND adversarial_expect --busy-polls)
  endif()
  add_test(NAME adversarial.${test_name}
           COMMAND iolab_adversarial --server $<TARGET_FILE:${target}> ${adversarial_expect} ${arg_ADVERSARIAL_ARGS} ${server_args})
  set_tests_properties(adversarial.${test_name} PROPERTIES TIMEOUT 300 LABELS adversarial)
  iolab_label_threaded(adversarial.${test_name} ${target})

  set_property(GLOBAL APPEND PROPERTY iolab_servers ${test_name})
  set_property(GLOBAL PROPERTY iolab_server_target_${test_name} ${target})
  set_property(GLOBAL PROPERTY iolab_server_conformance_args_${test_name}
               ${expect} ${arg_CONFORMANCE_ARGS} ${server_args})
  set_property(GLOBAL PROPERTY iolab_server_adversarial_args_${test_name}
               ${adversarial_expect} ${server_args})
endfunction()
