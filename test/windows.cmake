# test/windows.cmake — the Windows test suite (cross-built with mingw-w64,
# run under Wine through CMAKE_CROSSCOMPILING_EMULATOR; see
# cmake/mingw-w64-x86_64.cmake and scripts/test-windows).  Included from
# test/CMakeLists.txt in place of the Linux list, which needs fork, /proc,
# RLIMIT_AS or LD_PRELOAD.  Child processes are re-executions of the test
# program through CreateProcess (childutil.h).
#   api, api_shared   test_api.c on libcorona.a and on corona.dll
#   stress, churn     threads with cross-thread frees and content checks;
#                     waves of short-lived threads (thread exit via FLS)
#   debug_stress,     the same under MALLOC_DEBUG=1: no "corona:" report
#   debug_churn
#   large             test_large.c's parts that check everything here
#   large_hugepages   the same with CORONA_USE_HUGE_PAGES=1 (large pages
#                     where the privilege is held, else the fallback)
#   large_posix_parts the parts that cannot check everything here, so exit
#                     77 and show as skipped: bad_pointers (its children
#                     need fork; the usable_size checks run), realloc_no_copy
#                     (no reset of the peak RSS), huge_pages (no THP)
#   pool_*            test_pool.c's five groups (misuse children re-executed)
#   options, verbose  test_options.c: environment options, stderr line by line
#   readme_examples   the C programs of README.md and docs/*.md (built with
#                     mingw-w64 against libcorona.a and corona.dll) and the
#                     two Windows link commands (docs/usage.md), run under Wine (readme_examples.sh --windows)
#   windows           test_windows.c: what os_windows.c must get right
#                     (refused VirtualAlloc, failing raw_alloc, thread exit,
#                     purge, in-place remap, big alignments, large pages,
#                     abort and exit report in children)

# printf with %zu and friends: mingw-w64's C99 printf, not msvcrt's.
add_compile_definitions(__USE_MINGW_ANSI_STDIO=1)

corona_add_test(test_api test_api.c corona_static)
corona_add_test(test_api_shared test_api.c corona)
# Beside corona.dll, where Windows looks for a program's DLLs first.
set_target_properties(test_api_shared PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
corona_add_test(test_stress test_stress.c corona_static)
corona_add_test(test_churn test_churn.c corona_static)
foreach(prog stress churn)
  add_test(NAME debug_${prog} COMMAND test_${prog})
  set_tests_properties(debug_${prog} PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT}
    ENVIRONMENT "MALLOC_DEBUG=1" FAIL_REGULAR_EXPRESSION "corona:")
endforeach()

set(large_parts realloc_in_place sizes calloc_reuse churn many aligned realloc_contents collect threads modes)
add_executable(test_large test_large.c)
target_link_libraries(test_large PRIVATE corona_static Threads::Threads)
target_include_directories(test_large PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
add_test(NAME large COMMAND test_large ${large_parts})
add_test(NAME large_hugepages COMMAND test_large ${large_parts})
add_test(NAME large_posix_parts COMMAND test_large bad_pointers realloc_no_copy huge_pages)
set_tests_properties(large large_hugepages large_posix_parts PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT}
  SKIP_RETURN_CODE 77)
set_tests_properties(large_hugepages PROPERTIES ENVIRONMENT "CORONA_USE_HUGE_PAGES=1")

# The pool groups as on Linux (debug_pool needs test_debug, not built here).
include(${CMAKE_CURRENT_SOURCE_DIR}/pool.cmake)

corona_add_test(test_options test_options.c corona_static)
target_compile_definitions(test_options PRIVATE TEST_DEBUG_DEFAULT=$<BOOL:${CORONA_DEBUG}>)
add_test(NAME verbose COMMAND test_options verbose)
set_tests_properties(verbose PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})

corona_add_test(test_windows test_windows.c corona_static)

# The README's examples: a host script drives the cross compiler and runs
# each program through the emulator (Wine), so only where there is one.
if(CMAKE_CROSSCOMPILING_EMULATOR)
  add_test(NAME readme_examples COMMAND bash "${CMAKE_CURRENT_SOURCE_DIR}/readme_examples.sh"
    --source "${PROJECT_SOURCE_DIR}" --libdir "${CMAKE_BINARY_DIR}" --cc "${CMAKE_C_COMPILER}" --windows
    --emulator ${CMAKE_CROSSCOMPILING_EMULATOR})
  set_tests_properties(readme_examples PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})
endif()
