# test/debug.cmake — issue 6: run-time options, verbose mode, debug mode.
# Included from test/CMakeLists.txt (corona_add_test is defined there).
#   debug               test_debug.c with MALLOC_DEBUG=1: every detection (double
#                       free, bad pointers, writes past the end, writes to freed
#                       memory via the quarantine, corona_collect and exit) in
#                       re-executed children that must abort with one line naming
#                       the problem and the address, each beside its correct
#                       twin; fills, calloc, realloc, alignment, malloc(0),
#                       cross-thread producer/consumer in debug mode
#   debug_stress        test_stress, test_churn and test_large_stress run under
#   debug_churn         MALLOC_DEBUG=1 MALLOC_VERBOSE=1 by `test_debug clean-run`:
#   debug_large_stress  exit 0, debug mode shown on, no report on stderr
#   options             test_options.c: unknown CORONA_ variables, unknown MALLOC_
#                       ones, bad and out-of-range values, CORONA_ over MALLOC_,
#                       K/M/G suffixes, boolean words; stderr checked line by line
#   verbose             test_options verbose: the option lines at start-up and the
#                       OS events (slab/large region, own mapping mapped and
#                       unmapped, huge pages on/off, soft heap limit)
#   options_preload     test_options preload: the same through LD_PRELOAD of
#                       libcorona.so into /bin/true and python3 (not with a
#                       sanitizer: no malloc override is built there)

corona_add_test(test_debug test_debug.c corona_static)
target_include_directories(test_debug PRIVATE ${PROJECT_SOURCE_DIR}/src) # internal/options.h
set_tests_properties(debug PROPERTIES ENVIRONMENT "MALLOC_DEBUG=1")

# A detection kills the child by SIGABRT (corona calls abort()).  The
# sanitizer runtimes leave SIGABRT alone by default (handle_abort=0), so the
# expectation is the same in the ASan and TSan builds.

# The stress programs under debug mode.  Work: their default scale, less
# under TSan, where debug mode's byte-by-byte fill checks are instrumented
# (10-20 s each there with these scales; a few seconds in Release).
foreach(prog test_stress test_churn test_large_stress)
  string(REGEX REPLACE "^test_" "debug_" tname ${prog})
  add_test(NAME ${tname} COMMAND test_debug clean-run $<TARGET_FILE:${prog}>)
  set_tests_properties(${tname} PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})
endforeach()
if(CORONA_SANITIZE STREQUAL "thread")
  set_tests_properties(debug_stress PROPERTIES ENVIRONMENT "CRTEST_SCALE=0.15")
  set_tests_properties(debug_large_stress PROPERTIES ENVIRONMENT "CRTEST_SCALE=0.08")
endif()

corona_add_test(test_options test_options.c corona_static)
target_compile_definitions(test_options PRIVATE TEST_DEBUG_DEFAULT=$<BOOL:${CORONA_DEBUG}>)
add_test(NAME verbose COMMAND test_options verbose)
set_tests_properties(verbose PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})
# Preloading needs the malloc override, which sanitizer builds leave out.
if(CORONA_SANITIZE STREQUAL "" AND CORONA_OVERRIDE AND NOT WIN32)
  # corona_preload_target: see test/CMakeLists.txt.
  add_test(NAME options_preload COMMAND test_options preload $<TARGET_FILE:corona> ${corona_preload_target})
  # Skipped (77) where /usr/bin/python3 is missing.
  set_tests_properties(options_preload PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT} SKIP_RETURN_CODE 77)
endif()
